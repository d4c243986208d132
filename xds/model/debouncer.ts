// Coalesces bursts of changes as istiod does: act after 100 ms without news, but
// never later than 10 s after the first change of a burst.
export class Debouncer {
  private quietTimer: NodeJS.Timeout | undefined;
  private maxTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly action: () => void,
    private readonly quietMs = 100,
    private readonly maxMs = 10_000,
  ) {}

  trigger(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => this.fire(), this.quietMs);
    this.maxTimer ??= setTimeout(() => this.fire(), this.maxMs);
  }

  stop(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    if (this.maxTimer) clearTimeout(this.maxTimer);
    this.quietTimer = this.maxTimer = undefined;
  }

  private fire(): void {
    this.stop();
    this.action();
  }
}
