import { parseDurationSeconds } from './duration.js';

describe('parseDurationSeconds', () => {
  it('reads the durations MeshInstallation accepts', () => {
    expect(parseDurationSeconds('24h')).toBe(86_400);
    expect(parseDurationSeconds('1h30m')).toBe(5_400);
    expect(parseDurationSeconds('90s')).toBe(90);
    expect(parseDurationSeconds('1.5h')).toBe(5_400);
  });
  it('refuses anything else with a hint', () => {
    expect(() => parseDurationSeconds('1d')).toThrow("'1d' is not a duration such as 24h, 90m or 1h30m");
    expect(() => parseDurationSeconds('24h garbage')).toThrow('is not a duration');
    expect(() => parseDurationSeconds('')).toThrow('is not a duration');
  });
});
