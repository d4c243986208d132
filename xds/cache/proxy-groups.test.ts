// The incremental derivation must give every proxy exactly what generating its
// config from scratch gives, after any sequence of changes, while deriving only
// what a change touches. The from-scratch generators are the golden-tested
// reference; these tests hold the incremental path to them byte for byte.
import { meshModel, podLabels, proxiesOf, serviceOf, withMovedEndpoints, type MeshShape } from '../../testing/fixtures/mesh-shape.js';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import { envoySidecarResources } from '../generate/envoy-sidecar-resources.js';
import { grpcClientResources, grpcServerListeners } from '../generate/grpc-client-resources.js';
import { emptyIstioConfig, type ConfigObject } from '../model/istio-config.js';
import type { MeshModel } from '../model/mesh-model.js';
import { encodeResource, typeUrls } from '../protos.js';
import type { ConfigChange, DiscoveryNode } from '../server/discovery-types.js';
import { proxyScopeOf } from '../traffic/proxy-scope.js';
import { ProxyView } from '../traffic/proxy-view.js';
import { ProxyGroups } from './proxy-groups.js';

const small: MeshShape = { services: 24, namespaces: 6, podsPerService: 2, virtualServices: 6, authorizationPolicies: 4, strictHalf: true };

const object = <Spec>(kind: string, namespace: string, name: string, spec: Spec, age = 100): ConfigObject<Spec> => ({
  kind,
  name,
  namespace,
  creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, age)).toISOString(),
  spec,
});

/** Each proxy's config from the groups equals its config generated from scratch, byte for byte. */
function expectSameAsFromScratch(groups: ProxyGroups, model: MeshModel, nodes: DiscoveryNode[]): void {
  const servers = grpcServerListeners(model)[typeUrls.listener] ?? {};
  for (const node of nodes) {
    const scope = proxyScopeOf(node);
    const view = new ProxyView(model, scope);
    const expected = scope.kind === 'grpc' ? grpcClientResources(view) : envoySidecarResources(view);
    for (const typeUrl of [typeUrls.listener, typeUrls.cluster, typeUrls.route, typeUrls.endpoint]) {
      const want = expected[typeUrl] ?? {};
      const wildcard = typeUrl === typeUrls.listener || typeUrl === typeUrls.cluster;
      const got = groups.resources(node, typeUrl, wildcard ? [] : Object.keys(want)).resources;
      const context = `${node.id} ${typeUrl.split('.').pop()}`;
      expect({ context, names: got.map((r) => r.name).sort() }).toEqual({ context, names: Object.keys(want).sort() });
      for (const resource of got) {
        const bytes = encodeResource(typeUrl, want[resource.name] as Record<string, unknown>);
        if (!bytes.equals(resource.resource.value)) {
          // Show what differs, decoded.
          expect({ context, resource: decodeStrictly(typeUrl, resource.resource.value) }).toEqual({
            context,
            resource: decodeStrictly(typeUrl, bytes),
          });
        }
      }
    }
    if (scope.kind === 'grpc') {
      const names = Object.keys(servers);
      const got = groups.resources(node, typeUrls.listener, names).resources;
      expect(got.map((r) => r.name).sort()).toEqual(names.sort());
      for (const resource of got)
        expect(resource.resource.value.equals(encodeResource(typeUrls.listener, servers[resource.name] as Record<string, unknown>))).toBe(
          true,
        );
    }
  }
}

function connectAll(groups: ProxyGroups, nodes: DiscoveryNode[]): void {
  for (const node of nodes) {
    groups.connected(node);
    for (const typeUrl of [typeUrls.listener, typeUrls.cluster]) groups.resources(node, typeUrl, []);
  }
}

const withIstio = (model: MeshModel, edit: (istio: NonNullable<MeshModel['istio']>) => void): MeshModel => {
  const istio = {
    ...(model.istio as NonNullable<MeshModel['istio']>),
    virtualServices: [...(model.istio?.virtualServices ?? [])],
    destinationRules: [...(model.istio?.destinationRules ?? [])],
    sidecars: [...(model.istio?.sidecars ?? [])],
    peerAuthentications: [...(model.istio?.peerAuthentications ?? [])],
    authorizationPolicies: [...(model.istio?.authorizationPolicies ?? [])],
    telemetries: [...(model.istio?.telemetries ?? [])],
  };
  edit(istio);
  return { ...model, istio };
};

describe('incremental derivation', () => {
  it('gives every proxy what from-scratch generation gives, after each of a sequence of changes', () => {
    const nodes = proxiesOf(small, 6);
    const groups = new ProxyGroups();
    let model = meshModel(small);
    groups.update(model);
    connectAll(groups, nodes);
    expectSameAsFromScratch(groups, model, nodes);

    const host = (i: number) => `svc-${i}.ns-${i % small.namespaces}.svc.cluster.local`;
    const changes: Array<[string, (m: MeshModel) => MeshModel]> = [
      ['an endpoint moves', (m) => withMovedEndpoints(m, small, 3, 1)],
      [
        'a VirtualService changes its weights',
        (m) =>
          withIstio(m, (istio) => {
            istio.virtualServices[1] = object('VirtualService', 'ns-1', 'svc-1', {
              hosts: ['svc-1'],
              http: [
                {
                  route: [
                    { destination: { host: host(1), subset: 'v1' }, weight: 50 },
                    { destination: { host: host(1), subset: 'v2' }, weight: 50 },
                  ],
                },
              ],
            });
          }),
      ],
      [
        'a DestinationRule gains a policy and a subset',
        (m) =>
          withIstio(m, (istio) => {
            istio.destinationRules[2] = object('DestinationRule', 'ns-2', 'svc-2', {
              host: 'svc-2',
              trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } },
              subsets: [
                { name: 'v1', labels: { version: 'v1' } },
                { name: 'v2', labels: { version: 'v2' } },
                { name: 'v3', labels: { version: 'v3' } },
              ],
            });
          }),
      ],
      [
        'a VirtualService routes one host to another, whose DestinationRule then changes',
        (m) =>
          withIstio(m, (istio) => {
            istio.virtualServices.push(
              object('VirtualService', 'ns-1', 'to-svc-2', {
                hosts: ['svc-7'],
                http: [{ route: [{ destination: { host: host(2), subset: 'v3' } }] }],
              }),
            );
          }),
      ],
      [
        'the destination host changes',
        (m) =>
          withIstio(m, (istio) => {
            istio.destinationRules[2] = object('DestinationRule', 'ns-2', 'svc-2', {
              host: 'svc-2',
              trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: 'u', ttl: '10s' } } } },
              subsets: [{ name: 'v3', labels: { version: 'v1' } }],
            });
          }),
      ],
      [
        'a service is added',
        (m) => ({ ...m, services: [...m.services, { ...serviceOf(small, 40), name: 'svc-new', selector: { app: 'svc-5' } }] }),
      ],
      ['a service is removed', (m) => ({ ...m, services: m.services.filter((s) => s.name !== 'svc-4') })],
      [
        'a service gains a TCP port',
        (m) => ({
          ...m,
          services: m.services.map((s) =>
            s.name === 'svc-6' ? { ...s, ports: [...s.ports, { name: 'tcp-db', port: 5432, protocol: 'TCP', targetPort: 5432 }] } : s,
          ),
        }),
      ],
      [
        'a workload PeerAuthentication with port-level mTLS',
        (m) =>
          withIstio(m, (istio) => {
            istio.peerAuthentications.push(
              object('PeerAuthentication', 'ns-5', 'svc-5', {
                selector: { matchLabels: { app: 'svc-5' } },
                mtls: { mode: 'DISABLE' },
                portLevelMtls: { 9000: { mode: 'STRICT' } },
              }),
            );
          }),
      ],
      [
        'a DENY AuthorizationPolicy',
        (m) =>
          withIstio(m, (istio) => {
            istio.authorizationPolicies.push(
              object('AuthorizationPolicy', 'ns-3', 'deny-post', {
                selector: { matchLabels: { app: 'svc-3' } },
                action: 'DENY',
                rules: [{ to: [{ operation: { methods: ['POST'] } }] }],
              }),
            );
          }),
      ],
      [
        'a Sidecar narrows a namespace',
        (m) =>
          withIstio(m, (istio) =>
            istio.sidecars.push(
              object('Sidecar', 'ns-2', 'default', {
                egress: [{ hosts: ['./*', 'istio-system/*'] }],
                outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
              }),
            ),
          ),
      ],
      [
        'a VirtualService match on sourceLabels',
        (m) =>
          withIstio(m, (istio) => {
            istio.virtualServices.push(
              object('VirtualService', 'ns-0', 'canary-callers', {
                hosts: ['svc-12'],
                http: [
                  { match: [{ sourceLabels: { version: 'v2' } }], route: [{ destination: { host: host(12), subset: 'v2' } }] },
                  { route: [{ destination: { host: host(12), subset: 'v1' } }] },
                ],
              }),
            );
          }),
      ],
      [
        'a VirtualService tcp route on sourceLabels',
        (m) =>
          withIstio(m, (istio) => {
            istio.virtualServices.push(
              object('VirtualService', 'ns-1', 'db-canary-callers', {
                hosts: [host(6)],
                tcp: [
                  {
                    match: [{ port: 5432, sourceLabels: { app: 'svc-1' } }],
                    route: [{ destination: { host: host(7), port: { number: 5432 } } }],
                  },
                  { route: [{ destination: { host: host(6), port: { number: 5432 } } }] },
                ],
              }),
            );
          }),
      ],
      [
        'a DestinationRule with a workloadSelector',
        (m) =>
          withIstio(m, (istio) => {
            istio.destinationRules.push(
              object('DestinationRule', 'ns-1', 'svc-1-for-v1', {
                host: host(13),
                workloadSelector: { matchLabels: { version: 'v1' } },
                trafficPolicy: { connectionPool: { tcp: { maxConnections: 7 } } },
              }),
            );
          }),
      ],
      [
        'a Telemetry turns on access logs in a namespace',
        (m) =>
          withIstio(m, (istio) =>
            istio.telemetries.push(object('Telemetry', 'ns-4', 'logs', { accessLogging: [{ providers: [{ name: 'envoy' }] }] })),
          ),
      ],
      ['an endpoint moves again', (m) => withMovedEndpoints(m, small, 2, 2)],
      ['the mesh becomes REGISTRY_ONLY', (m) => ({ ...m, meshConfig: { outboundTrafficPolicy: 'REGISTRY_ONLY' } })],
      ['a VirtualService is deleted', (m) => withIstio(m, (istio) => istio.virtualServices.splice(0, 1))],
    ];
    changes.forEach(([, change], step) => {
      model = change(model);
      // Every other step, a model whose every object is new (equal content must still count as unchanged).
      groups.update(step % 2 === 1 ? structuredClone(model) : model);
      expectSameAsFromScratch(groups, model, nodes);
    });
  });

  it('derives only the moved service’s endpoints and notifies only EDS, only to the proxies that hold them', () => {
    const shape: MeshShape = { ...small, services: 60, namespaces: 10 };
    const nodes = proxiesOf(shape, 10);
    const groups = new ProxyGroups();
    let model = meshModel(shape);
    groups.update(model);
    connectAll(groups, nodes);
    for (const node of nodes)
      groups.resources(
        node,
        typeUrls.endpoint,
        groups.resources(node, typeUrls.cluster, []).resources.map((r) => r.name),
      );
    const changes: ConfigChange[] = [];
    groups.onChange((change) => changes.push(change));
    const before = groups.stats().derivations;

    // Service 3 has a VirtualService and DestinationRule: 3 clusters (port, v1, v2), so 3 ClusterLoadAssignments, each derived once.
    model = withMovedEndpoints(model, shape, 3, 1);
    // EDS, and the listeners proxyless servers ask for by their (moved) addresses.
    expect(groups.update(model).sort()).toEqual([typeUrls.endpoint, typeUrls.listener].sort());
    const after = groups.stats().derivations;
    const delta = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    expect(delta('cla')).toBe(3);
    expect(delta('inbound')).toBe(0);
    expect(delta('encode-part')).toBe(0);
    // Clusters are derived once per kind of proxy and DestinationRule context, not once per group.
    expect(delta('cluster')).toBeLessThanOrEqual(6);

    expect(changes).toHaveLength(1);
    const change = changes[0] as ConfigChange;
    // svc-3's pods are all v2: the v1 subset was empty before and after, so its assignment did not change.
    expect(new Set(change.names?.get(typeUrls.endpoint))).toEqual(
      new Set(['outbound|8080||svc-3.ns-3.svc.cluster.local', 'outbound|8080|v2|svc-3.ns-3.svc.cluster.local']),
    );
    // Every proxy sees svc-3 here (no Sidecar), so all hold it; none is told of another type.
    expect(nodes.every((node) => change.affects?.(node, typeUrls.endpoint))).toBe(true);
    expect(nodes.some((node) => change.affects?.(node, typeUrls.cluster) || change.affects?.(node, typeUrls.route))).toBe(false);
    const sidecars = nodes.filter((node) => proxyScopeOf(node).kind === 'sidecar');
    expect(sidecars.some((node) => change.affects?.(node, typeUrls.listener))).toBe(false);
    expect([...(change.names?.get(typeUrls.listener) ?? [])].every((name) => name.startsWith('xds.istio.io/grpc/lds/inbound/'))).toBe(true);
    expectSameAsFromScratch(groups, model, nodes);
  });

  it('serves a gRPC server listening on all interfaces its own inbound listener, by port, as istiod does', () => {
    const groups = new ProxyGroups();
    const model = meshModel(small);
    groups.update(model);
    const pod = model.services[0]!.endpoints[0]!.address;
    const server = { id: `sidecar~${pod}~svc-0-0.ns-0~ns-0.svc.cluster.local`, metadata: { GENERATOR: 'grpc', NAMESPACE: 'ns-0' } };
    groups.connected(server);
    const listener = (name: string) => groups.resources(server, typeUrls.listener, [name]).resources;
    const own = decodeStrictly(typeUrls.listener, listener(`xds.istio.io/grpc/lds/inbound/${pod}:8080`)[0]!.resource.value) as any;
    // grpc-go's XdsServer on 0.0.0.0 (or [::]) asks by the wildcard: the answer is its own port's listener under that name.
    for (const host of ['0.0.0.0', '[::]']) {
      const name = `xds.istio.io/grpc/lds/inbound/${host}:8080`;
      const [resource] = listener(name);
      expect(resource?.name).toBe(name);
      const decoded = decodeStrictly(typeUrls.listener, resource!.resource.value) as any;
      expect(decoded.name).toBe(name);
      expect(decoded.address.socket_address).toEqual({ address: host.replace(/[[\]]/g, ''), port_value: 8080 });
      expect(decoded.filter_chains).toEqual(own.filter_chains);
    }
    // A port the workload does not serve has no listener, so it is never reported as sent.
    expect(listener('xds.istio.io/grpc/lds/inbound/0.0.0.0:9999')).toEqual([]);
  });

  it('groups proxies by the selectors that match them, not by their labels', () => {
    const shape: MeshShape = { ...small, services: 12, namespaces: 2, authorizationPolicies: 0, virtualServices: 0 };
    const nodes = proxiesOf(shape);
    const groups = new ProxyGroups();
    groups.update(meshModel(shape));
    connectAll(groups, nodes);
    const stats = groups.stats();
    // 24 sidecars, 12 label sets (two pods share a Deployment's labels): one outbound group per namespace,
    // one inbound group per Deployment (its Service selects it).
    expect(stats.labelSets).toBe(12);
    expect(stats.outboundScopes).toBe(2);
    expect(stats.inboundScopes).toBe(12);

    // pod-template-hash alone never splits: two proxies differing only in it share everything.
    const twin = (hash: string): DiscoveryNode => ({
      id: `sidecar~10.9.9.${hash.length}~twin.ns-0~ns-0.svc.cluster.local`,
      metadata: { NAMESPACE: 'ns-0', LABELS: { ...podLabels(0), 'pod-template-hash': hash } },
    });
    const [a, b] = [twin('abc'), twin('abcdef')];
    groups.connected(a);
    groups.connected(b);
    for (const typeUrl of [typeUrls.listener, typeUrls.cluster]) {
      expect(groups.resources(a, typeUrl, []).version).toBe(groups.resources(b, typeUrl, []).version);
    }
    expect(groups.stats().outboundScopes).toBe(2);
  });

  it('derives a VirtualService change only in the groups that see its host, and pushes only RDS', () => {
    const shape: MeshShape = { ...small, services: 30, namespaces: 5 };
    const nodes = proxiesOf(shape);
    const groups = new ProxyGroups();
    let model = withIstio(meshModel(shape), (istio) => {
      // ns-1 sees only its own namespace.
      istio.sidecars.push(object('Sidecar', 'ns-1', 'default', { egress: [{ hosts: ['./*'] }] }));
    });
    groups.update(model);
    connectAll(groups, nodes);
    const changes: ConfigChange[] = [];
    groups.onChange((change) => changes.push(change));
    const before = groups.stats().derivations['encode-part'] ?? 0;
    const listenersBefore = groups.stats().derivations['outbound-listener'] ?? 0;
    model = withIstio(model, (istio) => {
      istio.virtualServices[0] = object('VirtualService', 'ns-0', 'svc-0', {
        hosts: ['svc-0'],
        http: [{ timeout: '3s', route: [{ destination: { host: 'svc-0.ns-0.svc.cluster.local', subset: 'v1' } }] }],
      });
    });
    expect(groups.update(model)).toEqual([typeUrls.route]);
    // Two new virtual hosts, each encoded once: ns-0's, whose domains name svc-0 by its short name, and
    // the one shared by the three other groups that see svc-0 (ns-1's does not), whose domains do not.
    expect((groups.stats().derivations['encode-part'] ?? 0) - before).toBe(2);
    // The host's listener claims are the same, so no group assembles its listeners again.
    expect((groups.stats().derivations['outbound-listener'] ?? 0) - listenersBefore).toBe(0);
    const change = changes[0] as ConfigChange;
    expect(nodes.filter((n) => change.affects?.(n, typeUrls.route)).every((n) => proxyScopeOf(n).namespace !== 'ns-1')).toBe(true);
    expect(nodes.filter((n) => change.affects?.(n, typeUrls.route))).toHaveLength(
      nodes.length - nodes.filter((n) => proxyScopeOf(n).namespace === 'ns-1').length,
    );
    expectSameAsFromScratch(groups, model, nodes);
  });
});

describe('incremental derivation, the cases a review found', () => {
  const node = (n: number, namespace: string, labels: Record<string, string>, grpc = false): DiscoveryNode => ({
    id: `sidecar~10.0.0.${n}~p${n}.${namespace}~${namespace}.svc.cluster.local`,
    metadata: { NAMESPACE: namespace, LABELS: labels, ...(grpc ? { GENERATOR: 'grpc' } : {}) },
  });
  const service = (name: string, namespace: string, extra: Partial<MeshModel['services'][number]> = {}) => ({
    name,
    namespace,
    ports: [{ name: 'http', port: 8080, protocol: 'TCP', targetPort: 8080, appProtocol: 'http' }],
    selector: { app: name },
    endpoints: [{ address: `10.1.0.${name.length}`, ports: { http: 8080 }, labels: { app: name }, serviceAccount: name, tlsMode: 'istio' }],
    ...extra,
  });
  const base = (services: MeshModel['services'], istio = emptyIstioConfig()): MeshModel => ({
    clusterDomain: 'cluster.local',
    rootNamespace: 'istio-system',
    trustDomain: 'cluster.local',
    services,
    istio,
  });
  const run = (model: MeshModel, nodes: DiscoveryNode[], next: (m: MeshModel) => MeshModel) => {
    const groups = new ProxyGroups();
    groups.update(model);
    connectAll(groups, nodes);
    expectSameAsFromScratch(groups, model, nodes);
    const after = next(model);
    groups.update(after);
    expectSameAsFromScratch(groups, after, nodes);
  };

  it('derives a group anew when the member it was derived from moves to another group (outbound)', () => {
    // A connects first, so its labels stand for the group; a DestinationRule for A alone must not reach B.
    run(base([service('a', 'n'), service('b', 'n')]), [node(1, 'n', { app: 'a' }), node(2, 'n', { app: 'b' })], (m) =>
      withIstio(m, (istio) =>
        istio.destinationRules.push(
          object('DestinationRule', 'n', 'dr-a', {
            host: 'b',
            workloadSelector: { matchLabels: { app: 'a' } },
            trafficPolicy: { connectionPool: { tcp: { maxConnections: 7 } } },
          }),
        ),
      ),
    );
  });

  it('derives a group anew when the member it was derived from moves to another group (inbound)', () => {
    // Both served by one Service; a DENY for A alone must not reach B's inbound listener.
    run(
      base([service('web', 'n', { selector: { tier: 'web' } })]),
      [node(1, 'n', { app: 'a', tier: 'web' }), node(2, 'n', { app: 'b', tier: 'web' })],
      (m) =>
        withIstio(m, (istio) =>
          istio.authorizationPolicies.push(
            object('AuthorizationPolicy', 'n', 'deny-a', { selector: { matchLabels: { app: 'a' } }, action: 'DENY', rules: [{}] }),
          ),
        ),
    );
  });

  it('names each workload in its tracer when a tracing provider applies', () => {
    const model = {
      ...base([service('zipkin', 'istio-system')]),
      meshConfig: {
        telemetry: {
          extensionProviders: [{ name: 'otel', opentelemetry: { service: 'zipkin', port: 8080 } }],
          defaultProviders: { tracing: ['otel'] },
        },
      },
    };
    run(model, [node(1, 'n', { app: 'a' }), node(2, 'n', { app: 'b' })], (m) => ({ ...m, services: [...m.services, service('c', 'n')] }));
  });

  it('follows a wildcard DestinationRule to a route whose destination is no service', () => {
    const istio = emptyIstioConfig();
    istio.virtualServices.push(
      object('VirtualService', 'n', 'a', {
        hosts: ['a'],
        http: [{ route: [{ destination: { host: 'api.example.com', port: { number: 443 } } }] }],
      }),
    );
    run(base([service('a', 'n')], istio), [node(1, 'n', { app: 'x' })], (m) =>
      withIstio(m, (i) =>
        i.destinationRules.push(
          object('DestinationRule', 'n', 'ext', {
            host: '*.example.com',
            trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } },
          }),
        ),
      ),
    );
  });

  it('gives a port number listed twice (kube-dns 53 over UDP and TCP) one virtual host', () => {
    const dns = {
      name: 'kube-dns',
      namespace: 'kube-system',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
      ],
      selector: { 'k8s-app': 'kube-dns' },
      endpoints: [{ address: '10.2.0.1', ports: { dns: 53, 'dns-tcp': 53 } }],
    };
    run(base([service('a', 'n'), dns]), [node(1, 'n', { app: 'a' }), node(3, 'n', { app: 'g' }, true)], (m) =>
      withMovedEndpoints(m, small, 0, 3),
    );
  });
  it('builds no cluster or listener for UDP ports, as Istio', () => {
    const syslog = { ...service('syslog', 'n'), ports: [{ name: 'udp-syslog', port: 514, protocol: 'UDP', targetPort: 514 }] };
    const model = base([service('a', 'n'), syslog]);
    const nodes = [node(1, 'n', { app: 'a' }), node(3, 'n', { app: 'g' }, true)];
    const groups = new ProxyGroups();
    groups.update(model);
    connectAll(groups, nodes);
    expectSameAsFromScratch(groups, model, nodes);
    for (const n of nodes) {
      for (const typeUrl of [typeUrls.cluster, typeUrls.listener]) {
        expect(groups.resources(n, typeUrl, []).resources.some((r) => r.name.includes(':514') || r.name.includes('syslog'))).toBe(false);
      }
    }
  });
});
