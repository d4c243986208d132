// Gateway proxies' config costs what changed: a gateway group is derived when its
// first proxy connects and again only when one of its Gateways, a VirtualService bound
// to one of them, or a destination its routes read changes; a mesh-only change never
// derives it, and a gateway-only change derives no sidecar group. After each change
// the incremental config equals what a fresh ProxyGroups derives from scratch.
import { meshModel, proxiesOf, serviceOf, type MeshShape } from '../../testing/fixtures/mesh-shape.js';
import type { ConfigObject, GatewaySpec, VirtualServiceSpec } from '../model/istio-config.js';
import type { MeshModel } from '../model/mesh-model.js';
import { typeUrls } from '../protos.js';
import type { ConfigChange, DiscoveryNode } from '../server/discovery-types.js';
import { ProxyGroups } from './proxy-groups.js';

const shape: MeshShape = {
  services: 12,
  namespaces: 3,
  podsPerService: 2,
  virtualServices: 3,
  authorizationPolicies: 0,
  strictHalf: false,
};

const object = <Spec>(kind: string, namespace: string, name: string, spec: Spec, age = 100): ConfigObject<Spec> => ({
  kind,
  name,
  namespace,
  creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, age)).toISOString(),
  spec,
});

const gateway = (hosts: string[]): ConfigObject<GatewaySpec> =>
  object('Gateway', 'ns-0', 'public', {
    selector: { istio: 'ingressgateway' },
    servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts }],
  });

const boundRoute = (timeout: string): ConfigObject<VirtualServiceSpec> =>
  object('VirtualService', 'ns-0', 'public-routes', {
    // A mesh service's own name too: bound to the gateway only, it must not touch the sidecars that call svc-0.
    hosts: ['shop.example.com', 'svc-0.ns-0.svc.cluster.local'],
    gateways: ['public'],
    http: [{ timeout, route: [{ destination: { host: 'svc-0.ns-0.svc.cluster.local', port: { number: 8080 } } }] }],
  });

const routerNode = (n: number): DiscoveryNode => ({
  id: `router~10.244.9.${n}~ingress-${n}.istio-system~istio-system.svc.cluster.local`,
  metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway', 'pod-template-hash': `h${n}` } },
});

function withConfig(model: MeshModel, edit: (istio: NonNullable<MeshModel['istio']>) => void): MeshModel {
  const current = model.istio as NonNullable<MeshModel['istio']>;
  const istio = {
    ...current,
    virtualServices: [...current.virtualServices],
    destinationRules: [...current.destinationRules],
    gateways: [...current.gateways],
  };
  edit(istio);
  return { ...model, istio };
}

/** The router's LDS and RDS bytes equal those of a fresh ProxyGroups over the same model. */
function expectSameAsFromScratch(groups: ProxyGroups, model: MeshModel, node: DiscoveryNode): void {
  const fresh = new ProxyGroups();
  fresh.update(model);
  for (const typeUrl of [typeUrls.listener, typeUrls.route, typeUrls.cluster]) {
    const names = typeUrl === typeUrls.route ? ['http.80'] : [];
    const bytes = (source: ProxyGroups) =>
      source
        .resources(node, typeUrl, names)
        // Order is no part of the config (the outbound group's CDS order follows its changes, as the sidecar tests allow).
        .resources.map((r) => [r.name, r.resource.value.toString('base64')])
        .sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1));
    expect(bytes(groups)).toEqual(bytes(fresh));
  }
}

describe('gateway groups', () => {
  let groups: ProxyGroups;
  let model: MeshModel;
  const sidecars = proxiesOf(shape);
  const routers = [routerNode(1), routerNode(2)];
  let changes: ConfigChange[];

  const count = (name: string) => groups.stats().derivations[name] ?? 0;
  /** Derivations in sidecar groups: hosts' outbound contributions, outbound listeners, inbound groups. */
  const sidecarWork = () => count('outbound-host') + count('outbound-listener') + count('inbound');

  beforeEach(() => {
    groups = new ProxyGroups();
    model = withConfig(meshModel(shape), (istio) => {
      istio.gateways.push(gateway(['shop.example.com']));
      istio.virtualServices.push(boundRoute('3s'));
    });
    groups.update(model);
    for (const node of [...sidecars, ...routers]) {
      groups.connected(node);
      for (const typeUrl of [typeUrls.listener, typeUrls.cluster]) groups.resources(node, typeUrl, []);
    }
    changes = [];
    groups.onChange((change) => changes.push(change));
  });

  it('derives one group for gateway proxies that differ only in labels no selector reads, when the first connects', () => {
    expect(groups.stats().gatewayScopes).toBe(1);
    expect(count('gateway')).toBe(1);
    expect(groups.resources(routers[0] as DiscoveryNode, typeUrls.listener, []).resources.map((r) => r.name)).toEqual(['0.0.0.0_80']);
  });

  it('does not derive gateway groups for a VirtualService bound to the mesh only', () => {
    const before = count('gateway');
    model = withConfig(model, (istio) => {
      istio.virtualServices[1] = object('VirtualService', 'ns-1', 'svc-1', {
        hosts: ['svc-1'],
        http: [{ timeout: '9s', route: [{ destination: { host: 'svc-1.ns-1.svc.cluster.local' } }] }],
      });
    });
    expect(groups.update(model)).toEqual([typeUrls.route]);
    expect(count('gateway') - before).toBe(0);
    expect(routers.some((node) => changes[0]?.affects?.(node, typeUrls.route))).toBe(false);
  });

  it('derives only the gateway group, and pushes only its RDS to gateway proxies, for a bound VirtualService edit', () => {
    const before = count('gateway');
    const sidecarBefore = sidecarWork();
    model = withConfig(model, (istio) => {
      istio.virtualServices[istio.virtualServices.length - 1] = boundRoute('7s');
    });
    expect(groups.update(model)).toEqual([typeUrls.route]);
    expect(count('gateway') - before).toBe(1);
    expect(sidecarWork() - sidecarBefore).toBe(0);
    const change = changes[0] as ConfigChange;
    expect(routers.every((node) => change.affects?.(node, typeUrls.route))).toBe(true);
    expect(sidecars.some((node) => change.affects?.(node, typeUrls.route))).toBe(false);
    expect(change.names?.get(typeUrls.route)).toEqual(new Set(['http.80']));
    expectSameAsFromScratch(groups, model, routers[0] as DiscoveryNode);
  });

  it('derives the gateway group, and no sidecar group, for a Gateway edit', () => {
    const before = count('gateway');
    const sidecarBefore = sidecarWork();
    model = withConfig(model, (istio) => {
      istio.gateways[0] = gateway(['shop.example.com', 'www.example.com']);
    });
    groups.update(model);
    expect(count('gateway') - before).toBe(1);
    expect(sidecarWork() - sidecarBefore).toBe(0);
    expectSameAsFromScratch(groups, model, routers[0] as DiscoveryNode);
  });

  it('derives the gateway group for a DestinationRule of a destination its routes read, not for another', () => {
    const before = count('gateway');
    model = withConfig(model, (istio) => {
      // svc-4 (ns-1) is no destination of the gateway's routes.
      istio.destinationRules.push(
        object('DestinationRule', 'ns-1', 'svc-4', { host: 'svc-4', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }),
      );
    });
    groups.update(model);
    expect(count('gateway') - before).toBe(0);
    model = withConfig(model, (istio) => {
      istio.destinationRules[0] = object('DestinationRule', 'ns-0', 'svc-0', {
        host: 'svc-0',
        trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } },
      });
    });
    groups.update(model);
    expect(count('gateway') - before).toBe(1);
    const route = groups.resources(routers[0] as DiscoveryNode, typeUrls.route, ['http.80']).resources[0];
    expect(route?.resource.value.toString('latin1')).toContain('x-user');
    expectSameAsFromScratch(groups, model, routers[0] as DiscoveryNode);
  });

  it('derives an AUTO_PASSTHROUGH group again for a new subset of a service it covers, adding its chain and SNI-DNAT cluster', () => {
    model = withConfig(model, (istio) => {
      istio.gateways.push(
        object('Gateway', 'istio-system', 'east-west', {
          selector: { istio: 'ingressgateway' },
          servers: [
            {
              port: { number: 15443, name: 'tls', protocol: 'TLS' },
              tls: { mode: 'AUTO_PASSTHROUGH' },
              hosts: ['*.ns-1.svc.cluster.local'],
            },
          ],
        }),
      );
    });
    groups.update(model);
    const before = count('gateway');
    model = withConfig(model, (istio) => {
      istio.destinationRules.push(
        object('DestinationRule', 'ns-1', 'svc-4', { host: 'svc-4', subsets: [{ name: 'canary', labels: { version: 'v2' } }] }),
      );
    });
    groups.update(model);
    expect(count('gateway') - before).toBe(1);
    const clusters = groups.resources(routers[0] as DiscoveryNode, typeUrls.cluster, []).resources.map((r) => r.name);
    expect(clusters).toContain('outbound_.8080_.canary_.svc-4.ns-1.svc.cluster.local');
    expectSameAsFromScratch(groups, model, routers[0] as DiscoveryNode);
    // A new service the server's hosts cover: no route read it before, yet it gets its chain.
    model = { ...model, services: [...model.services, serviceOf(shape, 13)] };
    groups.update(model);
    expect(count('gateway') - before).toBe(2);
    const listener = groups.resources(routers[0] as DiscoveryNode, typeUrls.listener, ['0.0.0.0_15443']).resources[0];
    expect(listener?.resource.value.toString('latin1')).toContain('outbound_.8080_._.svc-13.ns-1.svc.cluster.local');
    expectSameAsFromScratch(groups, model, routers[0] as DiscoveryNode);
  });

  it('moves gateway proxies to a new group when a Gateway stops selecting them, and serves them no listener', () => {
    model = withConfig(model, (istio) => {
      istio.gateways[0] = { ...gateway(['shop.example.com']), spec: { ...gateway([]).spec, selector: { istio: 'other' } } };
    });
    groups.update(model);
    expect(groups.resources(routers[0] as DiscoveryNode, typeUrls.listener, []).resources).toEqual([]);
    expect(changes[0]?.affects?.(routers[0] as DiscoveryNode, typeUrls.listener)).toBe(true);
  });
});
