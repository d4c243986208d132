import * as grpc from '@grpc/grpc-js';
import { componentLogger } from '../../lib/logger.js';
import type { DiscoveryNode } from './discovery-types.js';
import { LoadReportingServer, loadReportingService, type ClusterLoadReport, type LoadReportSink } from './load-reporting.js';

class RecordingSink implements LoadReportSink {
  readonly records: Array<{ stream: string; node: DiscoveryNode; reports: ClusterLoadReport[] }> = [];
  readonly left: string[] = [];
  record(stream: string, node: DiscoveryNode, reports: ClusterLoadReport[]): void {
    this.records.push({ stream, node, reports });
  }
  leave(stream: string): void {
    this.left.push(stream);
  }
}

describe('LoadReportingServer (LRS over a real gRPC server on loopback)', () => {
  let server: grpc.Server;
  let client: grpc.Client;
  const sink = new RecordingSink();

  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(
      loadReportingService(),
      new LoadReportingServer(sink, { intervalSeconds: 7, maxClusters: 2, log: componentLogger('lrs-test') }).implementation(),
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const Client = grpc.makeGenericClientConstructor(loadReportingService(), 'LoadReportingService');
    client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });
  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  type Stream = grpc.ClientDuplexStream<object, Record<string, unknown>>;
  const open = () => (client as unknown as { StreamLoadStats(): Stream }).StreamLoadStats();
  const ended = (stream: Stream) =>
    new Promise<grpc.StatusObject>((resolve) => {
      stream.on('error', () => undefined);
      stream.on('status', resolve);
    });
  const node = {
    id: 'sidecar~10.0.0.7~productpage-v1.bookinfo~bookinfo.svc.cluster.local',
    metadata: { fields: { NAMESPACE: { stringValue: 'bookinfo' } } },
  };
  const stats = (cluster: string) => ({
    cluster_name: cluster,
    upstream_locality_stats: [
      {
        locality: { zone: 'a' },
        total_successful_requests: 40,
        total_error_requests: 2,
        total_issued_requests: 43,
        total_requests_in_progress: 1,
      },
      { locality: { zone: 'b' }, total_successful_requests: 8, total_issued_requests: 8 },
    ],
    total_dropped_requests: 3,
    load_report_interval: { seconds: 7, nanos: 500_000_000 },
  });

  it('asks for every cluster at its interval, then records each report summed over localities', async () => {
    const stream = open();
    const response = new Promise<Record<string, unknown>>((resolve) => stream.once('data', resolve));
    stream.write({ node, cluster_stats: [] });
    expect(await response).toMatchObject({ send_all_clusters: true, load_reporting_interval: { seconds: 7 } });
    stream.write({ cluster_stats: [stats('outbound|9080||reviews.bookinfo.svc.cluster.local')] });
    const status = ended(stream);
    stream.end();
    await status;
    const record = sink.records.at(-1);
    expect(record?.node).toEqual({ id: node.id, metadata: { NAMESPACE: 'bookinfo' } });
    expect(record?.reports).toEqual([
      {
        cluster: 'outbound|9080||reviews.bookinfo.svc.cluster.local',
        successful: 48,
        errors: 2,
        issued: 51,
        inProgress: 1,
        dropped: 3,
        intervalMs: 7_500,
      },
    ]);
    expect(sink.left).toContain(record?.stream);
  });

  it('refuses a first request without a node id, naming the field', async () => {
    const stream = open();
    const status = ended(stream);
    stream.write({ cluster_stats: [stats('outbound|9080||reviews.bookinfo.svc.cluster.local')] });
    expect(await status).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'node.id: must be set on the first LoadStatsRequest',
    });
  });

  it('refuses a report without a cluster name or with too many clusters, naming the field, and records nothing of it', async () => {
    const before = sink.records.length;
    for (const [clusterStats, details] of [
      [[stats('a'), { ...stats('b'), cluster_name: '' }], 'cluster_stats[1].cluster_name: must be set'],
      [[stats('a'), stats('b'), stats('c')], 'cluster_stats: 3 clusters, more than the 2 allowed'],
    ] as const) {
      const stream = open();
      const status = ended(stream);
      stream.write({ node, cluster_stats: clusterStats });
      expect(await status).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details });
    }
    expect(sink.records.length).toBe(before);
  });
});
