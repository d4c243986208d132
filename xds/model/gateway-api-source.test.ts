// The Gateway API joining weftd's model: generated objects beside the user's, and an unchanged one
// kept as the same object across rebuilds (the incremental xDS derivation compares by identity).
import type { V1Namespace, V1Service } from '@kubernetes/client-node';
import type { GatewayApiObjects } from '../../gatewayapi/gateway-api-config.js';
import { emptyIstioConfig } from './istio-config.js';
import { GeneratedObjects, withGatewayApi } from './gateway-api-source.js';
import { meshModelOf } from './mesh-model-of.js';
import { grpcClientResources } from '../generate/grpc-client-resources.js';
import { typeUrls } from '../protos.js';
import { ProxyView } from '../traffic/proxy-view.js';

const services: V1Service[] = [{ metadata: { name: 'reviews', namespace: 'default' }, spec: { ports: [{ name: 'http', port: 9080 }] } }];
const namespaces: V1Namespace[] = [{ metadata: { name: 'default' } }];
const route = (backend: string) => ({
  metadata: { name: 'reviews', namespace: 'default', generation: 1 },
  spec: { parentRefs: [{ group: '', kind: 'Service', name: 'reviews' }], rules: [{ backendRefs: [{ name: backend, port: 9080 }] }] },
});
const objects = (backend: string): GatewayApiObjects => ({
  gatewayClasses: [],
  gateways: [],
  httpRoutes: [route(backend)],
  grpcRoutes: [],
  tcpRoutes: [],
  tlsRoutes: [],
  referenceGrants: [],
});

describe('withGatewayApi', () => {
  it("adds the GAMMA route's mesh VirtualService after the user's own", () => {
    const user = {
      ...emptyIstioConfig(),
      virtualServices: [{ kind: 'VirtualService', name: 'mine', namespace: 'default', spec: { hosts: ['x'] } }],
    };
    const { istio, statuses } = withGatewayApi(
      user,
      objects('reviews'),
      services,
      namespaces,
      'cluster.local',
      new GeneratedObjects(),
      'now',
    );
    expect(istio.virtualServices.map((v) => v.name)).toEqual(['mine', 'default~reviews.default.svc.cluster.local']);
    expect(istio.virtualServices[1]?.spec.gateways).toEqual(['mesh']);
    expect(statuses.map((s) => `${s.kind}/${s.name}`)).toEqual(['HTTPRoute/reviews']);
  });

  it('keeps an unchanged generated object as the same object, and replaces a changed one', () => {
    const generated = new GeneratedObjects();
    const first = withGatewayApi(emptyIstioConfig(), objects('reviews'), services, namespaces, 'cluster.local', generated, 'now');
    generated.endRound();
    const same = withGatewayApi(emptyIstioConfig(), objects('reviews'), services, namespaces, 'cluster.local', generated, 'now');
    generated.endRound();
    expect(same.istio.virtualServices[0]).toBe(first.istio.virtualServices[0]);
    const changed = withGatewayApi(emptyIstioConfig(), objects('ratings'), services, namespaces, 'cluster.local', generated, 'now');
    expect(changed.istio.virtualServices[0]).not.toBe(first.istio.virtualServices[0]);
    expect(changed.istio.virtualServices[0]?.spec.http?.[0]?.route?.[0]?.destination.host).toBe('ratings.default.svc.cluster.local');
  });

  it('leaves the config as it was when there is no Gateway API object', () => {
    const user = emptyIstioConfig();
    const empty = { ...objects('x'), httpRoutes: [] };
    expect(withGatewayApi(user, empty, services, namespaces, 'cluster.local', new GeneratedObjects(), 'now').istio).toBe(user);
  });
});

describe('a GAMMA GRPCRoute through the existing generators', () => {
  it('reaches a proxyless gRPC client as weighted clusters behind a header match', () => {
    const kube: V1Service[] = ['ratings', 'ratings-v1', 'ratings-v2'].map((name) => ({
      metadata: { name, namespace: 'default' },
      spec: { ports: [{ name: 'grpc', port: 9080 }], clusterIP: '10.96.0.1' },
    }));
    const grpcRoute = {
      metadata: { name: 'ratings', namespace: 'default' },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'ratings', port: 9080 }],
        rules: [
          {
            matches: [{ headers: [{ name: 'x-user', value: 'jason' }] }],
            backendRefs: [
              { name: 'ratings-v1', port: 9080, weight: 80 },
              { name: 'ratings-v2', port: 9080, weight: 20 },
            ],
          },
        ],
      },
    };
    const { istio } = withGatewayApi(
      emptyIstioConfig(),
      { ...objects('x'), httpRoutes: [], grpcRoutes: [grpcRoute] },
      kube,
      namespaces,
      'cluster.local',
      new GeneratedObjects(),
      'now',
    );
    const model = meshModelOf(kube, [], 'cluster.local', [], istio);
    const resources = grpcClientResources(new ProxyView(model, { kind: 'grpc', namespace: 'default', labels: {} }));
    const ratings = (resources[typeUrls.route] ?? {})['ratings.default.svc.cluster.local:9080'] as {
      virtual_hosts: Array<{ routes: Array<{ match: unknown; route: { weighted_clusters?: unknown } }> }>;
    };
    const [route] = ratings.virtual_hosts[0]?.routes ?? [];
    expect(route?.match).toEqual({ prefix: '/', headers: [{ name: 'x-user', string_match: { exact: 'jason' } }] });
    expect(route?.route.weighted_clusters).toEqual({
      clusters: [
        { name: 'outbound|9080||ratings-v1.default.svc.cluster.local', weight: { value: 80 } },
        { name: 'outbound|9080||ratings-v2.default.svc.cluster.local', weight: { value: 20 } },
      ],
    });
  });
});
