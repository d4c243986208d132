import { parseDurationSeconds, protoDuration } from './duration.js';

describe('parseDurationSeconds', () => {
  it('reads the durations MeshInstallation accepts', () => {
    expect(parseDurationSeconds('24h')).toBe(86_400);
    expect(parseDurationSeconds('1h30m')).toBe(5_400);
    expect(parseDurationSeconds('90s')).toBe(90);
    expect(parseDurationSeconds('1.5h')).toBe(5_400);
  });
  it('refuses anything else with a hint', () => {
    expect(() => parseDurationSeconds('1d')).toThrow("'1d' is not a duration such as 24h, 90m, 1h30m, 1.5s or 100ms");
    expect(() => parseDurationSeconds('24h garbage')).toThrow('is not a duration');
    expect(() => parseDurationSeconds('')).toThrow('is not a duration');
  });
});

describe('protoDuration', () => {
  it('gives Envoy seconds and nanos for the sub-second durations Istio configs use', () => {
    expect(protoDuration('1.5s')).toEqual({ seconds: 1, nanos: 500_000_000 });
    expect(protoDuration('100ms')).toEqual({ seconds: 0, nanos: 100_000_000 });
    expect(protoDuration('2m')).toEqual({ seconds: 120 });
  });
});

describe('Go duration grammar', () => {
  it('accepts every form Istio validation accepts, so generation never throws on an admitted object', () => {
    expect(protoDuration('.5s')).toEqual({ seconds: 0, nanos: 500_000_000 });
    expect(protoDuration('1.s')).toEqual({ seconds: 1 });
    expect(protoDuration('+2s')).toEqual({ seconds: 2 });
    expect(protoDuration('3μs')).toEqual({ seconds: 0, nanos: 3000 });
    expect(protoDuration('0')).toEqual({ seconds: 0 });
  });
});
