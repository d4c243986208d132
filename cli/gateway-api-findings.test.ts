import { analyzeMesh, type KubeObject } from './mesh-analysis.js';

const gw = 'gateway.networking.k8s.io/v1';
const objects: KubeObject[] = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'billing' } },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 8080 }] },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'ledger', namespace: 'billing' },
    spec: { selector: { app: 'ledger' }, ports: [{ name: 'http', port: 8080 }] },
  },
  { apiVersion: gw, kind: 'GatewayClass', metadata: { name: 'istio' }, spec: { controllerName: 'istio.io/gateway-controller' } },
  {
    apiVersion: gw,
    kind: 'Gateway',
    metadata: { name: 'edge', namespace: 'shop' },
    spec: {
      gatewayClassName: 'istio',
      listeners: [{ name: 'http', port: 80, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'Same' } } }],
    },
  },
  ...(
    [
      ['good', { name: 'web', port: 8080 }],
      ['missing-backend', { name: 'nothing', port: 8080 }],
      ['other-namespace', { name: 'ledger', namespace: 'billing', port: 8080 }],
    ] as const
  ).map(([name, backend]) => ({
    apiVersion: gw,
    kind: 'HTTPRoute',
    metadata: { name, namespace: 'shop' },
    spec: { parentRefs: [{ name: 'edge' }], rules: [{ backendRefs: [backend] }] },
  })),
];

describe('weft analyze: Gateway API objects whose status would not hold (WEFT0007)', () => {
  const messages = analyzeMesh(
    objects.map((object) => ({ object })),
    { rootNamespace: 'weft-system' },
  ).filter((m) => m.code === 'WEFT0007');
  const on = (kind: string, name: string) => messages.filter((m) => m.resource.kind === kind && m.resource.name === name);

  it("names a backend that does not exist, and one in another namespace no ReferenceGrant allows, with the specification's reasons", () => {
    expect(on('HTTPRoute', 'missing-backend')).toEqual([
      expect.objectContaining({
        level: 'Error',
        message: expect.stringMatching(/^parent Gateway shop\/edge: ResolvedRefs=False \(BackendNotFound\)/),
      }),
    ]);
    expect(on('HTTPRoute', 'other-namespace')).toEqual([
      expect.objectContaining({ level: 'Error', message: expect.stringMatching(/ResolvedRefs=False \(RefNotPermitted\)/) }),
    ]);
    expect(on('HTTPRoute', 'good')).toEqual([]);
  });

  it('says the Gateway is not programmed while it has no address (its Service does not exist), as a warning', () => {
    expect(on('Gateway', 'edge').map((m) => [m.level, m.message])).toContainEqual(['Warning', expect.stringMatching(/^Programmed=False/)]);
    expect(on('Gateway', 'edge').every((m) => m.level === 'Warning')).toBe(true);
  });

  it('leaves alone the objects of a class Weft does not serve', () => {
    const foreign = objects.map((o) => (o.kind === 'GatewayClass' ? { ...o, spec: { controllerName: 'example.com/other' } } : o));
    expect(analyzeMesh(foreign.map((object) => ({ object }))).filter((m) => m.code === 'WEFT0007')).toEqual([]);
  });
});
