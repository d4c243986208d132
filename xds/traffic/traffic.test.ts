// Istio's networking examples in, Envoy and proxyless gRPC config out: every case
// is generated for both targets, decoded strictly against Envoy's protos and
// compared with its golden file; the assertions say what a user relies on.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { expectMatchesGolden } from '../../testing/jest/golden.js';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import { ResourceEncoder, SnapshotCache } from '../cache/snapshot-cache.js';
import { envoySidecarResources } from '../generate/envoy-sidecar-resources.js';
import { grpcClientResources } from '../generate/grpc-client-resources.js';
import { istioConfigOf, meshModelOf, type IstioObject } from '../model/mesh-model-of.js';
import type { ConfigObject, VirtualServiceSpec } from '../model/istio-config.js';
import type { MeshModel } from '../model/mesh-model.js';
import { typeUrls } from '../protos.js';
import type { ProxyKind, ProxyScope } from './proxy-scope.js';
import { virtualServiceRoutes } from './http-routes.js';
import { ProxyView, routeSemanticsAnnotation } from './proxy-view.js';

const testdata = join(import.meta.dirname, 'testdata');

/** bookinfo: reviews v1/v2/v3, ratings v1/v2, details; plus a service in the root namespace and one elsewhere. */
function cluster(): { services: V1Service[]; slices: V1EndpointSlice[]; pods: V1Pod[] } {
  const workloads = [
    { service: 'reviews', namespace: 'bookinfo', pod: 'reviews-v1-a', ip: '10.244.1.1', version: 'v1' },
    { service: 'reviews', namespace: 'bookinfo', pod: 'reviews-v2-a', ip: '10.244.1.2', version: 'v2' },
    { service: 'reviews', namespace: 'bookinfo', pod: 'reviews-v3-a', ip: '10.244.1.3', version: 'v3' },
    { service: 'ratings', namespace: 'bookinfo', pod: 'ratings-v1-a', ip: '10.244.2.1', version: 'v1' },
    { service: 'ratings', namespace: 'bookinfo', pod: 'ratings-v2-a', ip: '10.244.2.2', version: 'v2' },
    { service: 'details', namespace: 'bookinfo', pod: 'details-v1-a', ip: '10.244.3.1', version: 'v1' },
    { service: 'weftd', namespace: 'istio-system', pod: 'weftd-a', ip: '10.244.9.1', version: 'v1' },
    { service: 'ledger', namespace: 'other', pod: 'ledger-a', ip: '10.244.8.1', version: 'v1' },
  ];
  const serviceNames = [...new Set(workloads.map((w) => `${w.namespace}/${w.service}`))];
  return {
    services: serviceNames.map((key) => {
      const [namespace, name] = key.split('/') as [string, string];
      return { metadata: { name, namespace }, spec: { ports: [{ name: 'http', port: 9080, protocol: 'TCP' }] } };
    }),
    slices: serviceNames.map((key) => {
      const [namespace, name] = key.split('/') as [string, string];
      return {
        addressType: 'IPv4',
        metadata: { name: `${name}-abc`, namespace, labels: { 'kubernetes.io/service-name': name } },
        ports: [{ name: 'http', port: 9080 }],
        endpoints: workloads
          .filter((w) => w.service === name && w.namespace === namespace)
          .map((w) => ({ addresses: [w.ip], conditions: { ready: true }, targetRef: { kind: 'Pod', name: w.pod, namespace } })),
      };
    }),
    pods: workloads.map((w) => ({
      metadata: {
        name: w.pod,
        namespace: w.namespace,
        labels: { app: w.service, version: w.version, 'security.istio.io/tlsMode': 'istio' },
      },
      status: { podIP: w.ip },
    })),
  };
}

function modelWith(caseName: string): MeshModel {
  // `converted/`: VirtualServices as gatewayapi/ writes them, kept apart from `cases/`, which the parity suite
  // (xds/parity) and the admission fuzzer apply as a user's objects, internal annotations and all.
  const folder = convertedCases.includes(caseName) ? 'converted' : 'cases';
  return modelOf(parseAllDocuments(readFileSync(join(testdata, folder, `${caseName}.yaml`), 'utf8')).map((d) => d.toJS() as IstioObject));
}

/** Cases in `testdata/converted/`. */
const convertedCases = ['gateway-api-routes'];

/**
 * The bookinfo cluster with these Istio objects. A VirtualService annotated with Istio's
 * `internal.istio.io/route-semantics` stands for one gatewayapi/ converted from a Gateway API route: it
 * joins the config as xds/model/gateway-api-source.ts adds those, annotation kept and not validated
 * (its unusable backends are `host: ''`, which a user's VirtualService may not have).
 */
function modelOf(documents: IstioObject[]): MeshModel {
  const plural = (kind: string) => (kind.endsWith('Entry') ? `${kind.toLowerCase().slice(0, -1)}ies` : `${kind.toLowerCase()}s`);
  const byPlural: Record<string, IstioObject[]> = {};
  const converted: Array<ConfigObject<VirtualServiceSpec>> = [];
  for (const object of documents) {
    const metadata = object.metadata as {
      name: string;
      namespace: string;
      creationTimestamp?: string;
      annotations?: Record<string, string>;
    };
    const semantics = metadata.annotations?.[routeSemanticsAnnotation];
    if (object.kind === 'VirtualService' && semantics !== undefined) {
      converted.push({
        kind: 'VirtualService',
        name: metadata.name,
        namespace: metadata.namespace,
        ...(metadata.creationTimestamp ? { creationTimestamp: metadata.creationTimestamp } : {}),
        annotations: { [routeSemanticsAnnotation]: semantics },
        spec: object.spec as VirtualServiceSpec,
      });
    } else (byPlural[plural(object.kind ?? '')] ??= []).push(object);
  }
  const { services, slices, pods } = cluster();
  const config = istioConfigOf(byPlural);
  config.virtualServices = [...config.virtualServices, ...converted];
  return meshModelOf(services, slices, 'cluster.local', pods, config, 'istio-system');
}

const productpage = (kind: ProxyKind): ProxyScope => ({ kind, namespace: 'bookinfo', labels: { app: 'productpage', version: 'v1' } });

function generate(model: MeshModel, scope: ProxyScope) {
  const view = new ProxyView(model, scope);
  const cache = new SnapshotCache(new ResourceEncoder());
  cache.update(scope.kind === 'grpc' ? grpcClientResources(view) : envoySidecarResources(view));
  const node = { id: 'test' };
  const decoded = (typeUrl: string) =>
    cache.resources(node, typeUrl, []).resources.map((r) => decodeStrictly(typeUrl, r.resource.value) as Record<string, any>);
  return { routes: decoded(typeUrls.route), clusters: decoded(typeUrls.cluster), endpoints: decoded(typeUrls.endpoint) };
}

const cases = [
  'canary-weights',
  'header-match',
  'fault-injection',
  'retries-timeouts',
  'rewrites-mirrors-headers',
  'destination-policies',
  'service-entries',
  'sidecar-scope',
  'source-labels-export',
  'gateway-api-routes',
];

// grpc-js-xds's own RouteConfiguration check (gRFC A28): one route it refuses NACKs the whole
// configuration, so every route of the host is lost to proxyless clients.
const require = createRequire(import.meta.url);
require('@grpc/grpc-js-xds').register();
const { RouteConfigurationResourceType } = require('@grpc/grpc-js-xds/build/src/xds-resource-type/route-config-resource-type.js') as {
  RouteConfigurationResourceType: {
    get(): { decode(context: unknown, resource: { type_url: string; value: Buffer }): { error?: string } };
  };
};

describe('proxyless gRPC route configurations', () => {
  it.each(cases)('%s: grpc-js-xds accepts every route configuration (rules it cannot take are left out, and reported)', (caseName) => {
    const view = new ProxyView(modelWith(caseName), productpage('grpc'));
    const cache = new SnapshotCache(new ResourceEncoder());
    cache.update(grpcClientResources(view));
    const errors = cache
      .resources({ id: 'test' }, typeUrls.route, [])
      .resources.map(
        (r) => RouteConfigurationResourceType.get().decode({}, { type_url: typeUrls.route, value: Buffer.from(r.resource.value) }).error,
      )
      .filter((error) => error !== undefined);
    expect(errors).toEqual([]);
  });

  it('leaves out a redirect, a direct response and a delegating rule for gRPC, keeping the rules after them', () => {
    const vs = (name: string, http: object) => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name, namespace: 'bookinfo' },
      spec: { hosts: [`${name}.bookinfo.svc.cluster.local`], http: [http, { route: [{ destination: { host: name } }] }] },
    });
    const model = modelOf([
      vs('reviews', { match: [{ uri: { prefix: '/old' } }], redirect: { uri: '/new' } }),
      vs('ratings', { match: [{ uri: { prefix: '/gone' } }], directResponse: { status: 410 } }),
      vs('details', { match: [{ uri: { prefix: '/more' } }], delegate: { name: 'details-more', namespace: 'bookinfo' } }),
    ] as IstioObject[]);
    const view = new ProxyView(model, productpage('grpc'));
    const cache = new SnapshotCache(new ResourceEncoder());
    cache.update(grpcClientResources(view));
    const configs = cache.resources({ id: 'test' }, typeUrls.route, []).resources;
    for (const r of configs)
      expect(
        RouteConfigurationResourceType.get().decode({}, { type_url: typeUrls.route, value: Buffer.from(r.resource.value) }).error,
      ).toBeUndefined();
    const generated = { routes: configs.map((r) => decodeStrictly(typeUrls.route, r.resource.value) as Record<string, any>) };
    for (const host of ['reviews', 'ratings', 'details'])
      expect(
        routesFor(generated as ReturnType<typeof generate>, `${host}.bookinfo.svc.cluster.local:9080`).map((r) => r['route']?.cluster),
      ).toEqual([`outbound|9080||${host}.bookinfo.svc.cluster.local`]);
    // Envoy sidecars keep the redirect and the direct response; the delegating rule is left out for them too.
    const sidecar = generate(model, productpage('sidecar'));
    expect(routesFor(sidecar, 'reviews.bookinfo.svc.cluster.local')[0]?.['redirect']).toBeDefined();
    expect(routesFor(sidecar, 'ratings.bookinfo.svc.cluster.local')[0]?.['direct_response']).toMatchObject({ status: 410 });
    expect(routesFor(sidecar, 'details.bookinfo.svc.cluster.local').map((r) => r['route']?.cluster)).toEqual([
      'outbound|9080||details.bookinfo.svc.cluster.local',
    ]);
  });
});

describe.each(['sidecar', 'grpc'] as const)('Istio networking examples for %s proxies', (kind) => {
  it.each(cases)('%s decodes strictly and matches its golden file', (caseName) => {
    const { routes, clusters } = generate(modelWith(caseName), productpage(kind));
    expectMatchesGolden(join(testdata, 'golden', `${caseName}.${kind}.yaml`), stringify({ routes, clusters }));
  });
});

/** The route entries of one host's virtual host. */
function routesFor(generated: ReturnType<typeof generate>, host: string): Array<Record<string, any>> {
  for (const config of generated.routes) {
    for (const vhost of config['virtual_hosts'] ?? []) {
      if ((vhost.domains as string[]).includes(host)) return vhost.routes;
    }
  }
  throw new Error(`no virtual host for ${host}`);
}

describe('VirtualService semantics', () => {
  it.each(['sidecar', 'grpc'] as const)('splits 90/10 across subsets whose clusters select by label (%s)', (kind) => {
    const generated = generate(modelWith('canary-weights'), productpage(kind));
    const [route] = routesFor(generated, 'reviews.bookinfo.svc.cluster.local');
    expect(route?.['route'].weighted_clusters.clusters).toEqual([
      { name: 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local', weight: { value: 90 } },
      { name: 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local', weight: { value: 10 } },
    ]);
    const v2 = generated.endpoints.find((e) => e['cluster_name'] === 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local');
    expect(v2?.['endpoints'][0].lb_endpoints.map((e: any) => e.endpoint.address.socket_address.address)).toEqual(['10.244.1.2']);
  });

  it('keeps route order: the header match first, the catch-all last', () => {
    const routes = routesFor(generate(modelWith('header-match'), productpage('grpc')), 'reviews.bookinfo.svc.cluster.local');
    expect(routes.map((r) => [r['match'], r['route'].cluster])).toEqual([
      [
        { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
        'outbound|9080|v2|reviews.bookinfo.svc.cluster.local',
      ],
      [{ prefix: '/' }, 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local'],
    ]);
  });

  it('puts faults on the route, for the fault filter both proxies run', () => {
    const routes = routesFor(generate(modelWith('fault-injection'), productpage('grpc')), 'ratings.bookinfo.svc.cluster.local');
    expect(routes[0]?.['typed_per_filter_config']['envoy.filters.http.fault']).toMatchObject({
      delay: { fixed_delay: { seconds: '7' }, percentage: { numerator: 1_000_000, denominator: 'MILLION' } },
    });
    expect(routes[1]?.['typed_per_filter_config']['envoy.filters.http.fault']).toMatchObject({
      abort: { http_status: 500, percentage: { numerator: 500_000, denominator: 'MILLION' } },
    });
  });

  it('sets timeouts where each proxy reads them, retries with per-try timeouts and status codes, and attempts 0 as no retries', () => {
    const timeout = { seconds: '1', nanos: 500_000_000 };
    for (const kind of ['sidecar', 'grpc'] as const) {
      const [first, second] = routesFor(generate(modelWith('retries-timeouts'), productpage(kind)), 'ratings.bookinfo.svc.cluster.local');
      // As Istio's setTimeout: Envoy bounds the grpc-timeout header by max_grpc_timeout, gRPC reads max_stream_duration.
      expect(first?.['route']).toEqual(
        expect.objectContaining(
          kind === 'grpc' ? { timeout, max_stream_duration: { max_stream_duration: timeout } } : { timeout, max_grpc_timeout: timeout },
        ),
      );
      expect(first?.['route'][kind === 'grpc' ? 'max_grpc_timeout' : 'max_stream_duration']).toBeUndefined();
      expect(first?.['route']).toMatchObject({
        retry_policy: {
          retry_on: 'unavailable,cancelled,retriable-status-codes',
          num_retries: { value: 3 },
          per_try_timeout: { nanos: 500_000_000 },
          retriable_status_codes: [503],
        },
      });
      expect(first?.['match']).toEqual({
        prefix: '/weft.testing.Echo/',
        headers: [{ name: ':method', string_match: { exact: 'POST' } }],
      });
      expect(second?.['route'].retry_policy).toBeUndefined();
    }
  });

  it('gives Envoy rewrites, redirects, mirrors and header operations, and leaves them out for gRPC, which has none', () => {
    const envoy = routesFor(generate(modelWith('rewrites-mirrors-headers'), productpage('sidecar')), 'reviews.bookinfo.svc.cluster.local');
    expect(envoy.map((r) => r['name'])).toEqual(['legacy', 'reviews-v2-routes', 'reviews-v2-routes', 'reviews-v1-route']);
    expect(envoy[0]?.['redirect']).toEqual({
      path_redirect: '/v1/bookRatings',
      host_redirect: 'newratings.default.svc.cluster.local',
      // response_code is left at its zero value, MOVED_PERMANENTLY (301), as Istio's default.
    });
    expect(envoy[2]?.['match']).toMatchObject({
      safe_regex: { regex: '^/consumercatalog/[a-z]+$' },
      case_sensitive: {}, // BoolValue false: present, zero inside
      query_parameters: [{ name: 'debug', string_match: { exact: 'true' } }],
    });
    expect(envoy[1]?.['route']).toMatchObject({
      prefix_rewrite: '/newcatalog',
      request_mirror_policies: [
        { cluster: 'outbound|9080|v3|reviews.bookinfo.svc.cluster.local', runtime_fraction: { default_value: { numerator: 255_000 } } },
      ],
    });
    expect(envoy[1]?.['request_headers_to_remove']).toEqual(['x-legacy']);
    expect(envoy[3]?.['match']).toEqual({ prefix: '/', headers: [{ name: 'x-canary', present_match: true, invert_match: true }] });
    expect(envoy[3]?.['route'].weighted_clusters.clusters[0].request_headers_to_add).toEqual([
      // append_action APPEND_IF_EXISTS_OR_ADD (Istio's `add`) is the zero value.
      { header: { key: 'x-subset', value: 'v1' } },
    ]);
    const grpc = routesFor(generate(modelWith('rewrites-mirrors-headers'), productpage('grpc')), 'reviews.bookinfo.svc.cluster.local');
    expect(grpc[1]?.['route'].prefix_rewrite).toBeUndefined();
    expect(grpc[1]?.['route'].request_mirror_policies).toBeUndefined();
  });

  it('applies sourceLabels routes only to the workloads they name, and exportTo "." only in its namespace', () => {
    const model = modelWith('source-labels-export');
    const fromProductpage = routesFor(generate(model, productpage('grpc')), 'ratings.bookinfo.svc.cluster.local');
    expect(fromProductpage.map((r) => r['route'].cluster)).toEqual([
      'outbound|9080|v1|ratings.bookinfo.svc.cluster.local',
      'outbound|9080|v2|ratings.bookinfo.svc.cluster.local',
    ]);
    const fromReviews = routesFor(
      generate(model, { kind: 'grpc', namespace: 'bookinfo', labels: { app: 'reviews' } }),
      'ratings.bookinfo.svc.cluster.local',
    );
    expect(fromReviews.map((r) => r['route'].cluster)).toEqual(['outbound|9080|v2|ratings.bookinfo.svc.cluster.local']);
    // In its own namespace the older, private rule wins.
    const fromOther = routesFor(generate(model, { kind: 'grpc', namespace: 'other', labels: {} }), 'ratings.bookinfo.svc.cluster.local');
    expect(fromOther[0]?.['typed_per_filter_config']?.['envoy.filters.http.fault']).toMatchObject({ abort: { http_status: 503 } });
  });
});

describe('DestinationRule semantics', () => {
  const clusterNamed = (generated: ReturnType<typeof generate>, name: string) => generated.clusters.find((c) => c['name'] === name);

  it('merges the rule, port-level settings and subset overrides as Istio does (Envoy)', () => {
    const generated = generate(modelWith('destination-policies'), productpage('sidecar'));
    const base = clusterNamed(generated, 'outbound|9080||reviews.bookinfo.svc.cluster.local');
    // The port-level ROUND_ROBIN replaces the rule's LEAST_REQUEST (proto3 leaves the zero value, ROUND_ROBIN, out).
    expect(base?.['lb_policy']).toBeUndefined();
    expect(base).toMatchObject({
      connect_timeout: { nanos: 30_000_000 },
      circuit_breakers: {
        thresholds: [
          {
            max_connections: { value: 100 },
            max_pending_requests: { value: 10 },
            max_requests: { value: 1000 },
            max_retries: { value: 4 },
          },
        ],
      },
      outlier_detection: { consecutive_5xx: { value: 7 }, interval: { seconds: '300' }, max_ejection_percent: { value: 100 } },
    });
    expect(clusterNamed(generated, 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local')).toMatchObject({
      lb_policy: 'RING_HASH',
      ring_hash_lb_config: { minimum_ring_size: { value: '4096' } },
    });
    const routes = routesFor(generated, 'reviews.bookinfo.svc.cluster.local');
    expect(routes[0]?.['route'].hash_policy).toEqual([{ header: { header_name: 'x-user' } }]);
    expect(routes[1]?.['route'].hash_policy).toEqual([{ connection_properties: { source_ip: true } }]);
  });

  it('gives gRPC what it implements: round robin or ring hash, max requests, failure-percentage ejection', () => {
    const generated = generate(modelWith('destination-policies'), productpage('grpc'));
    const base = clusterNamed(generated, 'outbound|9080||reviews.bookinfo.svc.cluster.local');
    expect(base?.['lb_policy']).toBeUndefined(); // ROUND_ROBIN, the zero value
    expect(base?.['circuit_breakers']).toEqual({ thresholds: [{ max_requests: { value: 1000 } }] });
    expect(base?.['outlier_detection']).toMatchObject({
      enforcing_failure_percentage: { value: 100 },
      failure_percentage_request_volume: { value: 7 },
      enforcing_success_rate: {}, // UInt32Value 0: success-rate ejection off
    });
    const routes = routesFor(generated, 'reviews.bookinfo.svc.cluster.local');
    expect(routes[1]?.['route'].hash_policy).toEqual([{ filter_state: { key: 'io.grpc.channel_id' } }]);
  });
});

describe('ServiceEntry, WorkloadEntry and Sidecar', () => {
  it('resolves DNS entries in Envoy, serves STATIC ones and selected WorkloadEntries over EDS', () => {
    const generated = generate(modelWith('service-entries'), productpage('sidecar'));
    const httpbin = generated.clusters.find((c) => c['name'] === 'outbound|80||httpbin.example.com');
    expect(httpbin).toMatchObject({
      type: 'STRICT_DNS',
      load_assignment: {
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'httpbin.example.com', port_value: 80 } } } }] }],
      },
    });
    expect(httpbin?.['transport_socket_matches']).toBeUndefined();
    const details = generated.endpoints.find((e) => e['cluster_name'] === 'outbound|80||details.bookinfo.com');
    expect(details?.['endpoints'][0].lb_endpoints.map((e: any) => e.endpoint.address.socket_address)).toEqual([
      { address: '127.0.0.20', port_value: 8080 },
      { address: '127.0.0.21', port_value: 9090 },
    ]);
    const mongo = generated.endpoints.find((e) => e['cluster_name'] === 'outbound|27018||mymongodb.somedomain');
    expect(mongo?.['endpoints'][0].lb_endpoints).toHaveLength(2);
  });

  it('limits what a proxy receives to its Sidecar egress hosts and blocks the rest', () => {
    const unscoped = generate(modelWith('canary-weights'), productpage('sidecar'));
    const scoped = generate(modelWith('sidecar-scope'), productpage('sidecar'));
    const hosts = (generated: ReturnType<typeof generate>) =>
      generated.clusters.map((c) => c['name'] as string).filter((name) => name.startsWith('outbound|'));
    expect(hosts(unscoped)).toContain('outbound|9080||ledger.other.svc.cluster.local');
    expect(hosts(scoped)).not.toContain('outbound|9080||ledger.other.svc.cluster.local');
    expect(hosts(scoped)).toContain('outbound|9080||weftd.istio-system.svc.cluster.local');
    expect(hosts(scoped)).toContain('outbound|9080||reviews.bookinfo.svc.cluster.local');
    const fallback = scoped.routes[0]?.['virtual_hosts'].at(-1);
    // As Istio's block_all: answered 502 by the sidecar itself.
    expect(fallback).toMatchObject({ name: 'block_all', routes: [{ direct_response: { status: 502 } }] });
    // A proxy in a namespace without a Sidecar still sees everything.
    const elsewhere = generate(modelWith('sidecar-scope'), { kind: 'sidecar', namespace: 'other', labels: {} });
    expect(hosts(elsewhere)).toContain('outbound|9080||reviews.bookinfo.svc.cluster.local');
  });
});

describe('weights and route defaults, as Istio', () => {
  const reviewsSubsets: IstioObject = {
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'bookinfo' },
    spec: {
      host: 'reviews',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  };
  const reviews = (http: object[]): IstioObject => ({
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'bookinfo' },
    spec: { hosts: ['reviews'], http },
  });
  const split = (...weights: number[]) => ({
    route: weights.map((weight, i) => ({ destination: { host: 'reviews', subset: `v${i + 1}` }, weight })),
  });
  const routeOf = (kind: ProxyKind, objects: IstioObject[]) =>
    routesFor(generate(modelOf(objects), productpage(kind)), 'reviews.bookinfo.svc.cluster.local')[0]?.['route'];

  it.each(['sidecar', 'grpc'] as const)('splits 60/60 evenly: weights as written, relative, no total_weight (%s)', (kind) => {
    const route = routeOf(kind, [reviewsSubsets, reviews([split(60, 60)])]);
    expect(route.weighted_clusters).toEqual({
      clusters: [
        { name: 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local', weight: { value: 60 } },
        { name: 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local', weight: { value: 60 } },
      ],
    });
  });

  it('drops zero weights from a split but keeps it a split; one destination is the cluster whatever its weight', () => {
    expect(routeOf('sidecar', [reviewsSubsets, reviews([split(100, 0)])]).weighted_clusters).toEqual({
      clusters: [{ name: 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local', weight: { value: 100 } }],
    });
    expect(routeOf('sidecar', [reviewsSubsets, reviews([split(0)])]).cluster).toBe('outbound|9080|v1|reviews.bookinfo.svc.cluster.local');
  });

  // Istio's DefaultPolicy (retry/retry.go): no status code, so an application's 503 to a POST is not sent again.
  const defaultRetries = {
    retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
    num_retries: { value: 2 },
    retry_host_predicate: [
      {
        name: 'envoy.retry_host_predicates.previous_hosts',
        typed_config: { type_url: 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' },
      },
    ],
    host_selection_retry_max_attempts: '5',
  };

  it.each(['sidecar', 'grpc'] as const)('retries no HTTP status by default, with or without a VirtualService (%s)', (kind) => {
    for (const objects of [[], [reviews([{ route: [{ destination: { host: 'reviews' } }] }])]]) {
      const route = routeOf(kind, objects);
      expect(route.retry_policy).toEqual(defaultRetries);
      expect(route.retry_policy.retriable_status_codes).toBeUndefined();
      expect(route.retry_policy.retry_on.split(',')).not.toEqual(expect.arrayContaining(['5xx']));
    }
  });

  it('takes the default conditions when `retries` has no retryOn, and drops the host predicate for a hashed destination', () => {
    const route = routeOf('sidecar', [reviews([{ route: [{ destination: { host: 'reviews' } }], retries: { attempts: 4 } }])]);
    expect(route.retry_policy).toEqual({ ...defaultRetries, num_retries: { value: 4 } });
    const hashed: IstioObject = {
      ...reviewsSubsets,
      spec: { host: 'reviews', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } },
    };
    const sticky = routeOf('sidecar', [hashed, reviews([{ route: [{ destination: { host: 'reviews' } }] }])]);
    expect(sticky.hash_policy).toEqual([{ header: { header_name: 'x-user' } }]);
    const { retry_host_predicate: _predicate, ...withoutPredicate } = defaultRetries;
    expect(sticky.retry_policy).toEqual(withoutPredicate);
  });

  it('reads retryIgnorePreviousHosts, retryRemoteLocalities and backoff, and codes only with retriable-status-codes', () => {
    const route = routeOf('sidecar', [
      reviews([
        {
          route: [{ destination: { host: 'reviews' } }],
          retries: { attempts: 1, retryOn: '503', retryIgnorePreviousHosts: false, retryRemoteLocalities: true, backoff: '50ms' },
        },
      ]),
    ]);
    expect(route.retry_policy).toEqual({
      retry_on: ',retriable-status-codes',
      retriable_status_codes: [503],
      num_retries: { value: 1 },
      host_selection_retry_max_attempts: '5',
      retry_priority: {
        name: 'envoy.retry_priorities.previous_priorities',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
          update_frequency: 2,
        },
      },
      retry_back_off: { base_interval: { nanos: 50_000_000 } },
    });
  });
});

// Istio's model.UseGatewaySemantics: what changes for VirtualServices converted from Gateway API routes
// (annotation `internal.istio.io/route-semantics: gateway`), pilot/pkg/networking/core/route/route.go.
describe('Gateway API route semantics', () => {
  const { PathSafeRegexValueMatcher } = require('@grpc/grpc-js-xds/build/src/matcher.js') as {
    PathSafeRegexValueMatcher: new (regex: string) => { apply(path: string): boolean };
  };
  const reviewsRoutes = (kind: ProxyKind) =>
    routesFor(generate(modelWith('gateway-api-routes'), productpage(kind)), 'reviews.bookinfo.svc.cluster.local');
  const headersOf = (route: Record<string, any> | undefined) =>
    (route?.['request_headers_to_add'] ?? []).map((h: any) => `${h.header.key}=${h.header.value}`);

  it('matches a PathPrefix by path segment for Envoy: `/get` and `/get/x`, not `/getaway`', () => {
    expect(reviewsRoutes('sidecar').map((r) => r['match'])).toEqual([
      { path_separated_prefix: '/get' },
      { path_separated_prefix: '/api' },
      { path_separated_prefix: '/missing' },
      { path_separated_prefix: '/gone' },
    ]);
  });

  it('gives proxyless gRPC a regex its client takes that matches the same paths', () => {
    const [get] = reviewsRoutes('grpc');
    const regex = get?.['match'].safe_regex.regex as string;
    const matcher = new PathSafeRegexValueMatcher(regex);
    expect(['/get', '/get/', '/get/x', '/getaway', '/ge', '/x/get'].filter((path) => matcher.apply(path))).toEqual([
      '/get',
      '/get/',
      '/get/x',
    ]);
  });

  it('strips the matched prefix for a rewrite to `/`, as ReplacePrefixMatch asks', () => {
    const rewrite = reviewsRoutes('sidecar')[1]?.['route'].regex_rewrite as { pattern: { regex: string }; substitution: string };
    expect(reviewsRoutes('sidecar')[1]?.['route'].prefix_rewrite).toBeUndefined();
    // RE2's `\2` is JavaScript's `$2`.
    const rewritten = (path: string) => path.replace(new RegExp(rewrite.pattern.regex), rewrite.substitution.replace('\\2', '$2'));
    expect(['/api', '/api/', '/api/x/y'].map(rewritten)).toEqual(['/', '/', '/x/y']);
  });

  it('answers 500 for an unusable backend: the cluster istiod names UnknownService, which no proxy has', () => {
    const generated = generate(modelWith('gateway-api-routes'), productpage('sidecar'));
    const routes = routesFor(generated, 'reviews.bookinfo.svc.cluster.local');
    expect(routes.map((r) => r['route'].cluster_not_found_response_code)).toEqual(Array(4).fill('INTERNAL_SERVER_ERROR'));
    expect(routes[2]?.['route'].weighted_clusters.clusters.map((c: any) => c.name)).toEqual([
      'UnknownService',
      'outbound|9080||reviews.bookinfo.svc.cluster.local',
    ]);
    expect(routes[3]?.['route'].cluster).toBe('UnknownService');
    expect(generated.clusters.map((c) => c['name'])).not.toContain('UnknownService');
    // A user's VirtualService keeps Envoy's default (503) for a cluster it does not have.
    const user = routesFor(generate(modelWith('header-match'), productpage('sidecar')), 'reviews.bookinfo.svc.cluster.local');
    expect(user[0]?.['route'].cluster_not_found_response_code).toBeUndefined();
  });

  it.each(['sidecar', 'grpc'] as const)(
    'takes the caller namespace’s consumer route over the older producer route, else the producer route (%s)',
    (kind) => {
      const model = modelWith('gateway-api-routes');
      const ledger = (namespace: string) =>
        routesFor(generate(model, { kind, namespace, labels: { app: 'caller' } }), 'ledger.other.svc.cluster.local');
      const expected = kind === 'grpc' ? [[], [], []] : [['x-route=consumer'], ['x-route=producer'], ['x-route=producer']];
      expect(['bookinfo', 'other', 'team'].map((ns) => headersOf(ledger(ns)[0]))).toEqual(expected);
      expect(['bookinfo', 'other', 'team'].map((ns) => ledger(ns)[0]?.['name'])).toEqual([
        'bookinfo.ledger-consumer.0',
        'other.ledger-producer.0',
        'other.ledger-producer.0',
      ]);
    },
  );

  it('gives a gateway (router) the same semantics for a route bound to its Gateway listener', () => {
    const rule = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: {
        name: 'gw-web-istio-autogenerated-k8s-gateway',
        namespace: 'bookinfo',
        annotations: { [routeSemanticsAnnotation]: 'gateway' },
      },
      spec: {
        hosts: ['bookinfo.example.com'],
        gateways: ['bookinfo/gw-istio-autogenerated-k8s-gateway-web'],
        http: [
          {
            match: [{ uri: { prefix: '/api/' } }],
            rewrite: { uri: '/' },
            route: [{ destination: { host: 'reviews.bookinfo.svc.cluster.local', port: { number: 9080 } } }],
          },
          { route: [{ destination: { host: '' } }] },
        ],
      },
    } as IstioObject;
    const model = modelOf([rule]);
    const view = new ProxyView(model, {
      kind: 'router',
      namespace: 'bookinfo',
      labels: { 'gateway.networking.k8s.io/gateway-name': 'gw' },
    });
    const [converted] = model.istio?.virtualServices ?? [];
    const routes = virtualServiceRoutes(converted as ConfigObject<VirtualServiceSpec>, {
      view,
      hostname: 'bookinfo.example.com',
      port: 80,
      gateways: new Set(['bookinfo/gw-istio-autogenerated-k8s-gateway-web']),
    });
    expect(
      (routes as Array<Record<string, any>>).map((r) => [
        r['match'],
        r['route'].cluster,
        r['route'].cluster_not_found_response_code,
        r['route'].regex_rewrite,
      ]),
    ).toEqual([
      [
        { path_separated_prefix: '/api' },
        'outbound|9080||reviews.bookinfo.svc.cluster.local',
        'INTERNAL_SERVER_ERROR',
        { pattern: { regex: '^/api(/?)(.*)' }, substitution: '/\\2' },
      ],
      [{ prefix: '/' }, 'UnknownService', 'INTERNAL_SERVER_ERROR', undefined],
    ]);
  });

  it('applies a route only to callers in its namespace or to a Service in its namespace', () => {
    const model = modelWith('gateway-api-routes');
    const details = (namespace: string) =>
      routesFor(generate(model, { kind: 'sidecar', namespace, labels: { app: 'caller' } }), 'details.bookinfo.svc.cluster.local');
    // istio-system's route for bookinfo's details: neither its caller's namespace nor its Service's for bookinfo.
    expect(details('bookinfo').map((r) => r['name'])).toEqual(['default']);
    expect(details('istio-system').map((r) => [r['name'], r['route'].cluster])).toEqual([
      ['istio-system.details-bystander.0', 'outbound|9080||ledger.other.svc.cluster.local'],
    ]);
  });
});
