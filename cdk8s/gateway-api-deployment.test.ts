import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import type { Gateway } from '../gatewayapi/gateway-api-types.js';
import { expectMatchesGolden } from '../testing/jest/golden.js';
import { gatewayDeployment, gatewayServicePorts, type GatewayDeploymentContext } from './gateway-api-deployment.js';
import type { Manifest } from './synth.js';

const testdata = join(import.meta.dirname, 'testdata');
const context: GatewayDeploymentContext = {
  controller: 'istio.io/gateway-controller',
  image: 'docker.io/istio/proxyv2:1.28.1',
  proxyLogLevel: 'warning',
  discoveryAddress: 'weftd.weft-system.svc:15012',
  trustDomain: 'cluster.local',
  revision: '',
  resources: { requests: { cpu: '100m', memory: '128Mi' } },
};
type AnyObject = Manifest & Record<string, any>;
const gateway = (metadata: Record<string, unknown>, spec: Record<string, unknown> = {}): Gateway =>
  ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'default', namespace: 'default', ...metadata },
    spec: { gatewayClassName: 'istio', ...spec },
  }) as Gateway;
const objectsOf = (gw: Gateway, ctx = context): AnyObject[] => {
  const result = gatewayDeployment(gw, ctx);
  if (!('objects' in result)) throw new Error(`no objects: ${JSON.stringify(result)}`);
  return result.objects as AnyObject[];
};

// The inputs of Istio's deploymentcontroller_test.go cases whose expected output is in testdata/istio-deployment/.
const istioCases: Record<string, Gateway> = {
  simple: gateway({ labels: { should: 'see' }, annotations: { should: 'see' } }),
  'cluster-ip': gateway(
    { annotations: { 'networking.istio.io/service-type': 'ClusterIP', 'gateway.istio.io/name-override': 'default' } },
    { listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
  ),
  'manual-ip': gateway(
    { annotations: { 'gateway.istio.io/name-override': 'default' } },
    { addresses: [{ type: 'IPAddress', value: '1.2.3.4' }] },
  ),
  'infrastructure-labels-annotations': gateway(
    { labels: { 'should-not': 'see' }, annotations: { 'should-not': 'see' } },
    {
      infrastructure: {
        labels: { foo: 'bar', 'gateway.networking.k8s.io/ignore': 'true' },
        annotations: { fizz: 'buzz', 'gateway.networking.k8s.io/ignore': 'true' },
      },
    },
  ),
};

/** What Istio's controller decides about an object, as opposed to its injection template's container. */
function decided(object: AnyObject): Record<string, unknown> {
  const meta = object['metadata'];
  const common = {
    kind: object.kind,
    name: meta.name,
    namespace: meta.namespace,
    labels: meta.labels ?? {},
    annotations: meta.annotations ?? {},
    ownerReferences: (meta.ownerReferences as Array<Record<string, unknown>>).map((o: Record<string, unknown>) => ({
      ...o,
      uid: o['uid'] || '',
    })),
  };
  if (object.kind === 'Service') return { ...common, spec: object['spec'] };
  if (object.kind === 'Deployment') {
    const { selector, replicas, template } = object['spec'];
    return {
      ...common,
      selector,
      replicas,
      serviceAccountName: template.spec.serviceAccountName,
      sysctls: template.spec.securityContext.sysctls,
      containers: template.spec.containers.map((c: { name: string }) => c.name),
    };
  }
  return common;
}

describe('Gateway API deployment (istiod deployment controller)', () => {
  it.each(Object.keys(istioCases))("decides names, labels, owner, Service and pod metadata as Istio's %s case", (name) => {
    const expected = parseAllDocuments(readFileSync(join(testdata, 'istio-deployment', `${name}.yaml`), 'utf8'))
      .map((d) => d.toJS() as AnyObject)
      // Istio also writes its controller version onto the Gateway itself; Weft does not (see docs/gateways.md).
      .filter((o) => o && o.kind !== 'Gateway');
    const actual = objectsOf(istioCases[name] as Gateway);
    expect(actual.map(decided)).toEqual(expected.map(decided));
    // Pod labels and annotations: Istio's all there (Weft adds its revision label).
    const deployment = (list: AnyObject[]) => list.find((o) => o.kind === 'Deployment')!['spec'].template.metadata;
    expect(deployment(actual).labels).toMatchObject(deployment(expected).labels);
    expect(deployment(actual).annotations).toMatchObject(deployment(expected).annotations);
  });

  it("renders Istio's Gateway API task Gateway exactly as reviewed", () => {
    const task = parseAllDocuments(
      readFileSync(join(import.meta.dirname, '../gatewayapi/testdata/istio-docs/gateway-api-task.yaml'), 'utf8'),
    )
      .map((d) => d.toJS() as AnyObject)
      .find((o) => o.kind === 'Gateway') as Gateway;
    const objects = objectsOf({ ...task, metadata: { ...task.metadata, uid: '0b5f1a3e-3c3d-4f55-9a43-1f1d2f3b6c01' } } as Gateway);
    expectMatchesGolden(join(testdata, 'gateway-api-deployment.yaml'), objects.map((o) => stringify(o)).join('---\n'));
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    // The user (or an autoscaler) owns replicas: never applied, so a manual scale is kept.
    expect(deployment['spec'].replicas).toBeUndefined();
    const container = deployment['spec'].template.spec.containers[0];
    expect(container.image).toBe(context.image);
    expect(container.args.slice(0, 2)).toEqual(['proxy', 'router']);
    expect(container.env).toContainEqual({ name: 'CA_ADDR', value: context.discoveryAddress });
  });

  it('names Service ports after listeners, once per port, unique and at most 63 characters (extractServicePorts)', () => {
    const long = `a.${'b'.repeat(70)}`;
    const ports = gatewayServicePorts(
      gateway(
        {},
        {
          listeners: [
            { name: 'http', port: 80, protocol: 'HTTP' },
            { name: 'http-other-host', port: 80, protocol: 'HTTP', hostname: 'x.example.com' },
            { name: 'secure.example.com', port: 443, protocol: 'HTTPS' },
            { name: long, port: 8443, protocol: 'TLS' },
            { name: long, port: 9443, protocol: 'TCP' },
          ],
        },
      ),
    );
    expect(ports.map((p) => [p.name, p.port, p.appProtocol])).toEqual([
      ['status-port', 15021, 'tcp'],
      ['http', 80, 'http'],
      ['secure-example-com', 443, 'https'],
      [`a-${'b'.repeat(61)}`, 8443, 'tls'],
      [`a-${'b'.repeat(56)}-9443`, 9443, 'tcp'],
    ]);
  });

  it('leaves Gateways with a Hostname address or a newer controller version to others, as Istio', () => {
    expect(gatewayDeployment(gateway({}, { addresses: [{ type: 'Hostname', value: 'mine.default.svc' }] }), context)).toEqual({
      skipped: expect.stringContaining('spec.addresses'),
    });
    expect(gatewayDeployment(gateway({ annotations: { 'gateway.istio.io/controller-version': '6' } }), context)).toEqual({
      skipped: expect.stringContaining('gateway.istio.io/controller-version=6'),
    });
    expect('objects' in gatewayDeployment(gateway({ annotations: { 'gateway.istio.io/controller-version': '5' } }), context)).toBe(true);
  });

  it('refuses an unknown service type naming the annotation', () => {
    expect(gatewayDeployment(gateway({ annotations: { 'networking.istio.io/service-type': 'Internal' } }), context)).toEqual({
      error: 'metadata.annotations["networking.istio.io/service-type"]: "Internal" is not one of ClusterIP, NodePort, LoadBalancer',
    });
  });

  it("labels what it makes with the serving controller and keeps the Gateway's own dataplane mode", () => {
    const objects = objectsOf(gateway({ labels: { 'istio.io/dataplane-mode': 'ambient' } }, { gatewayClassName: 'weft' }), {
      ...context,
      controller: 'weft.dev/gateway-controller',
    });
    for (const object of objects) {
      expect(object.metadata.name).toBe('default-weft');
      expect(object.metadata.labels).toMatchObject({
        'gateway.istio.io/managed': 'weft.dev-gateway-controller',
        'gateway.networking.k8s.io/gateway-class-name': 'weft',
        'istio.io/dataplane-mode': 'ambient',
      });
    }
  });
});
