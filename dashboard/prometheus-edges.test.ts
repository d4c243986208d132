import type { MeshModel } from '../xds/model/mesh-model.js';
import { emptyIstioConfig } from '../xds/model/istio-config.js';
import type { LoadEdge } from '../xds/load/load-store.js';
import { meshGraph } from './mesh-graph.js';
import { edgesFromPrometheus, requestRateQuery, withPrometheusEdges } from './prometheus-edges.js';

const reviews = 'reviews.bookinfo.svc.cluster.local';
const ratings = 'ratings.bookinfo.svc.cluster.local';

/** One series of the query's answer, with Istio's label names as an Envoy sidecar's stats plugin writes them. */
const series = (labels: Record<string, string>, rate: string) => ({
  metric: {
    reporter: 'source',
    source_workload: 'productpage-v1',
    source_workload_namespace: 'bookinfo',
    source_app: 'productpage',
    source_version: 'v1',
    destination_service: reviews,
    destination_version: 'v1',
    response_code: '200',
    grpc_response_status: '',
    connection_security_policy: 'unknown',
    ...labels,
  },
  value: [1795010000.123, rate],
});
/** Prometheus's envelope for an instant query's vector (https://prometheus.io/docs/prometheus/latest/querying/api/). */
const answer = (result: unknown[]) => ({ status: 'success', data: { resultType: 'vector', result } });

describe('requestRateQuery', () => {
  it("sums istio_requests_total's rate over the window by the labels an edge needs, from both reporters", () => {
    expect(requestRateQuery()).toBe(
      'sum by (reporter, source_workload, source_workload_namespace, source_app, source_version, destination_service, destination_version, ' +
        'response_code, grpc_response_status, connection_security_policy) (rate(istio_requests_total{reporter=~"source|destination"}[1m]))',
    );
  });
});

describe('edgesFromPrometheus', () => {
  it("takes the caller's own report, counts 5xx and non-OK gRPC statuses as errors, and mTLS from the server's report", () => {
    const edges = edgesFromPrometheus(
      answer([
        series({}, '8'),
        series({ response_code: '503' }, '0.5'),
        series({ response_code: '404' }, '0.25'),
        // gRPC: HTTP 200 with grpc-status 14 (UNAVAILABLE) is an error; grpc-status 0 is not.
        series({ grpc_response_status: '14' }, '0.2'),
        series({ grpc_response_status: '0' }, '1'),
        // The server's sidecar counts the same requests: not added, but it knows the connection was mutual TLS.
        series({ reporter: 'destination', connection_security_policy: 'mutual_tls' }, '9.9'),
      ]),
    );
    expect(edges).toEqual([
      {
        source: { namespace: 'bookinfo', app: 'productpage', version: 'v1', workload: 'productpage-v1' },
        target: reviews,
        destinationVersion: 'v1',
        requestsPerSecond: 8 + 0.5 + 0.25 + 0.2 + 1,
        errorsPerSecond: 0.5 + 0.2,
        mtls: true,
        reporter: 'source',
      },
    ]);
  });

  it("takes the server's report when the caller has no sidecar, plaintext when it says none, and leaves out unknown callers", () => {
    const edges = edgesFromPrometheus(
      answer([
        series({ reporter: 'destination', destination_service: ratings, connection_security_policy: 'none' }, '3'),
        // Traffic from outside the mesh: no workload to draw it from.
        series({ reporter: 'destination', source_workload: 'unknown', source_workload_namespace: 'unknown', source_app: 'unknown' }, '5'),
        // A passthrough call with no service host.
        series({ destination_service: 'unknown' }, '1'),
        // A workload without app/version labels is named by its workload, version unknown.
        series({ source_workload: 'loadgen', source_app: 'unknown', source_version: 'unknown', destination_version: 'unknown' }, 'NaN'),
      ]),
    );
    expect(edges).toEqual([
      {
        source: { namespace: 'bookinfo', app: 'loadgen', version: 'unknown', workload: 'loadgen' },
        target: reviews,
        destinationVersion: '',
        requestsPerSecond: 0,
        errorsPerSecond: 0,
        reporter: 'source',
      },
      {
        source: { namespace: 'bookinfo', app: 'productpage', version: 'v1', workload: 'productpage-v1' },
        target: ratings,
        destinationVersion: 'v1',
        requestsPerSecond: 3,
        errorsPerSecond: 0,
        mtls: false,
        reporter: 'destination',
      },
    ]);
  });

  it("refuses an answer that is not Prometheus's vector envelope, naming the field, and passes on Prometheus's own error", () => {
    expect(() => edgesFromPrometheus('<html>')).toThrow('Prometheus answer: not a JSON object');
    expect(() => edgesFromPrometheus({ status: 'error', errorType: 'bad_data', error: 'parse error at char 5' })).toThrow(
      'Prometheus answer: status is "error", not "success": bad_data: parse error at char 5',
    );
    expect(() => edgesFromPrometheus({ status: 'success', data: { resultType: 'matrix', result: [] } })).toThrow(
      'data.resultType is "matrix", not "vector"',
    );
    expect(() => edgesFromPrometheus({ status: 'success', data: { resultType: 'vector' } })).toThrow('data.result is not an array');
    expect(() => edgesFromPrometheus(answer([{ metric: {}, value: [1, 2] }]))).toThrow('data.result[0].value is not [<time>, "<number>"]');
    expect(() => edgesFromPrometheus(answer([series({}, '1'), { value: [1, '2'] }]))).toThrow('data.result[1].metric is not an object');
  });
});

function model(): MeshModel {
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
  const endpoint = (address: string, app: string, version: string) => ({ address, labels: { app, version }, ports: { http: 9080 } });
  const service = (name: string, endpoints: MeshModel['services'][number]['endpoints']) => ({
    name,
    namespace: 'bookinfo',
    selector: { app: name },
    ports: [{ name: 'http', port: 9080, protocol: 'TCP', targetPort: 9080 }],
    endpoints,
  });
  return {
    clusterDomain: 'cluster.local',
    istio,
    services: [
      service('productpage', [endpoint('10.0.0.3', 'productpage', 'v1')]),
      service('reviews', [endpoint('10.0.0.7', 'reviews', 'v1'), endpoint('10.0.0.8', 'reviews', 'v3')]),
      service('ratings', [endpoint('10.0.0.9', 'ratings', 'v1')]),
    ],
  } as MeshModel;
}

const lrs = (labels: Record<string, string>, cluster: string, requestsPerSecond: number): LoadEdge => ({
  source: {
    nodeId: `sidecar~10.0.0.3~${labels['app']}-x.bookinfo~bookinfo.svc.cluster.local`,
    namespace: 'bookinfo',
    pod: `${labels['app']}-x`,
    labels,
  },
  cluster,
  requestsPerSecond,
  errorsPerSecond: 0,
  inProgress: 0,
  requests: requestsPerSecond * 60,
  errors: 0,
  dropped: 0,
  lastReportAt: 0,
});

describe('withPrometheusEdges', () => {
  const prometheus = edgesFromPrometheus(
    answer([
      // productpage's Envoy sidecar: 9/s to reviews v1, 1/s to v3 (the VirtualService's 90/10), mutual TLS.
      series({}, '9'),
      series({ destination_version: 'v3', response_code: '500' }, '1'),
      series({ reporter: 'destination', connection_security_policy: 'mutual_tls' }, '9'),
      series({ reporter: 'destination', destination_version: 'v3', connection_security_policy: 'mutual_tls' }, '1'),
      // reviews-v3 calls ratings: it also reports the calls over LRS (below), so Prometheus adds nothing.
      series({ source_workload: 'reviews-v3', source_app: 'reviews', source_version: 'v3', destination_service: ratings }, '4'),
    ]),
  );

  it("adds Prometheus's edges beside the load-reported ones, each marked, with the subset its destination version selects", () => {
    const base = meshGraph(model(), [lrs({ app: 'reviews', version: 'v3' }, `outbound|9080||${ratings}`, 2)], []);
    const graph = withPrometheusEdges(base, model(), prometheus);
    expect(graph.edges).toEqual([
      {
        source: 'bookinfo/productpage/v1',
        target: reviews,
        subset: 'v1',
        requestsPerSecond: 9,
        errorsPerSecond: 0,
        inProgress: 0,
        mtls: true,
        rules: ['any request → 90%'],
        reportedBy: 'prometheus',
      },
      {
        source: 'bookinfo/productpage/v1',
        target: reviews,
        subset: 'v3',
        requestsPerSecond: 1,
        errorsPerSecond: 1,
        inProgress: 0,
        mtls: true,
        rules: ['any request → 10%'],
        reportedBy: 'prometheus',
      },
      // The caller's own load report wins: 2/s from LRS, not 2 + 4 or 4.
      {
        source: 'bookinfo/reviews/v3',
        target: ratings,
        subset: '',
        requestsPerSecond: 2,
        errorsPerSecond: 0,
        inProgress: 0,
        mtls: false,
        rules: [],
        reportedBy: 'lrs',
      },
    ]);
  });

  it('draws a caller only Prometheus knows as a workload, and leaves the graph as it was when Prometheus has nothing', () => {
    const base = meshGraph(model(), [], []);
    expect(withPrometheusEdges(base, model(), [])).toBe(base);
    const graph = withPrometheusEdges(
      base,
      model(),
      edgesFromPrometheus(
        answer([series({ source_workload: 'sleep', source_app: 'sleep', source_version: 'unknown', destination_version: 'unknown' }, '2')]),
      ),
    );
    expect(graph.workloads.find((w) => w.id === 'bookinfo/sleep/unknown')).toEqual({
      id: 'bookinfo/sleep/unknown',
      namespace: 'bookinfo',
      app: 'sleep',
      version: 'unknown',
      services: [],
      pods: 0,
    });
    // No destination version: the service's own cluster, no subset; the VirtualService still routes it 90/10.
    expect(graph.edges).toEqual([
      expect.objectContaining({
        source: 'bookinfo/sleep/unknown',
        target: reviews,
        subset: '',
        requestsPerSecond: 2,
        reportedBy: 'prometheus',
      }),
    ]);
  });
});
