// Envoy's Load Reporting Service (LRS, envoy.service.load_stats.v3.LoadReportingService):
// clients whose clusters carry `lrs_server: { self: {} }` open one StreamLoadStats
// stream to the management server, say who they are in the first request, and then
// report per cluster and locality what they sent (issued, succeeded, failed, in
// flight, dropped) every `load_reporting_interval`. Protocol only: what the reports
// mean is the sink's (xds/load/). Proxyless gRPC honours `lrs_server`; Envoy reads
// its LRS server from its bootstrap only (`cluster_manager.load_stats_config`),
// which pilot-agent does not write, so Envoy sidecars do not report.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { Logger } from '../../lib/logger.js';
import { protoIncludeDirs } from '../protos.js';
import type { DiscoveryNode } from './discovery-types.js';
import { structToJson } from './struct-value.js';

/** One cluster's load over one reporting interval, as the client counted it (ClusterStats, summed over localities). */
export interface ClusterLoadReport {
  /** `cluster_name`: the CDS cluster, e.g. `outbound|9080|v2|reviews.default.svc.cluster.local`. */
  cluster: string;
  /** Calls that completed OK (`total_successful_requests`). */
  successful: number;
  /** Calls that completed with an error (`total_error_requests`). */
  errors: number;
  /** Calls started (`total_issued_requests`). */
  issued: number;
  /** Calls in flight at the end of the interval (`total_requests_in_progress`). */
  inProgress: number;
  /** Calls the client dropped before sending (`total_dropped_requests`, e.g. a DestinationRule's drop overload). */
  dropped: number;
  /** `load_report_interval`, in milliseconds: the counts cover this much time. */
  intervalMs: number;
}

/** Where reports go: one key per stream (a client's reports on it replace nothing, they add up). */
export interface LoadReportSink {
  record(stream: string, node: DiscoveryNode, reports: ClusterLoadReport[]): void;
  /** The stream ended: its client's figures age out (or go now). */
  leave(stream: string): void;
}

export interface LoadReportingOptions {
  /** How often clients report, in seconds (the LoadStatsResponse's `load_reporting_interval`). */
  intervalSeconds: number;
  /** Most clusters one request may report; more is refused (a client has one entry per cluster it uses). */
  maxClusters: number;
  log: Logger;
}

type Long = number;
interface RawRequest {
  node?: { id?: string; metadata?: unknown } | null;
  cluster_stats?: Array<{
    cluster_name?: string;
    upstream_locality_stats?: Array<{
      total_successful_requests?: Long;
      total_error_requests?: Long;
      total_issued_requests?: Long;
      total_requests_in_progress?: Long;
    }>;
    total_dropped_requests?: Long;
    load_report_interval?: { seconds?: Long; nanos?: number } | null;
  }>;
}

let definition: grpc.ServiceDefinition | undefined;

/** The LoadReportingService definition, from the Envoy protos inside @grpc/grpc-js-xds (uint64 counts read as numbers). */
export function loadReportingService(): grpc.ServiceDefinition {
  definition ??= loadSync('envoy/service/load_stats/v3/lrs.proto', {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: false,
    includeDirs: protoIncludeDirs,
  })['envoy.service.load_stats.v3.LoadReportingService'] as grpc.ServiceDefinition;
  return definition;
}

/**
 * A request's cluster stats checked and summed over localities.
 * Errors: a message naming the field (`cluster_stats[2].cluster_name: must be set`), as ClusterStats' validation rules say.
 */
export function clusterLoadReports(request: RawRequest, maxClusters: number): ClusterLoadReport[] | { field: string; message: string } {
  const stats = request.cluster_stats ?? [];
  if (stats.length > maxClusters)
    return { field: 'cluster_stats', message: `${stats.length} clusters, more than the ${maxClusters} allowed` };
  const reports: ClusterLoadReport[] = [];
  const count = (value: Long | undefined) => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0);
  for (const [i, cluster] of stats.entries()) {
    if (!cluster.cluster_name) return { field: `cluster_stats[${i}].cluster_name`, message: 'must be set' };
    const interval = cluster.load_report_interval;
    const intervalMs = interval ? count(interval.seconds) * 1000 + count(interval.nanos) / 1e6 : 0;
    const report: ClusterLoadReport = {
      cluster: cluster.cluster_name,
      successful: 0,
      errors: 0,
      issued: 0,
      inProgress: 0,
      dropped: count(cluster.total_dropped_requests),
      intervalMs,
    };
    for (const locality of cluster.upstream_locality_stats ?? []) {
      report.successful += count(locality.total_successful_requests);
      report.errors += count(locality.total_error_requests);
      report.issued += count(locality.total_issued_requests);
      report.inProgress += count(locality.total_requests_in_progress);
    }
    reports.push(report);
  }
  return reports;
}

/** Serves StreamLoadStats: the first request must name the client's node; every request after it is a report. */
export class LoadReportingServer {
  private streams = 0;

  constructor(
    private readonly sink: LoadReportSink,
    private readonly options: LoadReportingOptions,
  ) {}

  /** `authenticate`, when given, must accept the stream's authorization metadata (15012), as ADS does, before any report counts. */
  implementation(authenticate?: (authorization: string | undefined) => Promise<unknown>): grpc.UntypedServiceImplementation {
    return {
      StreamLoadStats: (call: grpc.ServerDuplexStream<RawRequest, unknown>) => {
        const key = `lrs-${++this.streams}`;
        let node: DiscoveryNode | undefined;
        let ended = false;
        const end = (code: grpc.status, details: string) => {
          if (ended) return;
          ended = true;
          this.sink.leave(key);
          call.emit('error', { code, details });
        };
        call.pause();
        const ready = authenticate ? authenticate(call.metadata.get('authorization')[0]?.toString()) : Promise.resolve();
        ready.then(
          () => call.resume(),
          (error: unknown) => end(grpc.status.UNAUTHENTICATED, error instanceof Error ? error.message : 'unauthenticated'),
        );
        call.on('data', (request: RawRequest) => {
          if (ended) return;
          if (!node) {
            const id = request.node?.id;
            if (!id) return end(grpc.status.INVALID_ARGUMENT, 'node.id: must be set on the first LoadStatsRequest');
            node = { id, ...(request.node?.metadata ? { metadata: structToJson(request.node.metadata) } : {}) };
            // Every cluster, so a client reports what it uses without being told names (and grpc-js-xds 1.14
            // skips the first name of an explicit list: its check is `indexOf(name) > 0`).
            call.write({ send_all_clusters: true, load_reporting_interval: { seconds: this.options.intervalSeconds } });
          }
          const reports = clusterLoadReports(request, this.options.maxClusters);
          if (!Array.isArray(reports)) {
            this.options.log.debug({ node: node.id, field: reports.field }, 'load report refused');
            return end(grpc.status.INVALID_ARGUMENT, `${reports.field}: ${reports.message}`);
          }
          if (reports.length > 0) this.sink.record(key, node, reports);
        });
        call.on('error', () => undefined);
        call.on('end', () => {
          if (!ended) {
            ended = true;
            this.sink.leave(key);
            call.end();
          }
        });
        call.on('cancelled', () => {
          if (!ended) {
            ended = true;
            this.sink.leave(key);
          }
        });
      },
    };
  }
}
