import { durationProblem, parseDurationNanos } from './duration.js';

describe('Istio durations', () => {
  it.each([
    ['1.5s', 1_500_000_000n],
    ['100ms', 100_000_000n],
    ['1h30m', 5_400_000_000_000n],
    ['2m0.5s', 120_500_000_000n],
    ['.5s', 500_000_000n],
    ['0', 0n],
    ['-1s', -1_000_000_000n],
  ])('parses %s', (text, nanos) => {
    expect(parseDurationNanos(text)).toBe(nanos);
  });

  it.each(['', 's', '1', '1.5', '1 s', '1sec', '1d', 'ms100', '1.5s ', '--1s'])('refuses %j', (text) => {
    expect(parseDurationNanos(text)).toBeUndefined();
  });

  it('asks for at least 1ms, in whole milliseconds', () => {
    expect(durationProblem('1ms')).toBeUndefined();
    expect(durationProblem('10s')).toBeUndefined();
    expect(durationProblem('0s')).toBe('duration "0s" must be at least 1ms');
    expect(durationProblem('-5s')).toBe('duration "-5s" must be at least 1ms');
    expect(durationProblem('999us')).toBe('duration "999us" must be at least 1ms');
    expect(durationProblem('1500us')).toBe('duration "1500us" must be in whole milliseconds');
    expect(durationProblem('ten seconds')).toBe('"ten seconds" is not a duration such as 1.5s, 100ms or 1h30m');
    expect(durationProblem(5)).toBe('must be a duration such as 1.5s or 100ms');
  });
});
