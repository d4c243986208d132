import type { MeshModel } from '../xds/model/mesh-model.js';
import { emptyIstioConfig } from '../xds/model/istio-config.js';
import type { LoadEdge } from '../xds/load/load-store.js';
import { meshGraph, propagationOf } from './mesh-graph.js';

const endpoint = (address: string, app: string, version: string) => ({
  address,
  labels: { app, version },
  serviceAccount: `bookinfo-${app}`,
  ports: { grpc: 9080 },
});
const service = (name: string, endpoints: MeshModel['services'][number]['endpoints']) => ({
  name,
  namespace: 'bookinfo',
  selector: { app: name },
  ports: [{ name: 'grpc', port: 9080, protocol: 'TCP', targetPort: 9080 }],
  endpoints,
});
const load = (cluster: string, requestsPerSecond: number, errorsPerSecond = 0): LoadEdge => ({
  source: {
    nodeId: 'sidecar~10.0.0.3~productpage-v1-5b8f87c98-6zkv5.bookinfo~bookinfo.svc.cluster.local',
    namespace: 'bookinfo',
    pod: 'productpage-v1-5b8f87c98-6zkv5',
    labels: { app: 'productpage', version: 'v1' },
  },
  cluster,
  requestsPerSecond,
  errorsPerSecond,
  inProgress: 0,
  requests: requestsPerSecond * 60,
  errors: errorsPerSecond * 60,
  dropped: 0,
  lastReportAt: 0,
});

function model(strict: boolean): MeshModel {
  const istio = emptyIstioConfig();
  istio.virtualServices.push({
    kind: 'VirtualService',
    name: 'reviews',
    namespace: 'bookinfo',
    spec: {
      hosts: ['reviews'],
      http: [
        {
          route: [
            { destination: { host: 'reviews', subset: 'v1' }, weight: 90 },
            { destination: { host: 'reviews', subset: 'v3' }, weight: 10 },
          ],
        },
      ],
    },
  });
  istio.destinationRules.push({
    kind: 'DestinationRule',
    name: 'reviews',
    namespace: 'bookinfo',
    spec: {
      host: 'reviews',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v3', labels: { version: 'v3' } },
      ],
    },
  });
  if (strict)
    istio.peerAuthentications.push({
      kind: 'PeerAuthentication',
      name: 'default',
      namespace: 'bookinfo',
      spec: { mtls: { mode: 'STRICT' } },
    });
  return {
    clusterDomain: 'cluster.local',
    istio,
    services: [
      service('productpage', [endpoint('10.0.0.3', 'productpage', 'v1')]),
      service('reviews', [endpoint('10.0.0.7', 'reviews', 'v1'), endpoint('10.0.0.8', 'reviews', 'v3')]),
      // The API server's Service: no pod behind it, nobody calls it.
      {
        name: 'kubernetes',
        namespace: 'default',
        ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }],
        endpoints: [{ address: '10.0.0.1', ports: { https: 6443 } }],
      },
    ],
  } as MeshModel;
}

describe('meshGraph', () => {
  const reviews = 'reviews.bookinfo.svc.cluster.local';
  const loads = [load(`outbound|9080|v1|${reviews}`, 9), load(`outbound|9080|v3|${reviews}`, 1, 0.5)];

  it('draws workloads by app and version, services with their routing rule, and each subset edge with its rates', () => {
    const graph = meshGraph(model(false), loads, []);
    expect(graph.services.map((s) => s.id)).toEqual(['productpage.bookinfo.svc.cluster.local', reviews]);
    expect(graph.services[1]?.route).toEqual({
      virtualService: 'bookinfo/reviews',
      weights: [
        { subset: 'v1', weight: 90 },
        { subset: 'v3', weight: 10 },
      ],
      rules: [
        {
          name: '#0',
          match: 'any request',
          weights: [
            { host: 'reviews', subset: 'v1', weight: 90 },
            { host: 'reviews', subset: 'v3', weight: 10 },
          ],
        },
      ],
    });
    expect(graph.workloads.map((w) => w.id)).toEqual(['bookinfo/productpage/v1', 'bookinfo/reviews/v1', 'bookinfo/reviews/v3']);
    expect(graph.edges).toEqual([
      {
        source: 'bookinfo/productpage/v1',
        target: reviews,
        subset: 'v1',
        requestsPerSecond: 9,
        errorsPerSecond: 0,
        inProgress: 0,
        mtls: false,
        rules: ['any request → 90%'],
        reportedBy: 'lrs',
      },
      {
        source: 'bookinfo/productpage/v1',
        target: reviews,
        subset: 'v3',
        requestsPerSecond: 1,
        errorsPerSecond: 0.5,
        inProgress: 0,
        mtls: false,
        rules: ['any request → 10%'],
        reportedBy: 'lrs',
      },
    ]);
  });

  it("shows the rules shaping each edge: a header match before the catch-all, a fault, and the service's catch-all shares", () => {
    // Istio's bookinfo "reviews-test-v2" shape, with the fault-injection task's delay on the match.
    const withMatch = model(false);
    const reviewsRule = withMatch.istio?.virtualServices[0];
    if (reviewsRule)
      reviewsRule.spec = {
        hosts: ['reviews'],
        http: [
          {
            match: [{ headers: { 'end-user': { exact: 'jason' } } }],
            fault: { delay: { percentage: { value: 100 }, fixedDelay: '7s' } },
            route: [{ destination: { host: 'reviews', subset: 'v3' } }],
          },
          { route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
        ],
      };
    const graph = meshGraph(withMatch, loads, []);
    // The node's label shows where requests go by default, not the first (matched) route's destination.
    expect(graph.services[1]?.route?.weights).toEqual([{ subset: 'v1', weight: 100 }]);
    expect(graph.services[1]?.route?.rules.map((r) => [r.match, r.fault])).toEqual([
      ['header end-user = jason', 'delay 100% 7s'],
      ['any request', undefined],
    ]);
    expect(graph.edges.map((e) => [e.subset, e.rules])).toEqual([
      ['v1', ['any request → 100%']],
      ['v3', ['header end-user = jason → 100%; fault delay 100% 7s']],
    ]);
  });

  it("lists the analyzers' messages, errors first, leaving out hidden namespaces", () => {
    const message = (code: string, level: 'ERROR' | 'WARNING' | 'INFO', text: string) => ({ code, name: code, level, message: text });
    const graph = meshGraph(model(false), [], [], {
      hiddenNamespaces: ['weft-system'],
      verdicts: [
        {
          kind: 'DestinationRule',
          namespace: 'bookinfo',
          name: 'ratings',
          accepted: true,
          messages: [message('IST0127', 'WARNING', 'no workload')],
        },
        {
          kind: 'VirtualService',
          namespace: 'bookinfo',
          name: 'reviews',
          accepted: false,
          messages: [message('IST0101', 'ERROR', 'subset v9 not found')],
        },
        { kind: 'VirtualService', namespace: 'bookinfo', name: 'details', accepted: true, messages: [] },
        { kind: 'Sidecar', namespace: 'weft-system', name: 'default', accepted: true, messages: [message('IST0110', 'WARNING', 'hidden')] },
      ],
    });
    expect(graph.findings).toEqual([
      { kind: 'VirtualService', namespace: 'bookinfo', name: 'reviews', code: 'IST0101', level: 'ERROR', message: 'subset v9 not found' },
      { kind: 'DestinationRule', namespace: 'bookinfo', name: 'ratings', code: 'IST0127', level: 'WARNING', message: 'no workload' },
    ]);
  });

  it("lists each object's propagation, those not yet everywhere first, leaving out hidden namespaces", () => {
    const graph = meshGraph(model(false), [], [], {
      hiddenNamespaces: ['weft-system'],
      propagation: [
        { kind: 'VirtualService', namespace: 'bookinfo', name: 'reviews', status: 'True', message: '3/3 proxies up to date.' },
        { kind: 'DestinationRule', namespace: 'bookinfo', name: 'reviews', status: 'False', message: '1/3 proxies up to date.' },
        { kind: 'Sidecar', namespace: 'weft-system', name: 'default', status: 'False', message: '0/1 proxies up to date.' },
      ],
    });
    expect(graph.propagation.map((p) => `${p.kind} ${p.status} ${p.message}`)).toEqual([
      'DestinationRule False 1/3 proxies up to date.',
      'VirtualService True 3/3 proxies up to date.',
    ]);
  });

  it('lists propagation for the objects users applied, not for config converted from the Gateway API', () => {
    const withGenerated = model(false);
    withGenerated.istio?.virtualServices.push({
      kind: 'VirtualService',
      name: 'bookinfo~gw~istio-autogenerated-k8s-gateway~http~*',
      namespace: 'bookinfo',
      annotations: { 'internal.istio.io/parents': 'HTTPRoute/bookinfo.bookinfo' },
      spec: { hosts: ['*'] },
    });
    const rows = propagationOf(withGenerated, (kind) =>
      kind === 'VirtualService' ? { status: 'True', message: '1/1 proxies up to date.' } : undefined,
    );
    expect(rows.map((r) => `${r.kind} ${r.namespace}/${r.name}`)).toEqual(['VirtualService bookinfo/reviews']);
  });

  it('marks an edge mTLS when the caller speaks Istio mTLS to that subset (STRICT servers, as proxyless clients decide)', () => {
    expect(meshGraph(model(true), loads, []).edges.map((e) => e.mtls)).toEqual([true, true]);
  });

  it("gives each proxy's sync state per type, with the NACK's error", () => {
    const graph = meshGraph(
      model(false),
      [],
      [
        {
          streamId: 1,
          nodeId: 'sidecar~10.0.0.3~productpage-v1.bookinfo~bookinfo.svc.cluster.local',
          pod: { name: 'productpage-v1', namespace: 'bookinfo', ip: '10.0.0.3' },
          connectedAt: '',
          types: [
            {
              typeUrl: 'type.googleapis.com/envoy.config.listener.v3.Listener',
              subscribed: 'wildcard',
              versionSent: 'a',
              nonceSent: '1',
              versionAcked: 'a',
              state: 'acked',
            },
            {
              typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
              subscribed: 'wildcard',
              versionSent: 'b',
              nonceSent: '2',
              state: 'nacked',
              lastNackError: 'bad cluster',
            },
          ],
        },
      ],
    );
    expect(graph.proxies).toEqual([
      {
        nodeId: 'sidecar~10.0.0.3~productpage-v1.bookinfo~bookinfo.svc.cluster.local',
        pod: 'productpage-v1',
        namespace: 'bookinfo',
        sync: { LDS: { state: 'SYNCED' }, CDS: { state: 'NACK', error: 'bad cluster' } },
      },
    ]);
  });
});
