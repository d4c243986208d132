// The dashboard's Prometheus source against a real Prometheus (3.16, built once from
// the Go module proxy by testing/cluster/binaries.ts's ensurePrometheus). Prometheus
// scrapes a tiny in-test server that exposes `istio_requests_total` as an Envoy
// sidecar's agent does at :15020/stats/prometheus: the data source. Under test is
// weftd's side: its query, the translation, and the merge with load-reported edges,
// read back from the dashboard's /dashboard/api/graph. Everything on 127.0.0.1.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { componentLogger } from '../lib/logger.js';
import { ensurePrometheus } from '../testing/cluster/binaries.js';
import { freePort } from '../testing/cluster/free-port.js';
import { ManagedProcess } from '../testing/cluster/managed-process.js';
import { emptyIstioConfig } from '../xds/model/istio-config.js';
import type { MeshModel } from '../xds/model/mesh-model.js';
import type { LoadEdge } from '../xds/load/load-store.js';
import { dashboardRoutes } from './dashboard-routes.js';
import { meshGraph, type MeshGraph } from './mesh-graph.js';
import { withPrometheusEdges } from './prometheus-edges.js';
import { PrometheusSource } from './prometheus-source.js';

const reviews = 'reviews.bookinfo.svc.cluster.local';
const ratings = 'ratings.bookinfo.svc.cluster.local';
/** What productpage's sidecar sends reviews v1: 20 answers a second, 2 of them 503s (9.1% errors). */
const okPerSecond = 18;
const failedPerSecond = 2;

/** Istio's labels on productpage-v1's calls to reviews v1, as both ends' sidecars write them. */
function series(reporter: 'source' | 'destination', code: string, overrides: Record<string, string> = {}): string {
  const labels = {
    reporter,
    source_workload: 'productpage-v1',
    source_workload_namespace: 'bookinfo',
    source_app: 'productpage',
    source_version: 'v1',
    source_principal: 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage',
    destination_workload: 'reviews-v1',
    destination_workload_namespace: 'bookinfo',
    destination_service: reviews,
    destination_service_name: 'reviews',
    destination_service_namespace: 'bookinfo',
    destination_app: 'reviews',
    destination_version: 'v1',
    request_protocol: 'http',
    response_code: code,
    grpc_response_status: '',
    response_flags: '-',
    // The source reporter cannot know the server's policy (Istio writes unknown); the destination knows it.
    connection_security_policy: reporter === 'source' ? 'unknown' : 'mutual_tls',
    ...overrides,
  };
  return `istio_requests_total{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;
}

function model(): MeshModel {
  const istio = emptyIstioConfig();
  istio.destinationRules.push({
    kind: 'DestinationRule',
    name: 'reviews',
    namespace: 'bookinfo',
    spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
  });
  const service = (name: string, version: string, address: string) => ({
    name,
    namespace: 'bookinfo',
    selector: { app: name },
    ports: [{ name: 'http', port: 9080, protocol: 'TCP', targetPort: 9080 }],
    endpoints: [{ address, labels: { app: name, version }, ports: { http: 9080 } }],
  });
  return {
    clusterDomain: 'cluster.local',
    istio,
    services: [service('productpage', 'v1', '10.244.0.3'), service('reviews', 'v1', '10.244.0.7'), service('ratings', 'v1', '10.244.0.9')],
  } as MeshModel;
}

/** reviews-v3 calling ratings, as a proxyless client's load reports say (2/s). */
const lrsEdge: LoadEdge = {
  source: {
    nodeId: 'sidecar~10.244.0.8~reviews-v3-7d9f8c-abcde.bookinfo~bookinfo.svc.cluster.local',
    namespace: 'bookinfo',
    pod: 'reviews-v3-7d9f8c-abcde',
    labels: { app: 'reviews', version: 'v3' },
  },
  cluster: `outbound|9080||${ratings}`,
  requestsPerSecond: 2,
  errorsPerSecond: 0,
  inProgress: 0,
  requests: 120,
  errors: 0,
  dropped: 0,
  lastReportAt: 0,
};

// Opt-in (`make test-prometheus` sets WEFT_TEST_PROMETHEUS=1): building Prometheus cold takes longer than make test can spend.
const describeWithPrometheus = process.env['WEFT_TEST_PROMETHEUS'] === '1' ? describe : describe.skip;

describeWithPrometheus("the dashboard's Prometheus source, against a real Prometheus", () => {
  let work: string;
  let stats: Server;
  let dashboard: Server;
  let prometheus: ManagedProcess | undefined;
  let source: PrometheusSource | undefined;
  let scrapes = 0;
  const started = Date.now();

  beforeAll(async () => {
    const binary = await ensurePrometheus(() => {}, { allowBuild: false });
    work = mkdtempSync(join(tmpdir(), 'weft-prometheus-'));
    // The sidecar's counters grow at a steady rate from the start, as a busy caller's do.
    stats = createServer((req, res) => {
      scrapes++;
      const seconds = (Date.now() - started) / 1000;
      const body = [
        '# TYPE istio_requests_total counter',
        ...(['source', 'destination'] as const).flatMap((reporter) => [
          `${series(reporter, '200')} ${Math.floor(okPerSecond * seconds)}`,
          `${series(reporter, '503')} ${Math.floor(failedPerSecond * seconds)}`,
        ]),
        // The same caller to ratings: its load reports cover it, so Prometheus's 4/s must not be added.
        `${series('source', '200', { source_workload: 'reviews-v3', source_app: 'reviews', source_version: 'v3', destination_service: ratings })} ${Math.floor(4 * seconds)}`,
        '',
      ].join('\n');
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(req.url === '/stats/prometheus' ? body : '');
    });
    await new Promise<void>((resolve) => stats.listen(0, '127.0.0.1', resolve));
    const statsPort = (stats.address() as AddressInfo).port;
    const port = await freePort();
    writeFileSync(
      join(work, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'scrape_configs:',
        '  - job_name: envoy-stats',
        '    metrics_path: /stats/prometheus',
        `    static_configs: [{ targets: ['127.0.0.1:${statsPort}'] }]`,
        '',
      ].join('\n'),
    );
    prometheus = new ManagedProcess(
      'prometheus',
      binary,
      [
        `--config.file=${join(work, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(work, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      join(work, 'prometheus.log'),
    );
    source = new PrometheusSource(`http://127.0.0.1:${port}`, componentLogger('prometheus'), {
      intervalMs: 1_000,
      timeoutMs: 5_000,
      maxBackoffMs: 1_000,
    });
    source.start();
    const current = source;
    dashboard = createServer((req, res) => {
      const handle = dashboardRoutes({ graph: () => withPrometheusEdges(meshGraph(model(), [lrsEdge], []), model(), current.edges()) });
      if (!handle(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => dashboard.listen(0, '127.0.0.1', resolve));
  }, 60_000);

  afterAll(async () => {
    source?.stop();
    await prometheus?.stop();
    await new Promise((resolve) => (stats ? stats.close(resolve) : resolve(undefined)));
    await new Promise((resolve) => (dashboard ? dashboard.close(resolve) : resolve(undefined)));
    if (work) rmSync(work, { recursive: true, force: true });
  }, 30_000);

  const graph = async (): Promise<MeshGraph> =>
    (await fetch(`http://127.0.0.1:${(dashboard.address() as AddressInfo).port}/dashboard/api/graph`)).json() as Promise<MeshGraph>;

  it("draws a sidecar's calls with the request and error rates Prometheus computes, mTLS from the server's report", async () => {
    const deadline = Date.now() + 90_000;
    let edge: MeshGraph['edges'][number] | undefined;
    // Prometheus's rate needs two scrapes; extrapolation settles within a few more.
    for (;;) {
      edge = (await graph()).edges.find((e) => e.source === 'bookinfo/productpage/v1' && e.target === reviews);
      if (edge && Math.abs(edge.requestsPerSecond - (okPerSecond + failedPerSecond)) < 2) break;
      if (Date.now() > deadline)
        throw new Error(
          `no productpage -> reviews edge near 20/s after 90 s (last: ${JSON.stringify(edge)}; ${scrapes} scrapes; ${JSON.stringify(source?.status())}; prometheus log:\n${prometheus?.logTail()})`,
        );
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    process.stderr.write(
      `prometheus source: the edge showed at ${edge.requestsPerSecond.toFixed(2)}/s ${((Date.now() - started) / 1000).toFixed(1)} s after Prometheus started (${scrapes} scrapes)\n`,
    );
    expect(edge).toMatchObject({ subset: 'v1', mtls: true, reportedBy: 'prometheus', inProgress: 0 });
    expect(edge.errorsPerSecond / edge.requestsPerSecond).toBeCloseTo(failedPerSecond / (okPerSecond + failedPerSecond), 1);
    // reviews-v3 -> ratings: the load reports' 2/s, not Prometheus's 4/s, and once.
    const ratingsEdges = (await graph()).edges.filter((e) => e.target === ratings);
    expect(ratingsEdges).toEqual([expect.objectContaining({ source: 'bookinfo/reviews/v3', requestsPerSecond: 2, reportedBy: 'lrs' })]);
  }, 120_000);
});
