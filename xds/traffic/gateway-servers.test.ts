import type { ConfigObject, VirtualServiceSpec } from '../model/istio-config.js';
import { virtualServicesForGateway } from './gateway-servers.js';

const rule = (namespace: string, name: string, creationTimestamp: string, gatewayApi: boolean): ConfigObject<VirtualServiceSpec> => ({
  kind: 'VirtualService',
  namespace,
  name,
  creationTimestamp,
  ...(gatewayApi ? { annotations: { 'internal.istio.io/route-semantics': 'gateway' } } : {}),
  spec: { hosts: ['shop.example.com'], gateways: ['istio-system/ingress'], http: [{ route: [{ destination: { host: 'shop' } }] }] },
});

describe("the VirtualServices bound to a gateway, in istiod's order (PushContext.VirtualServicesForGateway)", () => {
  it("puts the proxy's own namespace's Gateway API routes before older public ones (consumer override), and leaves Istio rules by age", () => {
    const older = rule('team-a', 'route', '2026-01-01T00:00:00Z', true);
    const own = rule('istio-system', 'route', '2026-02-01T00:00:00Z', true);
    const istioOlder = rule('istio-system', 'plain', '2025-12-01T00:00:00Z', false);
    const names = (rules: Array<ConfigObject<VirtualServiceSpec>>) => rules.map((r) => `${r.namespace}/${r.name}`);
    expect(names(virtualServicesForGateway([older, own, istioOlder], 'istio-system', 'istio-system/ingress'))).toEqual([
      'istio-system/route',
      'istio-system/plain',
      'team-a/route',
    ]);
    // Seen from another namespace, nothing is the consumer's: oldest first.
    expect(names(virtualServicesForGateway([older, own, istioOlder], 'elsewhere', 'istio-system/ingress'))).toEqual([
      'istio-system/plain',
      'team-a/route',
      'istio-system/route',
    ]);
  });
});
