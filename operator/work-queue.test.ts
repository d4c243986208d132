import { jest } from '@jest/globals';
import { WorkQueue } from './work-queue.js';

/** A promise and the function that resolves it: lets a handler wait for the test, not for the clock. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('WorkQueue', () => {
  afterEach(() => jest.useRealTimers());

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

  it('never runs one key twice at once, and reruns it once when it changed during processing', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const started = gate();
    const release = gate();
    const queue = new WorkQueue(
      async () => {
        running++;
        runs++;
        maxRunning = Math.max(maxRunning, running);
        if (runs === 1) {
          started.open();
          await release.opened;
        }
        running--;
        return {};
      },
      () => {},
    );
    queue.add('a');
    // The first run is in progress: both adds land while it runs.
    await started.opened;
    queue.add('a');
    queue.add('a');
    release.open();
    await queue.idle();
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
  });

  // Timers are Jest's fake ones: the checks are exact to the millisecond and do not
  // depend on how loaded the machine is. Microtasks stay real, so handlers' promises settle.
  const fakeTimers = () => jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });

  it('retries a failing key with growing delays and reports each error', async () => {
    fakeTimers();
    let attempts = 0;
    const delays: number[] = [];
    const queue = new WorkQueue(
      async () => {
        attempts++;
        if (attempts < 3) throw new Error('apiserver unavailable');
        return {};
      },
      (_key, _error, retryInMs) => delays.push(retryInMs),
      { baseDelayMs: 10, maxDelayMs: 1_000 },
    );
    queue.add('a');
    await jest.advanceTimersByTimeAsync(0);
    expect(attempts).toBe(1);
    // Not a millisecond early, and on time.
    await jest.advanceTimersByTimeAsync(9);
    expect(attempts).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(attempts).toBe(2);
    await jest.advanceTimersByTimeAsync(19);
    expect(attempts).toBe(2);
    await jest.advanceTimersByTimeAsync(1);
    expect(attempts).toBe(3);
    expect(delays).toEqual([10, 20]);
    // Success ends the retries.
    await jest.advanceTimersByTimeAsync(10_000);
    expect(attempts).toBe(3);
    queue.stop();
  });

  it('caps the retry delay at maxDelayMs', async () => {
    fakeTimers();
    const delays: number[] = [];
    const queue = new WorkQueue(
      async () => {
        throw new Error('still down');
      },
      (_key, _error, retryInMs) => delays.push(retryInMs),
      { baseDelayMs: 100, maxDelayMs: 500 },
    );
    queue.add('a');
    await jest.advanceTimersByTimeAsync(100 + 200 + 400 + 500 + 500);
    expect(delays).toEqual([100, 200, 400, 500, 500, 500]);
    queue.stop();
  });

  it('requeues a key that asks for it, and stop() cancels pending work', async () => {
    fakeTimers();
    let runs = 0;
    const queue = new WorkQueue(
      async () => (runs++, { requeueAfterMs: 10 }),
      () => {},
    );
    queue.add('a');
    // Runs at 0, 10, 20 and 30 ms.
    await jest.advanceTimersByTimeAsync(35);
    expect(runs).toBe(4);
    queue.stop();
    expect(jest.getTimerCount()).toBe(0);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(runs).toBe(4);
    // Nothing is accepted after stop().
    queue.add('a');
    await queue.idle();
    expect(runs).toBe(4);
  });
});
