// List, then watch from the list's resourceVersion, and keep watching without a
// gap: each watch resumes from the last resourceVersion seen (objects' and
// BOOKMARKs'), so a watch the API server ends at its timeout loses nothing. Only
// when that resourceVersion is too old (410 Gone) is the collection listed again,
// and the cache reconciled with the list: objects gone meanwhile are reported as
// deleted, changed ones as updated, unchanged ones not at all. client-go's
// Reflector and its store, in small (k8s.io/client-go/tools/cache/reflector.go).
import { Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../lib/logger.js';
import { statusCode } from './client.js';

/** A change to the cache: `object` is the new state, or for `delete` the last one known. */
export interface StoreEvent<T> {
  type: 'add' | 'update' | 'delete';
  object: T;
}

/** One watch request as `@kubernetes/client-node`'s `Watch.watch` makes it; `done` is called once, when it ends. */
export interface WatchTransport {
  watch(
    path: string,
    query: Record<string, string>,
    onEvent: (type: string, object: unknown) => void,
    done: (error: unknown) => void,
  ): Promise<{ abort(): void }>;
}

export interface WatchTuning {
  /**
   * How long the API server keeps each watch open, in seconds (`timeoutSeconds`).
   * Default: a random value in [300, 600), as client-go's minWatchTimeout of 5 min does,
   * so that many watches do not end together.
   */
  timeoutSeconds?: number;
  /**
   * A watch that receives nothing (no event, no BOOKMARK) for this long, in ms, is
   * ended by the client and resumed from its resourceVersion, at debug level: this is
   * how a dead connection is found. The API server sends a BOOKMARK about every
   * minute only while the resource's resourceVersion moves (cacher.go sends none
   * not newer than the watch's), so a quiet collection's watch is resumed this often;
   * nothing is lost or replayed. Default 90 s.
   */
  idleTimeoutMs?: number;
  /** Retry delays after a failed list or watch, in ms: doubling from `initialMs` up to `maxMs`. Default 200 ms to 30 s. */
  backoff?: { initialMs: number; maxMs: number };
  /**
   * A watch the server ends sooner than this, in ms, after it started is resumed
   * only once this much time has passed, so a server ending watches at once cannot
   * make us spin. Default 1000.
   */
  minWatchMs?: number;
}

export interface ReflectorOptions<T extends KubernetesObject> {
  /** The collection's path, for example `/api/v1/configmaps`. */
  path: string;
  /** Selectors (`fieldSelector`, `labelSelector`) sent with every watch; `list` must apply the same ones. */
  query?: Record<string, string>;
  list: () => Promise<KubernetesListObject<T>>;
  transport: WatchTransport;
  /** Called for each change of the cache, in order; an exception is logged and does not stop the watch. */
  onEvent: (event: StoreEvent<T>) => void;
  log: Logger;
  tuning?: WatchTuning;
}

/** Outcome of one watch request. */
type WatchEnd =
  | { kind: 'ended'; events: number; ms: number }
  | { kind: 'idle' }
  | { kind: 'gone' }
  | { kind: 'failed'; error: unknown; connected: boolean };

/** `namespace/name`, or `name` for cluster-scoped objects: the cache's key, as client-go's MetaNamespaceKeyFunc. */
export function objectKey(object: KubernetesObject): string {
  const namespace = object.metadata?.namespace;
  const name = object.metadata?.name ?? '';
  return namespace ? `${namespace}/${name}` : name;
}

/** A watch transport over `@kubernetes/client-node`'s `Watch`, with its idle timeout set from `tuning`. */
export function clientWatchTransport(config: KubeConfig, tuning: WatchTuning = {}): WatchTransport {
  const watch = new Watch(config);
  // The client's idle timeout (30 s) ended every quiet watch, with a warning and a full replay each time.
  // It is private in the typings and has no option: check it is still there.
  const settable = watch as unknown as { requestTimeoutMs?: unknown };
  if (typeof settable.requestTimeoutMs !== 'number') throw new Error('@kubernetes/client-node Watch has no requestTimeoutMs any more');
  settable.requestTimeoutMs = tuning.idleTimeoutMs ?? 90_000;
  return watch;
}

export class Reflector<T extends KubernetesObject> {
  private store = new Map<string, T>();
  /** Where the next watch starts; undefined: list first. */
  private resourceVersion: string | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private abortWatch: (() => void) | undefined;
  private wakeUp: (() => void) | undefined;
  /** Failures in a row: the backoff grows with them. */
  private failures = 0;
  /** Between a failure and the next successful list or watch: one warning per such outage. */
  private failing = false;
  private readonly syncedOnce: Promise<void>;
  private markSynced!: () => void;
  /** Counts, for tests: lists made, watches started, watches resumed after a normal or idle end, relists after 410, failures. */
  readonly counts = { lists: 0, watches: 0, resumed: 0, relists: 0, failures: 0 };

  private get minWatchMs(): number {
    return this.options.tuning?.minWatchMs ?? 1_000;
  }

  constructor(private readonly options: ReflectorOptions<T>) {
    this.syncedOnce = new Promise((resolve) => (this.markSynced = resolve));
  }

  /**
   * Starts listing and watching. Resolves once the first list is in the cache, or
   * once the first list failed (a kind whose CRD is not installed, a transient
   * error): the list is then retried in the background and what it finds reported
   * as added. Never rejects.
   */
  start(): Promise<void> {
    this.running ??= this.run();
    return this.syncedOnce;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abortWatch?.();
    this.wakeUp?.();
    this.markSynced();
    await this.running;
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  private async run(): Promise<void> {
    const { path, log } = this.options;
    while (!this.stopped) {
      if (this.resourceVersion === undefined) {
        try {
          await this.relist();
        } catch (error) {
          this.markSynced();
          await this.failed('list', error);
          continue;
        }
      }
      const started = Date.now();
      const end = await this.watchOnce(this.resourceVersion as string);
      if (this.stopped) return;
      switch (end.kind) {
        case 'ended':
          // The API server's timeoutSeconds, or it closed the stream: resume where we were.
          if (end.events > 0 || end.ms >= this.minWatchMs) this.failures = 0;
          this.counts.resumed++;
          log.debug({ path, resourceVersion: this.resourceVersion, events: end.events }, 'watch ended; resuming');
          if (end.ms < this.minWatchMs) await this.sleep(this.minWatchMs - end.ms);
          break;
        case 'idle':
          this.counts.resumed++;
          log.debug({ path, resourceVersion: this.resourceVersion }, 'watch silent; resuming');
          break;
        case 'gone':
          log.info({ path, resourceVersion: this.resourceVersion }, 'resourceVersion too old (410 Gone); listing again');
          this.resourceVersion = undefined;
          this.counts.relists++;
          break;
        case 'failed':
          // A watch that ran a while before failing starts a new run of failures (and a new warning).
          if (end.connected && Date.now() - started >= this.minWatchMs) this.failures = 0;
          await this.failed('watch', end.error);
          break;
      }
    }
  }

  /** Lists the collection and reconciles the cache with it, reporting only differences. */
  private async relist(): Promise<void> {
    const list = await this.options.list();
    this.counts.lists++;
    const next = new Map<string, T>();
    for (const item of list.items) next.set(objectKey(item), item);
    const previous = this.store;
    this.store = next;
    for (const [key, object] of previous) if (!next.has(key)) this.emit('delete', object);
    for (const [key, object] of next) {
      const before = previous.get(key);
      if (!before) this.emit('add', object);
      else if (!sameVersion(before, object)) this.emit('update', object);
    }
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    this.failures = 0;
    this.recovered();
    this.markSynced();
  }

  private watchOnce(resourceVersion: string): Promise<WatchEnd> {
    const { path, query, transport } = this.options;
    const tuning = this.options.tuning ?? {};
    const timeoutSeconds = tuning.timeoutSeconds ?? Math.floor(300 * (1 + Math.random()));
    const started = Date.now();
    this.counts.watches++;
    return new Promise<WatchEnd>((resolve) => {
      let settled = false;
      let events = 0;
      let gone = false;
      let errorEvent: Error | undefined;
      let connected = false;
      let controller: { abort(): void } | undefined;
      const finish = (end: WatchEnd): void => {
        if (settled) return;
        settled = true;
        this.abortWatch = undefined;
        controller?.abort();
        resolve(end);
      };
      this.abortWatch = () => finish({ kind: 'ended', events, ms: 0 });
      const onEvent = (type: string, object: unknown): void => {
        if (settled) return;
        events++;
        if (type === 'ERROR') {
          // A Status: 410 when resourceVersion is older than the API server keeps; the server ends the watch after it.
          const status = object as { code?: number; reason?: string; message?: string };
          if (status.code === 410) gone = true;
          else
            errorEvent = Object.assign(new Error(`watch ERROR event: ${status.message ?? status.reason ?? 'no message'}`), {
              code: status.code,
            });
          controller?.abort();
          return;
        }
        this.failures = 0;
        this.apply(type, object as T);
      };
      const done = (error: unknown): void => {
        if (gone || statusCode(error) === 410 || (error as { statusCode?: number } | null)?.statusCode === 410) finish({ kind: 'gone' });
        else if (errorEvent) finish({ kind: 'failed', error: errorEvent, connected: true });
        else if (!error) finish({ kind: 'ended', events, ms: Date.now() - started });
        else if ((error as { name?: string }).name === 'TimeoutError' && connected) finish({ kind: 'idle' });
        else finish({ kind: 'failed', error, connected });
      };
      const watchQuery = { ...query, resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds) };
      transport.watch(path, watchQuery, onEvent, done).then(
        (c) => {
          controller = c;
          // Resolved before `done`: the API server answered 200 and the stream is open.
          if (settled) c.abort();
          else {
            connected = true;
            this.recovered();
          }
        },
        (error: unknown) => finish({ kind: 'failed', error, connected: false }),
      );
    });
  }

  private apply(type: string, object: T): void {
    const version = object.metadata?.resourceVersion;
    if (type === 'ADDED' || type === 'MODIFIED') {
      const key = objectKey(object);
      const before = this.store.get(key);
      this.store.set(key, object);
      if (!before) this.emit('add', object);
      else if (!sameVersion(before, object)) this.emit('update', object);
    } else if (type === 'DELETED') {
      if (this.store.delete(objectKey(object))) this.emit('delete', object);
    }
    // BOOKMARK: only its resourceVersion matters.
    if (version) this.resourceVersion = version;
  }

  private emit(type: StoreEvent<T>['type'], object: T): void {
    try {
      this.options.onEvent({ type, object });
    } catch (error) {
      this.options.log.error(
        { path: this.options.path, event: type, error: error instanceof Error ? error.message : String(error) },
        'watch event handler failed',
      );
    }
  }

  /** A real failure: backoff, and one warning per run of failures (the rest at debug). */
  private async failed(what: 'list' | 'watch', error: unknown): Promise<void> {
    if (this.stopped) return;
    const { initialMs, maxMs } = this.options.tuning?.backoff ?? { initialMs: 200, maxMs: 30_000 };
    this.failures++;
    this.counts.failures++;
    const delay = Math.min(initialMs * 2 ** (this.failures - 1), maxMs);
    const fields = { path: this.options.path, retryInMs: delay, failures: this.failures, error: describe(error) };
    if (!this.failing) this.options.log.warn(fields, `${what} failed; retrying with backoff`);
    else this.options.log.debug(fields, `${what} failed again`);
    this.failing = true;
    await this.sleep(delay);
  }

  /** A list or watch succeeded: the outage, if any, is over. */
  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.options.log.info({ path: this.options.path, failures: this.failures }, 'watch recovered');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      timer.unref();
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

function sameVersion(a: KubernetesObject, b: KubernetesObject): boolean {
  const version = a.metadata?.resourceVersion;
  return version !== undefined && version === b.metadata?.resourceVersion;
}

function describe(error: unknown): string {
  const code = statusCode(error) ?? (error as { statusCode?: number } | null)?.statusCode;
  let message = error instanceof Error ? error.message : String(error);
  // fetch says only "fetch failed"; the reason (ECONNREFUSED, a TLS error) is its cause.
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof Error) message += `: ${cause.message}`;
  return code ? `${code}: ${message}` : message;
}
