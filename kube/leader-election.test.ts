import { jest } from '@jest/globals';
import type { KubeConfig, V1Lease } from '@kubernetes/client-node';
import { componentLogger } from '../lib/logger.js';
import { LeaderElector } from './leader-election.js';

/** One Lease in memory behind CoordinationV1Api's three calls; `mode` makes the API fail or hang. */
function fakeLeaseApi() {
  const state: { lease: V1Lease | undefined; version: number; mode: 'up' | 'down' | 'hang'; writes?: Promise<void> } = {
    lease: undefined,
    version: 0,
    mode: 'up',
  };
  const gate = async () => {
    if (state.mode === 'down') throw new Error('connect ECONNREFUSED');
    if (state.mode === 'hang') await new Promise(() => {});
  };
  const api = {
    readNamespacedLease: async () => {
      await gate();
      if (!state.lease) throw Object.assign(new Error('not found'), { code: 404 });
      return structuredClone(state.lease);
    },
    createNamespacedLease: async ({ body }: { body: V1Lease }) => {
      await gate();
      if (state.lease) throw Object.assign(new Error('exists'), { code: 409 });
      state.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++state.version) } };
      return state.lease;
    },
    replaceNamespacedLease: async ({ body }: { body: V1Lease }) => {
      await gate();
      // A write on the wire: it lands (or conflicts) only once the test lets it.
      await state.writes;
      if (body.metadata?.resourceVersion !== state.lease?.metadata?.resourceVersion)
        throw Object.assign(new Error('conflict'), { code: 409 });
      state.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++state.version) } };
      return state.lease;
    },
  };
  const config = { makeApiClient: () => api } as unknown as KubeConfig;
  return { state, config };
}

describe('LeaderElector', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());
  const log = componentLogger('leader-election-test');
  const options = { namespace: 'weft-operator', name: 'weft-operator-leader' };

  it.each(['down', 'hang'] as const)(
    'a leader whose renewals fail (%s) stops leading within the renew deadline, before the Lease can pass to a standby',
    async (mode) => {
      const { state, config } = fakeLeaseApi();
      const events: string[] = [];
      const leader = new LeaderElector(config, { ...options, identity: 'a' }, log);
      leader.start(
        () => events.push(`lead ${Date.now()}`),
        () => events.push(`lost ${Date.now()}`),
      );
      await jest.advanceTimersByTimeAsync(0);
      const start = Date.now();
      expect(events).toEqual([`lead ${start}`]);
      await jest.advanceTimersByTimeAsync(4_000); // renewed at +2 s and +4 s
      const lastRenew = new Date(state.lease?.spec?.renewTime as unknown as string).getTime();
      expect(lastRenew).toBe(start + 4_000);
      state.mode = mode;
      await jest.advanceTimersByTimeAsync(20_000);
      const lost = Number(events[1]?.split(' ')[1]);
      expect(events[1]).toMatch(/^lost /);
      // client-go's RenewDeadline: 10 s after the last renewal, where a standby may take the Lease only after 15 s.
      expect(lost - lastRenew).toBeGreaterThanOrEqual(10_000);
      expect(lost - lastRenew).toBeLessThan(15_000);
      expect(leader.isLeader).toBe(false);
    },
  );

  it('a standby takes the Lease only once it has expired, then leads', async () => {
    const { state, config } = fakeLeaseApi();
    const a = new LeaderElector(config, { ...options, identity: 'a' }, log);
    const b = new LeaderElector(config, { ...options, identity: 'b' }, log);
    let bLeads = 0;
    a.start(
      () => {},
      () => {},
    );
    await jest.advanceTimersByTimeAsync(0);
    b.start(
      () => (bLeads = Date.now()),
      () => {},
    );
    await jest.advanceTimersByTimeAsync(6_000);
    expect(state.lease?.spec?.holderIdentity).toBe('a');
    // a dies without a word (SIGKILL): its timers stop, the Lease stays as it last wrote it.
    const killedAt = Date.now();
    const lastRenew = new Date(state.lease?.spec?.renewTime as unknown as string).getTime();
    jest
      .spyOn(a as unknown as { tryAcquireOrRenew: () => Promise<boolean> }, 'tryAcquireOrRenew')
      .mockImplementation(() => new Promise(() => {}));
    await jest.advanceTimersByTimeAsync(30_000);
    expect(state.lease?.spec?.holderIdentity).toBe('b');
    expect(bLeads - lastRenew).toBeGreaterThan(15_000);
    expect(bLeads - killedAt).toBeLessThanOrEqual(15_000 + 2_000);
    // a's last write never returns: its stop() gives up on it after 2 s.
    const stopped = Promise.all([a.stop(), b.stop()]);
    await jest.advanceTimersByTimeAsync(5_000);
    await stopped;
    expect(state.lease?.spec?.holderIdentity).toBeUndefined();
  });

  it('a standby stopped while its acquisition is on the wire never leads and leaves the Lease free', async () => {
    const { state, config } = fakeLeaseApi();
    const a = new LeaderElector(config, { ...options, identity: 'a' }, log);
    const b = new LeaderElector(config, { ...options, identity: 'b' }, log);
    a.start(
      () => {},
      () => {},
    );
    await jest.advanceTimersByTimeAsync(0);
    let bLed = false;
    b.start(
      () => (bLed = true),
      () => {},
    );
    await jest.advanceTimersByTimeAsync(1_000);
    // Both pods are deleted: writes stall while the leader hands the Lease over and b's next attempt reads it free.
    let land = () => {};
    state.writes = new Promise((resolve) => (land = resolve));
    const aStopped = a.stop();
    await jest.advanceTimersByTimeAsync(0);
    land();
    state.writes = undefined;
    await aStopped;
    expect(state.lease?.spec?.holderIdentity).toBeUndefined();
    state.writes = new Promise((resolve) => (land = resolve));
    await jest.advanceTimersByTimeAsync(2_000); // b's attempt: reads the Lease free, its write in flight
    const bStopped = b.stop(); // b's SIGTERM arrives now
    land();
    await jest.advanceTimersByTimeAsync(0);
    await bStopped;
    expect(bLed).toBe(false);
    // Without the hand-back, b would hold it for 15 s and no operator would act.
    expect(state.lease?.spec?.holderIdentity).toBeUndefined();
    expect(b.isLeader).toBe(false);
  });

  it('a write that outlives its deadline and wins after stop() is handed back', async () => {
    const { state, config } = fakeLeaseApi();
    const b = new LeaderElector(config, { ...options, identity: 'b' }, log);
    let bLed = false;
    let land = () => {};
    state.writes = new Promise((resolve) => (land = resolve));
    b.start(
      () => (bLed = true),
      () => {},
    );
    state.lease = { metadata: { name: options.name, namespace: options.namespace, resourceVersion: '1' }, spec: {} };
    await jest.advanceTimersByTimeAsync(11_000); // the first write outlived the 10 s renew deadline: b gave up on it
    const bStopped = b.stop();
    land(); // ...and it lands now
    await jest.advanceTimersByTimeAsync(0);
    await bStopped;
    expect(bLed).toBe(false);
    expect(state.lease?.spec?.holderIdentity).toBeUndefined();
  });
});
