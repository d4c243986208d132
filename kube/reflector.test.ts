// The Reflector against a fake API server at the transport boundary: a history of
// events by resourceVersion, watches served from any resourceVersion still kept,
// 410 for older ones, watches ended at will (the API server's timeoutSeconds).
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { LogLevels } from '../lib/logger.js';
import { KubeConfig } from '@kubernetes/client-node';
import { clientWatchTransport, Reflector, type StoreEvent, type WatchTransport } from './reflector.js';

interface Obj extends KubernetesObject {
  data?: string;
}

interface OpenWatch {
  onEvent: (type: string, object: unknown) => void;
  done: (error: unknown) => void;
  ended: boolean;
}

class FakeApiServer implements WatchTransport {
  private rv = 0;
  private readonly objects = new Map<string, Obj>();
  private readonly history: Array<{ rv: number; type: string; object: Obj }> = [];
  /** Events at or below this resourceVersion are forgotten (etcd compaction, or a restarted API server's watch cache). */
  private compactedThrough = 0;
  private readonly open = new Set<OpenWatch>();
  readonly watchQueries: Array<Record<string, string>> = [];
  lists = 0;
  /** Errors the next watch requests fail with, in order. */
  readonly failures: unknown[] = [];

  put(name: string, data: string): void {
    const object: Obj = { metadata: { name, namespace: 'ns', resourceVersion: String(++this.rv) }, data };
    const type = this.objects.has(name) ? 'MODIFIED' : 'ADDED';
    this.objects.set(name, object);
    this.record(type, object);
  }

  remove(name: string): void {
    const object = this.objects.get(name) as Obj;
    this.objects.delete(name);
    this.record('DELETED', { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.rv) } });
  }

  /** The resourceVersion moves to `rv` through changes to objects no watch here selects. */
  advance(rv: number): void {
    this.rv = rv;
  }

  compact(): void {
    this.compactedThrough = this.rv;
  }

  /** Ends every open watch normally, as the API server does at timeoutSeconds. */
  endWatches(): void {
    for (const w of this.open) this.end(w, null);
  }

  bookmark(): void {
    for (const w of this.open) w.onEvent('BOOKMARK', { metadata: { resourceVersion: String(this.rv) } });
  }

  get openWatches(): number {
    return this.open.size;
  }

  readonly list = async (): Promise<KubernetesListObject<Obj>> => {
    this.lists++;
    return { metadata: { resourceVersion: String(this.rv) }, items: [...this.objects.values()] };
  };

  async watch(
    _path: string,
    query: Record<string, string>,
    onEvent: (type: string, object: unknown) => void,
    done: (error: unknown) => void,
  ): Promise<{ abort(): void }> {
    this.watchQueries.push(query);
    const w: OpenWatch = { onEvent, done, ended: false };
    const controller = { abort: () => this.end(w, null) };
    const failure = this.failures.shift();
    if (failure) {
      done(failure);
      return controller;
    }
    const from = Number(query['resourceVersion']);
    if (from < this.compactedThrough) {
      queueMicrotask(() => {
        onEvent('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: `too old resource version: ${from}` });
        this.end(w, null);
      });
      return controller;
    }
    this.open.add(w);
    queueMicrotask(() => {
      for (const event of this.history) if (event.rv > from && !w.ended) onEvent(event.type, event.object);
    });
    return controller;
  }

  private record(type: string, object: Obj): void {
    this.history.push({ rv: this.rv, type, object });
    for (const w of this.open) w.onEvent(type, object);
  }

  private end(w: OpenWatch, error: unknown): void {
    if (w.ended) return;
    w.ended = true;
    this.open.delete(w);
    w.done(error);
  }
}

async function until(what: string, condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

function setup(server: FakeApiServer) {
  const lines: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
  const levels = new LogLevels('debug', { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
  const events: string[] = [];
  const reflector = new Reflector<Obj>({
    path: '/api/v1/configmaps',
    query: { fieldSelector: 'metadata.namespace=ns' },
    list: server.list,
    transport: server,
    onEvent: (e: StoreEvent<Obj>) => void events.push(`${e.type} ${e.object.metadata?.name} ${e.object.data}`),
    log: levels.root.child({ component: 'test' }),
    tuning: { timeoutSeconds: 7, minWatchMs: 0, backoff: { initialMs: 1, maxMs: 4 } },
  });
  const warnings = () => lines.filter((l) => l.level >= 40).map((l) => l.msg);
  return { reflector, events, lines, warnings };
}

describe('Reflector', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  it('lists, then watches from the list resourceVersion with bookmarks and the timeout asked for', async () => {
    const server = new FakeApiServer();
    server.put('a', '1');
    server.put('b', '1');
    const { reflector, events } = setup(server);
    stop = () => reflector.stop();
    await reflector.start();
    expect(events).toEqual(['add a 1', 'add b 1']);
    await until('a watch', () => server.openWatches === 1);
    expect(server.watchQueries[0]).toEqual({
      fieldSelector: 'metadata.namespace=ns',
      resourceVersion: '2',
      allowWatchBookmarks: 'true',
      timeoutSeconds: '7',
    });
    server.put('a', '2');
    await until('the update', () => events.length === 3);
    expect(events[2]).toBe('update a 2');
    expect(reflector.list().map((o) => o.data)).toEqual(['2', '1']);
  });

  it('resumes a watch that ended from the last resourceVersion: a deletion between two watches arrives, without relisting or warning', async () => {
    const server = new FakeApiServer();
    server.put('a', '1');
    server.put('b', '1');
    const { reflector, events, warnings } = setup(server);
    stop = () => reflector.stop();
    await reflector.start();
    await until('a watch', () => server.openWatches === 1);
    server.put('c', '1'); // rv 3, seen on the watch
    await until('c', () => events.length === 3);
    // The server ends the watch; before the next one opens, b is deleted and a changed.
    server.endWatches();
    server.remove('b');
    server.put('a', '2');
    await until('the deletion', () => events.length === 5);
    expect(events.slice(3)).toEqual(['delete b 1', 'update a 2']);
    expect(server.watchQueries.map((q) => q['resourceVersion'])).toEqual(['2', '3']);
    expect(server.lists).toBe(1);
    expect(reflector.counts.resumed).toBe(1);
    expect(warnings()).toEqual([]);
  });

  it('resumes from a BOOKMARK, so a quiet watch never falls behind the compaction', async () => {
    const server = new FakeApiServer();
    server.put('a', '1');
    const { reflector, events } = setup(server);
    stop = () => reflector.stop();
    await reflector.start();
    await until('a watch', () => server.openWatches === 1);
    // Objects this watch does not select move the resourceVersion on; the bookmark says so.
    server.advance(40);
    server.bookmark();
    server.compact();
    server.endWatches();
    await until('the next watch', () => server.watchQueries.length === 2 && server.openWatches === 1);
    expect(server.watchQueries[1]?.['resourceVersion']).toBe('40');
    expect(server.lists).toBe(1);
    expect(events).toEqual(['add a 1']);
  });

  it('relists only on 410 Gone, reporting exactly what changed meanwhile', async () => {
    const server = new FakeApiServer();
    for (const name of ['keep', 'edit', 'gone']) server.put(name, '1');
    const { reflector, events, warnings, lines } = setup(server);
    stop = () => reflector.stop();
    await reflector.start();
    await until('a watch', () => server.openWatches === 1);
    server.endWatches();
    // While no watch is open the history is compacted past where we were: the next watch gets 410.
    const next = server.watchQueries.length;
    server.remove('gone');
    server.put('edit', '2');
    server.put('new', '1');
    server.compact();
    await until('the relist', () => server.lists === 2 && server.openWatches === 1);
    expect(server.watchQueries.length).toBeGreaterThan(next);
    expect(events.slice(3).sort()).toEqual(['add new 1', 'delete gone 1', 'update edit 2']);
    expect(reflector.list().map((o) => `${o.metadata?.name} ${o.data}`)).toEqual(['keep 1', 'edit 2', 'new 1']);
    expect(server.watchQueries.at(-1)?.['resourceVersion']).toBe('6');
    expect(reflector.counts.relists).toBe(1);
    expect(warnings()).toEqual([]);
    expect(lines.some((l) => l.msg.includes('410 Gone'))).toBe(true);
  });

  it('relists when the watch request itself answers 410', async () => {
    const server = new FakeApiServer();
    server.put('a', '1');
    const { reflector, events } = setup(server);
    stop = () => reflector.stop();
    await reflector.start();
    await until('a watch', () => server.openWatches === 1);
    server.failures.push(Object.assign(new Error('Gone'), { statusCode: 410 }));
    server.remove('a');
    server.compact();
    server.endWatches();
    await until('the relist', () => server.lists === 2);
    await until('the deletion', () => events.length === 2);
    expect(events).toEqual(['add a 1', 'delete a 1']);
  });

  it('backs off on failures with one warning per run of them, and resumes from where it was without relisting', async () => {
    const server = new FakeApiServer();
    server.put('a', '1');
    const { reflector, events, warnings, lines } = setup(server);
    stop = () => reflector.stop();
    await reflector.start();
    await until('a watch', () => server.openWatches === 1);
    // As undici's fetch fails: the reason is the cause.
    const refused = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }),
    });
    server.failures.push(refused, refused, refused);
    server.endWatches();
    server.remove('a');
    await until('the deletion after the outage', () => events.length === 2);
    expect(events[1]).toBe('delete a 1');
    expect(server.lists).toBe(1);
    expect(server.watchQueries.slice(1).map((q) => q['resourceVersion'])).toEqual(['1', '1', '1', '1']);
    expect(warnings()).toEqual(['watch failed; retrying with backoff']);
    expect(lines.find((l) => l.level >= 40)).toMatchObject({
      path: '/api/v1/configmaps',
      error: 'fetch failed: connect ECONNREFUSED 127.0.0.1:6443',
    });
    expect(lines.some((l) => l.msg === 'watch recovered')).toBe(true);
  });

  it('treats an ERROR event other than 410 as a failure, and keeps going after a handler throws', async () => {
    const server = new FakeApiServer();
    const lines: Array<{ level: number; msg: string }> = [];
    const levels = new LogLevels('info', { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
    const seen: string[] = [];
    const reflector = new Reflector<Obj>({
      path: '/p',
      list: server.list,
      transport: server,
      onEvent: (e) => {
        seen.push(`${e.type} ${e.object.metadata?.name}`);
        if (e.object.metadata?.name === 'bad') throw new Error('consumer bug');
      },
      log: levels.root,
      tuning: { minWatchMs: 0, backoff: { initialMs: 1, maxMs: 1 } },
    });
    stop = () => reflector.stop();
    await reflector.start();
    await until('a watch', () => server.openWatches === 1);
    server.put('bad', '1');
    server.put('good', '1');
    await until('both', () => seen.length === 2);
    expect(lines.map((l) => l.msg)).toContain('watch event handler failed');
    const [open] = (server as unknown as { open: Set<OpenWatch> }).open;
    open?.onEvent('ERROR', { kind: 'Status', code: 500, message: 'etcd leader changed' });
    await until('the watch to be opened again', () => server.watchQueries.length === 2 && server.openWatches === 1);
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(['watch failed; retrying with backoff']);
    expect(server.lists).toBe(1);
  });

  it('starts after a failed first list, and reports what a later list finds', async () => {
    const server = new FakeApiServer();
    server.put('a', '1');
    let refusals = 2;
    const events: string[] = [];
    const reflector = new Reflector<Obj>({
      path: '/apis/networking.istio.io/v1/virtualservices',
      list: () => (refusals-- > 0 ? Promise.reject(Object.assign(new Error('404 page not found'), { statusCode: 404 })) : server.list()),
      transport: server,
      onEvent: (e) => void events.push(`${e.type} ${e.object.metadata?.name}`),
      log: new LogLevels('fatal', { write: () => undefined }).root,
      tuning: { backoff: { initialMs: 1, maxMs: 2 } },
    });
    stop = () => reflector.stop();
    await reflector.start();
    expect(reflector.list()).toEqual([]);
    await until('the list to succeed', () => events.length === 1);
    expect(events).toEqual(['add a']);
  });

  it('stops: no watch left open', async () => {
    const server = new FakeApiServer();

    const { reflector } = setup(server);
    await reflector.start();
    await until('a watch', () => server.openWatches === 1);
    await reflector.stop();
    expect(server.openWatches).toBe(0);
  });

  it("sets the client Watch's idle timeout past the bookmark period (its default of 30 s ended every quiet watch)", () => {
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443' }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    expect((clientWatchTransport(config) as unknown as { requestTimeoutMs: number }).requestTimeoutMs).toBe(90_000);
    expect((clientWatchTransport(config, { idleTimeoutMs: 5_000 }) as unknown as { requestTimeoutMs: number }).requestTimeoutMs).toBe(
      5_000,
    );
  });
});
