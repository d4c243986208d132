// The status weftd writes: the verdict's conditions with the `Reconciled` condition beside
// them, its transition time moving only when its status does (Kubernetes' condition rule).
import type { KubeConfig } from '@kubernetes/client-node';
import { componentLogger } from '../../lib/logger.js';
import { ConfigStatusWriter, withReconciled } from './config-status-writer.js';
import { emptyIstioConfig } from './istio-config.js';
import { Propagation, reconciledCondition } from './propagation.js';

const accepted = { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z' };

describe('withReconciled', () => {
  it('puts the Reconciled condition beside the verdict, replacing the last one, and keeps its time while its status holds', () => {
    const before = withReconciled({ conditions: [accepted] }, reconciledCondition(1, 2, 4), undefined, '2026-01-02T00:00:00Z');
    expect(before).toEqual({
      conditions: [
        accepted,
        {
          type: 'Reconciled',
          status: 'False',
          reason: 'StillPropagating',
          message: '1/2 proxies up to date.',
          observedGeneration: 4,
          lastTransitionTime: '2026-01-02T00:00:00Z',
        },
      ],
    });
    // Still False (another count): the transition time stays.
    const still = withReconciled({ conditions: [accepted] }, reconciledCondition(0, 2, 4), before, '2026-01-03T00:00:00Z');
    expect(still['conditions']).toEqual([
      accepted,
      expect.objectContaining({ message: '0/2 proxies up to date.', lastTransitionTime: '2026-01-02T00:00:00Z' }),
    ]);
    // True now: a new transition time, and one Reconciled condition only.
    const done = withReconciled({ ...still }, reconciledCondition(2, 2, 4), still, '2026-01-04T00:00:00Z');
    expect(done['conditions']).toEqual([accepted, expect.objectContaining({ status: 'True', lastTransitionTime: '2026-01-04T00:00:00Z' })]);
  });
});

describe('ConfigStatusWriter with propagation', () => {
  const node = (pod: string) => ({ id: `sidecar~10.0.0.1~${pod}.shop~shop.svc.cluster.local` });
  const vs = { kind: 'VirtualService', namespace: 'shop', name: 'reviews', generation: 1, spec: { hosts: ['reviews'] } };

  /** The API server's status of one VirtualService, and every status patch sent, of which the first `failures` fail. */
  function fakeApiServer(failures: number) {
    const patches: Array<Record<string, unknown>> = [];
    let stored: Record<string, unknown> | undefined;
    let waiter: (() => void) | undefined;
    const api = {
      patchNamespacedCustomObjectStatus: async ({ body }: { body: Array<{ value: Record<string, unknown> }> }) => {
        patches.push(body[0]!.value);
        waiter?.();
        if (patches.length <= failures) throw new Error('fetch failed');
        stored = body[0]!.value;
        return {};
      },
    };
    return {
      config: { makeApiClient: () => api } as unknown as KubeConfig,
      current: () => ({ metadata: { name: 'reviews', namespace: 'shop' }, ...(stored ? { status: stored } : {}) }) as never,
      patches,
      reconciledMessages: () =>
        patches.map((p) => (p['conditions'] as Array<Record<string, unknown>>).find((c) => c['type'] === 'Reconciled')?.['message']),
      patched: async (count: number) => {
        while (patches.length < count) await new Promise<void>((resolve) => (waiter = resolve));
      },
    };
  }

  let writer: ConfigStatusWriter | undefined;
  afterEach(() => writer?.stop());

  /** A propagation source that says when the writer took from it. */
  function observed(propagation: Propagation) {
    let takes = 0;
    let waiter: (() => void) | undefined;
    return {
      source: {
        take: () => {
          takes++;
          waiter?.();
          return propagation.take();
        },
        condition: (kind: string, namespace: string, name: string) => propagation.condition(kind, namespace, name),
      },
      /** Resolves after `count` more takes. */
      takes: async (count: number) => {
        const until = takes + count;
        while (takes < until) await new Promise<void>((resolve) => (waiter = resolve));
      },
    };
  }

  it('writes a Reconciled change at most once per interval however many proxies ACK, and nothing while its text holds', async () => {
    const server = fakeApiServer(1);
    const propagation = new Propagation();
    propagation.modelApplied({ clusterDomain: 'cluster.local', services: [], istio: { ...emptyIstioConfig(), virtualServices: [vs] } });
    for (let id = 1; id <= 500; id++) propagation.connected(id, node(`web-${id}`));
    const source = observed(propagation);
    writer = new ConfigStatusWriter(server.config, server.current, componentLogger('test'), source.source, 20);
    // The verdict's first write carries the condition: it fails (the API server is away)...
    writer.publish([{ kind: 'VirtualService', namespace: 'shop', name: 'reviews', generation: 1, accepted: true, messages: [] }]);
    await server.patched(1);
    // ...while all 500 proxies ACK: the next interval's one write says so.
    for (let id = 1; id <= 500; id++) propagation.synced(id, true);
    await server.patched(2);
    expect(server.reconciledMessages()).toEqual(['0/500 proxies up to date.', '500/500 proxies up to date.']);
    // A proxy pushed and ACKing again moves no text: three more intervals, no write.
    propagation.synced(1, false);
    propagation.synced(1, true);
    await source.takes(3);
    expect(server.patches).toHaveLength(2);
  });

  it('keeps the Reconciled condition another replica wrote when its own source has none (a replica that does not sum)', async () => {
    const server = fakeApiServer(0);
    let condition: ReturnType<typeof reconciledCondition> | undefined = reconciledCondition(3, 3, 1);
    const source = { take: () => [], condition: () => condition };
    writer = new ConfigStatusWriter(server.config, server.current, componentLogger('test'), source, 60_000);
    writer.publish([{ kind: 'VirtualService', namespace: 'shop', name: 'reviews', generation: 1, accepted: true, messages: [] }]);
    await server.patched(1);
    // This replica no longer writes the condition; its verdict changes (a warning): the condition stays as written.
    condition = undefined;
    const warning = {
      code: 'IST0130',
      name: 'VirtualServiceUnreachableRule',
      level: 'WARNING' as const,
      message: 'spec.http[1]: unreachable',
    };
    writer.publish([{ kind: 'VirtualService', namespace: 'shop', name: 'reviews', generation: 1, accepted: true, messages: [warning] }]);
    await server.patched(2);
    expect(server.reconciledMessages()).toEqual(['3/3 proxies up to date.', '3/3 proxies up to date.']);
    const reconciled = server.patches.map((p) =>
      (p['conditions'] as Array<Record<string, unknown>>).find((c) => c['type'] === 'Reconciled'),
    );
    expect(reconciled[1]!['lastTransitionTime']).toBe(reconciled[0]!['lastTransitionTime']);
  });

  it('writes a Reconciled change lost to a failed write again at the next interval', async () => {
    const server = fakeApiServer(2);
    const propagation = new Propagation();
    propagation.modelApplied({ clusterDomain: 'cluster.local', services: [], istio: { ...emptyIstioConfig(), virtualServices: [vs] } });
    writer = new ConfigStatusWriter(server.config, server.current, componentLogger('test'), propagation, 20);
    writer.publish([{ kind: 'VirtualService', namespace: 'shop', name: 'reviews', generation: 1, accepted: true, messages: [] }]);
    await server.patched(1); // the verdict's write (0/0) fails
    propagation.connected(1, node('web-1'));
    await server.patched(2); // the change to 0/1 fails too, and nothing changes after it
    await server.patched(3);
    expect(server.reconciledMessages()).toEqual(['0/0 proxies up to date.', '0/1 proxies up to date.', '0/1 proxies up to date.']);
  });
});
