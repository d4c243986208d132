import { LoadStore } from './load-store.js';
import type { ClusterLoadReport } from '../server/load-reporting.js';

const node = (pod: string, labels: Record<string, string>) => ({
  id: `sidecar~10.0.0.1~${pod}.bookinfo~bookinfo.svc.cluster.local`,
  metadata: { NAMESPACE: 'bookinfo', LABELS: labels },
});
const report = (cluster: string, successful: number, errors: number, intervalMs = 10_000): ClusterLoadReport => ({
  cluster,
  successful,
  errors,
  issued: successful + errors,
  inProgress: 2,
  dropped: 0,
  intervalMs,
});
const reviews = 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local';

describe('LoadStore', () => {
  let now = 1_000_000;
  const store = () => new LoadStore({ windowMs: 30_000, maxClustersPerStream: 3, now: () => now });

  it('turns the reports of the window into request and error rates per source and cluster', () => {
    const loads = store();
    loads.record('lrs-1', node('productpage-v1-abc', { app: 'productpage', version: 'v1' }), [report(reviews, 90, 10)]);
    now += 10_000;
    loads.record('lrs-1', node('productpage-v1-abc', { app: 'productpage', version: 'v1' }), [report(reviews, 190, 10)]);
    const [edge] = loads.edges();
    // 300 calls over the 20 s the two reports cover; 20 of them failed.
    expect(edge).toMatchObject({
      cluster: reviews,
      requests: 300,
      errors: 20,
      requestsPerSecond: 15,
      errorsPerSecond: 1,
      inProgress: 2,
      source: { namespace: 'bookinfo', pod: 'productpage-v1-abc', labels: { app: 'productpage', version: 'v1' } },
    });
  });

  it('forgets reports older than the window, and a stream a window after it ended', () => {
    const loads = store();
    loads.record('lrs-1', node('a', {}), [report(reviews, 100, 0)]);
    now += 20_000;
    loads.record('lrs-1', node('a', {}), [report(reviews, 10, 0)]);
    now += 15_000;
    expect(loads.edges()[0]?.requests).toBe(10);
    loads.leave('lrs-1');
    expect(loads.edges()).toHaveLength(1);
    now += 31_000;
    expect(loads.edges()).toEqual([]);
  });

  it('keeps at most maxClustersPerStream clusters for one stream, so a client cannot grow it without bound', () => {
    const loads = store();
    loads.record(
      'lrs-1',
      node('a', {}),
      ['a', 'b', 'c', 'd', 'e'].map((c) => report(`outbound|80||${c}.x.svc.cluster.local`, 1, 0)),
    );
    expect(loads.edges().map((e) => e.cluster)).toEqual([
      'outbound|80||a.x.svc.cluster.local',
      'outbound|80||b.x.svc.cluster.local',
      'outbound|80||c.x.svc.cluster.local',
    ]);
  });
});
