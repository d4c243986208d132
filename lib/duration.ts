// Go-style durations ("24h", "1h30m", "90s"), as Istio's and Kubernetes' configs write them.
const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, µs: 1e-6, μs: 1e-6, ns: 1e-9 };

/** Go's duration grammar (as Istio's and Kubernetes' configs): `1h30m`, `1.5s`, `.5s`, `100ms`, `0`. */
export function parseDurationSeconds(text: string): number {
  const body = text.startsWith('+') ? text.slice(1) : text;
  if (body === '0') return 0;
  const parts = [...body.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== body) {
    throw new Error(`'${text}' is not a duration such as 24h, 90m, 1h30m, 1.5s or 100ms`);
  }
  return parts.reduce((total, [, value, unit]) => total + Number(value) * (units[unit as string] as number), 0);
}

/** A google.protobuf.Duration for Envoy, from a Go-style duration ("1.5s", "100ms"). */
export function protoDuration(text: string): { seconds: number; nanos?: number } {
  const totalNanos = Math.round(parseDurationSeconds(text) * 1e9);
  const seconds = Math.floor(totalNanos / 1e9);
  const nanos = totalNanos - seconds * 1e9;
  return nanos > 0 ? { seconds, nanos } : { seconds };
}
