import { WorkQueue } from './work-queue.js';

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('WorkQueue', () => {
  it('processes a key once however often it is added before it runs', async () => {
    const seen: string[] = [];
    const queue = new WorkQueue(
      async (key) => (seen.push(key), {}),
      () => {},
    );
    queue.add('a');
    queue.add('a');
    queue.add('b');
    await queue.idle();
    expect(seen.sort()).toEqual(['a', 'b']);
  });

  it('never runs one key twice at once, and reruns it when it changed during processing', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const queue = new WorkQueue(
      async () => {
        running++;
        runs++;
        maxRunning = Math.max(maxRunning, running);
        await tick(20);
        running--;
        return {};
      },
      () => {},
    );
    queue.add('a');
    await tick(5);
    queue.add('a');
    queue.add('a');
    await tick(100);
    await queue.idle();
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
  });

  it('retries a failing key with growing delays and reports each error', async () => {
    const attempts: number[] = [];
    const delays: number[] = [];
    const queue = new WorkQueue(
      async () => {
        attempts.push(Date.now());
        if (attempts.length < 3) throw new Error('apiserver unavailable');
        return {};
      },
      (_key, _error, retryInMs) => delays.push(retryInMs),
      { baseDelayMs: 10, maxDelayMs: 1_000 },
    );
    queue.add('a');
    await tick(200);
    expect(attempts).toHaveLength(3);
    expect(delays).toEqual([10, 20]);
    queue.stop();
  });

  it('requeues a key that asks for it, and stop() cancels pending work', async () => {
    let runs = 0;
    const queue = new WorkQueue(
      async () => (runs++, { requeueAfterMs: 10 }),
      () => {},
    );
    queue.add('a');
    await tick(60);
    queue.stop();
    const after = runs;
    await tick(50);
    expect(after).toBeGreaterThanOrEqual(3);
    expect(runs).toBe(after);
  });
});
