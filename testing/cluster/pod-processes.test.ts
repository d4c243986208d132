import { ContainerBackOff } from './pod-processes.js';

describe('ContainerBackOff (the kubelet restart back-off)', () => {
  it('restarts at once after the first exit, then waits 10 s, 20 s, 40 s ... from each exit, up to 300 s', () => {
    const backoff = new ContainerBackOff();
    let now = 1_000_000;
    const waits: number[] = [];
    for (let exit = 0; exit < 8; exit++) {
      const finishedAt = now;
      let waited = 0;
      while (!backoff.mayRestart('c', finishedAt, now)) {
        now += 1_000;
        waited += 1_000;
      }
      waits.push(waited);
      backoff.restarted('c', finishedAt, now);
      now += 500; // runs half a second, then exits again
    }
    expect(waits).toEqual([0, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  });

  it('starts again from nothing after running for more than twice the maximum', () => {
    const backoff = new ContainerBackOff();
    backoff.restarted('c', 0, 0);
    expect(backoff.mayRestart('c', 5_000, 5_000)).toBe(false);
    expect(backoff.mayRestart('c', 600_001, 600_001)).toBe(true);
  });

  it('lowers the initial delay to a smaller maximum, as crashLoopBackOff.maxContainerRestartPeriod does', () => {
    const backoff = new ContainerBackOff({ maxMs: 4_000 });
    expect(backoff.restarted('c', 0, 0)).toBe(4_000);
    expect(backoff.restarted('c', 10, 4_010)).toBe(4_000);
  });
});
