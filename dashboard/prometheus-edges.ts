// The dashboard's second traffic source: Istio's standard metrics in Prometheus
// (`istio_requests_total`, what Envoy sidecars report and Kiali draws its graph from),
// for callers that send no load reports (LRS): every Envoy sidecar. Pure: the query,
// Prometheus's JSON answer to edges, and the merge into the graph beside LRS edges.
// The HTTP side is prometheus-source.ts.
import type { MeshModel } from '../xds/model/mesh-model.js';
import { MeshIndex } from '../xds/traffic/mesh-index.js';
import { ProxyView } from '../xds/traffic/proxy-view.js';
import { edgeRules, workloadId, type GraphEdge, type MeshGraph } from './mesh-graph.js';

/**
 * The labels of `istio_requests_total` an edge is built from (Istio's "Istio Standard Metrics":
 * https://istio.io/latest/docs/reference/config/metrics/). `reporter` is `source` (the caller's
 * sidecar) or `destination` (the server's); `destination_service` is the FQDN host called.
 */
export const edgeLabels = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_app',
  'source_version',
  'destination_service',
  'destination_version',
  'response_code',
  'grpc_response_status',
  'connection_security_policy',
] as const;

/**
 * The instant query (`/api/v1/query`) weftd sends: each series' request rate per second over `window`
 * (a PromQL duration; the LRS store's window is a minute, so is the default), summed by the labels an edge
 * needs. Both reporters are asked for: the caller's own count where its sidecar reports, the server's
 * where only it does (a caller without a sidecar), and `connection_security_policy`, which only the server
 * side knows (the source reporter writes `unknown`).
 */
export function requestRateQuery(window = '1m'): string {
  return `sum by (${edgeLabels.join(', ')}) (rate(istio_requests_total{reporter=~"source|destination"}[${window}]))`;
}

/** One caller workload's traffic to one service host, as Prometheus sees it. Rates are per second. */
export interface PrometheusEdge {
  source: { namespace: string; app: string; version: string; workload: string };
  /** The destination service host, `<name>.<namespace>.svc.<domain>` (`destination_service`). */
  target: string;
  /** The destination pods' `version` label (`destination_version`), '' when unknown. */
  destinationVersion: string;
  requestsPerSecond: number;
  /** Responses with a 5xx HTTP status, or gRPC calls ending with a status other than OK (0). */
  errorsPerSecond: number;
  /** `connection_security_policy` from the server's report: true for `mutual_tls`, false for `none`, undefined when no server reported. */
  mtls?: boolean;
  /** Whose figures these are: the caller's sidecar (`source`) when it reported, else the server's (`destination`). */
  reporter: 'source' | 'destination';
}

const unknown = (value: string | undefined): boolean => !value || value === 'unknown';

/**
 * Prometheus's answer to {@link requestRateQuery} as edges, one per (caller workload, host, destination version).
 * Shape: Prometheus's HTTP API envelope `{ status: 'success', data: { resultType: 'vector', result: [{ metric, value:
 * [<unix seconds>, '<float>'] }] } }` (https://prometheus.io/docs/prometheus/latest/querying/api/).
 * Rules: the caller's own report (`reporter="source"`) is taken when there is one, else the server's, never both
 * (they count the same requests); series without a known caller (`source_workload` unknown: traffic from outside
 * the mesh) or host are left out; NaN and negative rates count as 0. The caller's app is `source_app`, else its
 * workload name (`source_workload`); its version `source_version`, else `unknown`, as meshGraph names workloads.
 * @throws Error naming the field when the answer is not that shape, or carries Prometheus's own `error`.
 */
export function edgesFromPrometheus(answer: unknown): PrometheusEdge[] {
  if (!isObject(answer)) throw new Error('Prometheus answer: not a JSON object');
  if (answer['status'] !== 'success') {
    const detail = typeof answer['error'] === 'string' ? `: ${String(answer['errorType'] ?? 'error')}: ${answer['error']}` : '';
    throw new Error(`Prometheus answer: status is ${JSON.stringify(answer['status'])}, not "success"${detail}`);
  }
  const data = answer['data'];
  if (!isObject(data)) throw new Error('Prometheus answer: data is not an object');
  if (data['resultType'] !== 'vector')
    throw new Error(`Prometheus answer: data.resultType is ${JSON.stringify(data['resultType'])}, not "vector"`);
  const result = data['result'];
  if (!Array.isArray(result)) throw new Error('Prometheus answer: data.result is not an array');

  interface Sums {
    edge: PrometheusEdge;
    byReporter: Record<'source' | 'destination', { requests: number; errors: number; seen: boolean }>;
    mtls?: boolean;
  }
  const edges = new Map<string, Sums>();
  result.forEach((sample: unknown, i) => {
    const at = `data.result[${i}]`;
    if (!isObject(sample) || !isObject(sample['metric'])) throw new Error(`Prometheus answer: ${at}.metric is not an object`);
    const value = sample['value'];
    if (!Array.isArray(value) || value.length !== 2 || typeof value[1] !== 'string')
      throw new Error(`Prometheus answer: ${at}.value is not [<time>, "<number>"]`);
    const metric = sample['metric'] as Record<string, unknown>;
    const label = (name: (typeof edgeLabels)[number]) => (typeof metric[name] === 'string' ? (metric[name] as string) : '');
    const reporter = label('reporter');
    if (reporter !== 'source' && reporter !== 'destination') return;
    const workload = label('source_workload');
    const namespace = label('source_workload_namespace');
    const target = label('destination_service');
    if (unknown(workload) || unknown(namespace) || unknown(target)) return;
    const rate = Number.parseFloat(value[1]);
    const perSecond = Number.isFinite(rate) && rate > 0 ? rate : 0;
    const app = unknown(label('source_app')) ? workload : label('source_app');
    const version = unknown(label('source_version')) ? 'unknown' : label('source_version');
    const destinationVersion = unknown(label('destination_version')) ? '' : label('destination_version');
    const key = `${namespace}|${app}|${version}|${target}|${destinationVersion}`;
    let sums = edges.get(key);
    if (!sums) {
      sums = {
        edge: {
          source: { namespace, app, version, workload },
          target,
          destinationVersion,
          requestsPerSecond: 0,
          errorsPerSecond: 0,
          reporter: 'destination',
        },
        byReporter: { source: { requests: 0, errors: 0, seen: false }, destination: { requests: 0, errors: 0, seen: false } },
      };
      edges.set(key, sums);
    }
    const code = label('response_code');
    const grpcStatus = label('grpc_response_status');
    const failed = /^5\d\d$/.test(code) || (grpcStatus !== '' && grpcStatus !== '0');
    const counted = sums.byReporter[reporter];
    counted.seen = true;
    counted.requests += perSecond;
    if (failed) counted.errors += perSecond;
    // Only the server's sidecar knows the connection's security policy; any plaintext series makes the edge plaintext.
    if (reporter === 'destination') {
      const policy = label('connection_security_policy');
      if (policy === 'mutual_tls') sums.mtls = sums.mtls ?? true;
      else if (policy === 'none') sums.mtls = false;
    }
  });
  return [...edges.values()]
    .map(({ edge, byReporter, mtls }) => {
      const reporter = byReporter.source.seen ? 'source' : 'destination';
      return {
        ...edge,
        reporter,
        requestsPerSecond: byReporter[reporter].requests,
        errorsPerSecond: byReporter[reporter].errors,
        ...(mtls !== undefined ? { mtls } : {}),
      } satisfies PrometheusEdge;
    })
    .sort(
      (a, b) =>
        workloadId(a.source.namespace, a.source.app, a.source.version).localeCompare(
          workloadId(b.source.namespace, b.source.app, b.source.version),
        ) ||
        a.target.localeCompare(b.target) ||
        a.destinationVersion.localeCompare(b.destinationVersion),
    );
}

/**
 * The graph with Prometheus's edges added beside the load-reported ones (`reportedBy: 'lrs'`), each marked `reportedBy: 'prometheus'`.
 * The rule against double counting: a (caller workload, host) pair any LRS edge covers takes nothing from Prometheus, since
 * the caller reported that traffic itself, per subset and every 10 s. A Prometheus edge's subset is the caller's
 * DestinationRule subset whose labels are exactly `version: <destination_version>` (Bookinfo's shape), else '';
 * edges that land on the same subset are summed. Its mTLS is the server's `connection_security_policy`, false when unknown.
 * A caller not yet in the graph is added as a workload with no pods known. Pure: returns a new graph.
 */
export function withPrometheusEdges(graph: MeshGraph, model: MeshModel, prometheus: ReadonlyArray<PrometheusEdge>): MeshGraph {
  if (prometheus.length === 0) return graph;
  const reported = new Set(graph.edges.map((e) => `${e.source}|${e.target}`));
  const index = MeshIndex.of(model);
  const workloads = new Map(graph.workloads.map((w) => [w.id, w]));
  const added = new Map<string, GraphEdge>();
  const rulesCache: Parameters<typeof edgeRules>[0] = new Map();
  for (const p of prometheus) {
    const source = workloadId(p.source.namespace, p.source.app, p.source.version);
    if (reported.has(`${source}|${p.target}`)) continue;
    if (!workloads.has(source))
      workloads.set(source, {
        id: source,
        namespace: p.source.namespace,
        app: p.source.app,
        version: p.source.version,
        services: [],
        pods: 0,
      });
    const labels = { app: p.source.app, ...(p.source.version !== 'unknown' ? { version: p.source.version } : {}) };
    let subset = '';
    if (p.destinationVersion && index.byHost.has(p.target)) {
      const view = new ProxyView(model, { kind: 'grpc', namespace: p.source.namespace, labels }, index);
      subset =
        view
          .destinationRuleFor(p.target)
          ?.subsets.find((s) => Object.keys(s.labels ?? {}).length === 1 && s.labels?.['version'] === p.destinationVersion)?.name ?? '';
    }
    const key = `${source}|${p.target}|${subset}`;
    const edge = added.get(key);
    if (edge) {
      edge.requestsPerSecond += p.requestsPerSecond;
      edge.errorsPerSecond += p.errorsPerSecond;
      edge.mtls = edge.mtls && p.mtls === true;
      continue;
    }
    added.set(key, {
      source,
      target: p.target,
      subset,
      requestsPerSecond: p.requestsPerSecond,
      errorsPerSecond: p.errorsPerSecond,
      inProgress: 0,
      mtls: p.mtls === true,
      rules: edgeRules(rulesCache, model, index, { namespace: p.source.namespace, labels }, p.target, subset),
      reportedBy: 'prometheus',
    });
  }
  return {
    ...graph,
    workloads: [...workloads.values()].sort((a, b) => a.id.localeCompare(b.id)),
    edges: [...graph.edges, ...added.values()].sort(
      (a, b) => a.source.localeCompare(b.source) || a.target.localeCompare(b.target) || a.subset.localeCompare(b.subset),
    ),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
