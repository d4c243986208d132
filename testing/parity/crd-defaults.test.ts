// The API server's CRD defaults, as parity cases apply them to Gateway API objects.
import { withCrdDefaults } from './crd-defaults.js';

describe('withCrdDefaults', () => {
  it("fills in an HTTPRoute's defaults at every depth, as the API server stores it, leaving the input unchanged", () => {
    const route = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'r' },
      spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: 'svc', port: 80 }] }] },
    };
    const before = structuredClone(route);
    const defaulted = withCrdDefaults(route);
    expect(route).toEqual(before);
    expect(defaulted.spec).toEqual({
      parentRefs: [{ name: 'gw', group: 'gateway.networking.k8s.io', kind: 'Gateway' }],
      rules: [
        {
          // A rule without matches matches every path.
          matches: [{ path: { type: 'PathPrefix', value: '/' } }],
          backendRefs: [{ name: 'svc', port: 80, group: '', kind: 'Service', weight: 1 }],
        },
      ],
    });
  });

  it('keeps what the object sets over a default', () => {
    const route = withCrdDefaults({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      spec: { rules: [{ matches: [{ path: { type: 'Exact', value: '/a' } }] }] },
    });
    expect(route.spec.rules[0]?.matches).toEqual([{ path: { type: 'Exact', value: '/a' } }]);
  });

  it('refuses a kind or version the CRDs do not serve, naming both', () => {
    expect(() => withCrdDefaults({ apiVersion: 'gateway.networking.k8s.io/v9', kind: 'HTTPRoute' })).toThrow(
      'apiVersion gateway.networking.k8s.io/v9 kind HTTPRoute',
    );
  });
});
