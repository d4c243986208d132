// Go-style durations ("24h", "1h30m", "90s"), as Istio's and Kubernetes' configs write them.
const units: Record<string, number> = { h: 3600, m: 60, s: 1 };

export function parseDurationSeconds(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new Error(`'${text}' is not a duration such as 24h, 90m or 1h30m`);
  }
  return parts.reduce((total, [, value, unit]) => total + Number(value) * (units[unit as string] as number), 0);
}
