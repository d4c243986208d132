// Durations as Istio's APIs write them: Go's form ("1.5s", "100ms", "1h30m"), as the
// CRDs' CEL rules (duration(self) >= duration('1ms')) and Istio's own decoding accept.
// Istio's validation (agent.ValidateDuration) also asks for whole milliseconds.

const nanosPerUnit: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  μs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const component = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
const nanosPerMilli = 1_000_000n;

/** Nanoseconds, or undefined when the text is not a duration. */
export function parseDurationNanos(text: string): bigint | undefined {
  if (typeof text !== 'string') return undefined;
  let rest = text;
  let sign = 1n;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1n;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0n;
  if (rest === '') return undefined;
  let total = 0n;
  component.lastIndex = 0;
  while (component.lastIndex < rest.length) {
    const start = component.lastIndex;
    const match = component.exec(rest);
    if (!match || match.index !== start) return undefined;
    const [, number = '', unit = ''] = match;
    const [whole = '', fraction = ''] = number.split('.');
    const scale = nanosPerUnit[unit] as bigint;
    const digits = fraction.slice(0, 18);
    total += BigInt(whole || '0') * scale + (BigInt(digits || '0') * scale) / 10n ** BigInt(digits.length);
  }
  return sign * total;
}

/** Why a duration is not acceptable to Istio, or undefined when it is. */
export function durationProblem(text: unknown): string | undefined {
  if (typeof text !== 'string') return 'must be a duration such as 1.5s or 100ms';
  const nanos = parseDurationNanos(text);
  if (nanos === undefined) return `"${text}" is not a duration such as 1.5s, 100ms or 1h30m`;
  if (nanos < nanosPerMilli) return `duration "${text}" must be at least 1ms`;
  if (nanos % nanosPerMilli !== 0n) return `duration "${text}" must be in whole milliseconds`;
  return undefined;
}
