// A keyed work queue in the manner of client-go's: a key is queued at most once,
// never processed by two workers at once, and a failing key backs off exponentially.
export interface WorkQueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export class WorkQueue {
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirtyWhileProcessing = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly handle: (key: string) => Promise<{ requeueAfterMs?: number }>,
    private readonly onError: (key: string, error: unknown, retryInMs: number) => void,
    private readonly options: WorkQueueOptions = {},
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirtyWhileProcessing.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    queueMicrotask(() => void this.run(key));
  }

  addAfter(key: string, delayMs: number): void {
    if (this.stopped || this.timers.has(key)) return;
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, timer);
  }

  /** Resolves once nothing is queued or running (timers aside). */
  async idle(): Promise<void> {
    if (this.queued.size === 0 && this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private async run(key: string): Promise<void> {
    if (!this.queued.delete(key) || this.stopped) return this.notifyIdle();
    this.processing.add(key);
    try {
      const { requeueAfterMs } = await this.handle(key);
      this.failures.delete(key);
      if (requeueAfterMs !== undefined) this.addAfter(key, requeueAfterMs);
    } catch (error) {
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      const delay = Math.min((this.options.baseDelayMs ?? 500) * 2 ** (failures - 1), this.options.maxDelayMs ?? 60_000);
      this.onError(key, error, delay);
      this.addAfter(key, delay);
    } finally {
      this.processing.delete(key);
      if (this.dirtyWhileProcessing.delete(key)) this.add(key);
      this.notifyIdle();
    }
  }

  private notifyIdle(): void {
    if (this.queued.size > 0 || this.processing.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
