// Counts derivations by name, so a test can assert what a change recomputed
// (work done, not time taken), and a benchmark can print it.

/** Per-name counts of derivations; one instance per ProxyGroups (and so per weftd). */
export class Derivations {
  private readonly counts = new Map<string, number>();

  /** Records one derivation of `name` (a collection's name, for example `cla` or `cluster`). */
  add(name: string, count = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + count);
  }

  /** Derivations of `name` since the start (or since `reset`). */
  get(name: string): number {
    return this.counts.get(name) ?? 0;
  }

  /** Every name's count, sorted by name. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort((a, b) => a[0].localeCompare(b[0])));
  }

  reset(): void {
    this.counts.clear();
  }
}
