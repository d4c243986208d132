// What the data plane says it sent, from its load reports (server/load-reporting.ts):
// per reporting workload and cluster, the reports of the last window, from which
// request and error rates follow. This is the live traffic figure on a cluster
// without Prometheus (the dashboard's edges). Bounded: a window of reports per
// (stream, cluster), a cap on clusters per stream, and a stream's figures go when
// their window has passed after it ended.
import type { ClusterLoadReport, LoadReportSink } from '../server/load-reporting.js';
import type { DiscoveryNode } from '../server/discovery-types.js';
import { parseProxyId } from '../server/proxy-id.js';

/** The workload a report came from: its pod, namespace and the labels its node metadata carries (`app`, `version`, ...). */
export interface LoadSource {
  nodeId: string;
  namespace: string;
  pod: string;
  labels: Record<string, string>;
}

/** One source's traffic to one cluster over the window. Rates are per second. */
export interface LoadEdge {
  source: LoadSource;
  /** The CDS cluster name, `outbound|<port>|<subset>|<host>`. */
  cluster: string;
  requestsPerSecond: number;
  errorsPerSecond: number;
  /** Calls in flight at the last report. */
  inProgress: number;
  /** Completed calls (successful + errors) and errors over the window. */
  requests: number;
  errors: number;
  dropped: number;
  /** When the last report for this edge arrived, in ms since the epoch. */
  lastReportAt: number;
}

interface Sample extends ClusterLoadReport {
  at: number;
}

interface StreamState {
  source: LoadSource;
  clusters: Map<string, Sample[]>;
  endedAt?: number;
}

export interface LoadStoreOptions {
  /** How far back rates look, in ms (a few reporting intervals). */
  windowMs: number;
  /** Most clusters kept per stream; reports for more are dropped (a client has one entry per cluster it uses). */
  maxClustersPerStream: number;
  now?: () => number;
}

export class LoadStore implements LoadReportSink {
  private readonly streams = new Map<string, StreamState>();
  private readonly now: () => number;
  private prunedAt = 0;
  /** Reports counted since the start, for /metrics and tests. */
  reports = 0;

  constructor(private readonly options: LoadStoreOptions) {
    this.now = options.now ?? Date.now;
  }

  record(stream: string, node: DiscoveryNode, reports: ClusterLoadReport[]): void {
    const at = this.now();
    let state = this.streams.get(stream);
    if (!state) this.streams.set(stream, (state = { source: sourceOf(node), clusters: new Map() }));
    for (const report of reports) {
      let samples = state.clusters.get(report.cluster);
      if (!samples) {
        if (state.clusters.size >= this.options.maxClustersPerStream) continue;
        state.clusters.set(report.cluster, (samples = []));
      }
      samples.push({ ...report, at });
      this.reports++;
    }
    // A whole pass at most once per tenth of the window: reports arrive from every client every interval.
    if (at - this.prunedAt >= this.options.windowMs / 10) this.prune(at);
  }

  leave(stream: string): void {
    const state = this.streams.get(stream);
    if (state) state.endedAt = this.now();
  }

  /** Every (source, cluster) with a report in the window, with its rates; sorted by source node id, then cluster. */
  edges(): LoadEdge[] {
    const now = this.now();
    this.prune(now);
    const edges: LoadEdge[] = [];
    for (const state of this.streams.values()) {
      for (const [cluster, samples] of state.clusters) {
        if (samples.length === 0) continue;
        let requests = 0;
        let errors = 0;
        let dropped = 0;
        let covered = 0;
        for (const sample of samples) {
          requests += sample.successful + sample.errors;
          errors += sample.errors;
          dropped += sample.dropped;
          covered += sample.intervalMs;
        }
        // The reports cover `covered` ms (never more than the window): a rate over the time they describe.
        const seconds = Math.max(Math.min(covered, this.options.windowMs), 1) / 1000;
        const last = samples[samples.length - 1] as Sample;
        edges.push({
          source: state.source,
          cluster,
          requestsPerSecond: requests / seconds,
          errorsPerSecond: errors / seconds,
          inProgress: last.inProgress,
          requests,
          errors,
          dropped,
          lastReportAt: last.at,
        });
      }
    }
    return edges.sort((a, b) => a.source.nodeId.localeCompare(b.source.nodeId) || a.cluster.localeCompare(b.cluster));
  }

  /** Drops samples older than the window, and streams that ended a window ago. */
  private prune(now: number): void {
    this.prunedAt = now;
    const oldest = now - this.options.windowMs;
    for (const [key, state] of this.streams) {
      if (state.endedAt !== undefined && state.endedAt < oldest) {
        this.streams.delete(key);
        continue;
      }
      for (const [cluster, samples] of state.clusters) {
        let drop = 0;
        while (drop < samples.length && (samples[drop] as Sample).at < oldest) drop++;
        if (drop > 0) samples.splice(0, drop);
        if (samples.length === 0) state.clusters.delete(cluster);
      }
    }
  }
}

/** A node as the dashboard names it: Istio's node id gives the pod and namespace, node metadata LABELS the workload's labels. */
export function sourceOf(node: DiscoveryNode): LoadSource {
  const id = parseProxyId(node.id);
  const metadata = (node.metadata ?? {}) as Record<string, unknown>;
  const labels: Record<string, string> = {};
  const raw = metadata['LABELS'];
  if (raw && typeof raw === 'object' && !Array.isArray(raw))
    for (const [key, value] of Object.entries(raw as Record<string, unknown>)) if (typeof value === 'string') labels[key] = value;
  const namespace = typeof metadata['NAMESPACE'] === 'string' ? metadata['NAMESPACE'] : (id?.namespace ?? '');
  return { nodeId: node.id, namespace, pod: id?.pod ?? '', labels };
}
