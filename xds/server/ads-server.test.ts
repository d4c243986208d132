// The ADS server's stream lifecycle over real gRPC on loopback: which streams /debug/syncz,
// `weft proxy-status` and the pilot_xds gauge count, and that every way a stream ends
// (cancel, end, error, refused token, cancel while the token is being checked) removes it once.
import { connect } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { componentLogger } from '../../lib/logger.js';
import { xdsConnected, xdsPushes } from '../../lib/monitoring.js';
import type { Logger } from '../../lib/logger.js';
import { SnapshotCache } from '../cache/snapshot-cache.js';
import { aggregatedDiscoveryService, typeOf, typeUrls } from '../protos.js';
import { AdsServer, NackLog } from './ads-server.js';
import type { ConfigSource, DiscoveryNode } from './discovery-types.js';

type Method = 'StreamAggregatedResources' | 'DeltaAggregatedResources';
type ClientStream = grpc.ClientDuplexStream<object, { nonce: string; type_url: string }>;

const nodeId = (name: string) => `sidecar~10.0.0.1~${name}.shop~shop.svc.cluster.local`;
const cdsRequest = (name: string) => ({ node: { id: nodeId(name) }, type_url: typeUrls.cluster });

/** A token review the test finishes when it chooses (the TokenReview round trip to the API server). */
class SlowReviewer {
  readonly pending: Array<{
    authorization: string | undefined;
    signal: AbortSignal | undefined;
    approve: () => void;
    refuse: (reason: string) => void;
  }> = [];
  private waiter: (() => void) | undefined;
  readonly review = (authorization: string | undefined, signal?: AbortSignal): Promise<unknown> =>
    new Promise((resolve, reject) => {
      this.pending.push({ authorization, signal, approve: () => resolve(undefined), refuse: (reason) => reject(new Error(reason)) });
      this.waiter?.();
    });
  /** Resolves once `count` reviews are waiting. */
  async waiting(count: number): Promise<void> {
    while (this.pending.length < count) await new Promise<void>((resolve) => (this.waiter = resolve));
  }
}

/** The config source, counting the proxies it was told are connected (per-proxy state lives as long as they are). */
function countingSource(): ConfigSource & { live: Map<string, number>; releases: string[] } {
  const cache = new SnapshotCache();
  cache.update({ [typeUrls.cluster]: { a: { name: 'a', type: 'STATIC', connect_timeout: { seconds: 1 } } } });
  const live = new Map<string, number>();
  const releases: string[] = [];
  return {
    live,
    releases,
    serves: (typeUrl) => cache.serves(typeUrl),
    resources: (node, typeUrl, names) => cache.resources(node, typeUrl, names),
    onChange: (listener) => cache.onChange(listener),
    connected: (node: DiscoveryNode) => {
      live.set(node.id, (live.get(node.id) ?? 0) + 1);
      return () => {
        releases.push(node.id);
        const left = (live.get(node.id) ?? 0) - 1;
        if (left > 0) live.set(node.id, left);
        else live.delete(node.id);
      };
    },
  };
}

/** The version a response carries: `version_info` (state of the world) or `system_version_info` (delta). */
const decodeResponseVersion = (method: Method, bytes: Buffer) => {
  const type = method === 'StreamAggregatedResources' ? 'DiscoveryResponse' : 'DeltaDiscoveryResponse';
  const decoded = typeOf(`type.googleapis.com/envoy.service.discovery.v3.${type}`).decode(bytes) as unknown as {
    version_info?: string;
    system_version_info?: string;
  };
  return decoded.version_info ?? decoded.system_version_info ?? '';
};
const gauge = async () => (await xdsConnected.get()).values[0]?.value ?? 0;
/** Lets the promise callbacks queued so far (a settled token review, its continuation) run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

interface Harness {
  ads: AdsServer;
  source: ReturnType<typeof countingSource>;
  /** Server-side calls, in arrival order. */
  calls: Array<grpc.ServerDuplexStream<unknown, unknown>>;
  open(method: Method, authorization?: string): ClientStream;
  /** Resolves when the server has seen `count` calls. */
  arrived(count: number): Promise<void>;
}

let shutdown: Array<() => void> = [];
afterEach(() => {
  for (const stop of shutdown) stop();
  shutdown = [];
});

async function start(authenticate?: (authorization: string | undefined, signal: AbortSignal) => Promise<unknown>): Promise<Harness> {
  const source = countingSource();
  const ads = new AdsServer(source, componentLogger('test'));
  const calls: Harness['calls'] = [];
  let arrival: (() => void) | undefined;
  const implementation = ads.implementation(authenticate) as Record<Method, (call: grpc.ServerDuplexStream<unknown, unknown>) => void>;
  const observed = Object.fromEntries(
    Object.entries(implementation).map(([method, handler]) => [
      method,
      (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        calls.push(call);
        handler(call);
        arrival?.();
      },
    ]),
  );
  const server = new grpc.Server();
  server.addService(aggregatedDiscoveryService(), observed);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const Ads = grpc.makeGenericClientConstructor(aggregatedDiscoveryService(), 'ADS');
  const client = new Ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  shutdown.push(() => {
    client.close();
    server.forceShutdown();
    ads.close();
  });
  return {
    ads,
    source,
    calls,
    open: (method, authorization) => {
      const metadata = new grpc.Metadata();
      if (authorization) metadata.set('authorization', authorization);
      const stream = (client as unknown as Record<Method, (m: grpc.Metadata) => ClientStream>)[method](metadata);
      stream.on('error', () => undefined);
      return stream;
    },
    arrived: async (count) => {
      while (calls.length < count) await new Promise<void>((resolve) => (arrival = resolve));
    },
  };
}

const cancelledOnServer = (call: grpc.ServerDuplexStream<unknown, unknown>) =>
  call.cancelled ? Promise.resolve() : new Promise((resolve) => call.once('cancelled', resolve));
const firstResponse = (stream: ClientStream) => new Promise((resolve) => stream.once('data', resolve));
const finalStatus = (stream: ClientStream) => new Promise<grpc.StatusObject>((resolve) => stream.once('status', resolve));

describe('AdsServer stream lifecycle', () => {
  it('leaves no phantom proxy behind when streams are cancelled while their token is being checked', async () => {
    const reviewer = new SlowReviewer();
    const { ads, source, calls, open, arrived } = await start(reviewer.review);
    const before = await gauge();
    const methods: Method[] = [
      'StreamAggregatedResources',
      'DeltaAggregatedResources',
      'StreamAggregatedResources',
      'DeltaAggregatedResources',
      'StreamAggregatedResources',
    ];
    const streams = methods.map((method, i) => {
      const stream = open(method, `Bearer token-${i}`);
      stream.write(cdsRequest(`quick-${i}`));
      return stream;
    });
    await arrived(5);
    await reviewer.waiting(5);
    for (const stream of streams) stream.cancel();
    await Promise.all(calls.map(cancelledOnServer));

    // The reviews finish after the callers left: nothing of them may be registered.
    for (const review of reviewer.pending) review.approve();
    await settle();
    expect(ads.status()).toEqual([]);
    expect(await gauge()).toBe(before);
    expect(source.live.size).toBe(0);

    // The server still serves: a proxy arriving now is counted, once.
    const later = open('StreamAggregatedResources', 'Bearer later');
    later.write(cdsRequest('later'));
    await reviewer.waiting(6);
    reviewer.pending[5]?.approve();
    await firstResponse(later);
    expect(ads.status().map((p) => p.nodeId)).toEqual([nodeId('later')]);
    expect(await gauge()).toBe(before + 1);
    later.cancel();
  });

  it.each<Method>(['StreamAggregatedResources', 'DeltaAggregatedResources'])(
    '%s: registers a proxy once it is authenticated and named its node, and removes it exactly once when it cancels',
    async (method) => {
      const { ads, source, calls, open, arrived } = await start(async () => undefined);
      const before = await gauge();
      const stream = open(method, 'Bearer good');
      await arrived(1);
      await settle();
      // Authenticated, but no request yet: not a proxy anyone can see.
      expect(ads.status()).toEqual([]);
      expect(await gauge()).toBe(before);

      stream.write(cdsRequest('app'));
      await firstResponse(stream);
      expect(ads.status()).toEqual([
        expect.objectContaining({ nodeId: nodeId('app'), pod: { name: 'app', namespace: 'shop', ip: '10.0.0.1' } }),
      ]);
      expect(await gauge()).toBe(before + 1);
      expect(source.live.get(nodeId('app'))).toBe(1);

      stream.cancel();
      await cancelledOnServer(calls[0] as grpc.ServerDuplexStream<unknown, unknown>);
      await settle();
      expect(ads.status()).toEqual([]);
      expect(await gauge()).toBe(before);
      expect(source.releases).toEqual([nodeId('app')]);
    },
  );

  it('removes a proxy whose stream ends, or errors on a bad request, exactly once', async () => {
    const { ads, source, open } = await start();
    const before = await gauge();
    const ending = open('StreamAggregatedResources');
    const failing = open('DeltaAggregatedResources');
    ending.write(cdsRequest('ending'));
    failing.write(cdsRequest('failing'));
    await Promise.all([firstResponse(ending), firstResponse(failing)]);
    expect(await gauge()).toBe(before + 2);

    const ended = finalStatus(ending);
    ending.end();
    expect((await ended).code).toBe(grpc.status.OK);
    const failed = finalStatus(failing);
    failing.write({ type_url: '' });
    expect(await failed).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('type_url') });
    await settle();
    expect(ads.status()).toEqual([]);
    expect(await gauge()).toBe(before);
    expect(source.releases.sort()).toEqual([nodeId('ending'), nodeId('failing')]);
  });

  it.each<[Method, object]>([
    ['StreamAggregatedResources', { type_url: typeUrls.cluster }],
    ['StreamAggregatedResources', { node: { id: '' }, type_url: typeUrls.cluster }],
    ['DeltaAggregatedResources', { type_url: typeUrls.cluster }],
    ['DeltaAggregatedResources', { node: { id: '' }, type_url: typeUrls.cluster }],
  ])('%s: refuses a first request %j naming node.id, and never registers it', async (method, request) => {
    const { ads, source, open } = await start();
    const before = await gauge();
    const stream = open(method);
    const status = finalStatus(stream);
    stream.write(request);
    expect(await status).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('node.id') });
    await settle();
    expect(ads.status()).toEqual([]);
    expect(await gauge()).toBe(before);
    expect(source.live.size).toBe(0);
  });

  it.each<Method>(['StreamAggregatedResources', 'DeltaAggregatedResources'])(
    '%s: refuses a proxy whose node claims another namespace than its token, naming it, and serves one that claims its own',
    async (method) => {
      // The token proves shop/cart (as the CA's TokenAuthenticator reports it).
      const { ads, source, open } = await start(async () => ({ namespace: 'shop', serviceAccount: 'cart' }));
      const before = await gauge();
      const intruder = open(method, 'Bearer shop-token');
      const refused = finalStatus(intruder);
      let served = false;
      intruder.on('data', () => (served = true));
      // Struct values travel as protobufjs' built-in google.protobuf types spell them (camelCase).
      intruder.write({
        node: { id: 'sidecar~10.0.0.9~vault-0.bank~bank.svc.cluster.local', metadata: { fields: { NAMESPACE: { stringValue: 'bank' } } } },
        type_url: typeUrls.cluster,
      });
      expect(await refused).toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
        details: expect.stringMatching(/^authorization failed: node\.metadata\.NAMESPACE: .*"bank".*shop\/cart/),
      });
      await settle();
      expect(served).toBe(false);
      expect(ads.status()).toEqual([]);
      expect(await gauge()).toBe(before);
      expect(source.live.size).toBe(0);

      const own = open(method, 'Bearer shop-token');
      own.write({ ...cdsRequest('cart'), node: { id: nodeId('cart'), metadata: { fields: { NAMESPACE: { stringValue: 'shop' } } } } });
      await firstResponse(own);
      expect(ads.status().map((p) => p.nodeId)).toEqual([nodeId('cart')]);
      own.cancel();
    },
  );

  // Found by `make chaos` at 2,000 proxies: malformed first requests waited behind the fleet's token reviews, past the client's wait.
  it.each<[Method, string, object, RegExp]>([
    [
      'StreamAggregatedResources',
      'no node',
      { type_url: typeUrls.cluster },
      /^node\.id: the first DiscoveryRequest on a stream must carry node\.id/,
    ],
    ['StreamAggregatedResources', 'no type_url', { node: { id: nodeId('app') } }, /^type_url: missing/],
    [
      'DeltaAggregatedResources',
      'node.id empty',
      { node: { id: '' }, type_url: typeUrls.cluster },
      /^node\.id: the first DeltaDiscoveryRequest/,
    ],
    [
      'DeltaAggregatedResources',
      'node.id too long',
      { node: { id: 'x'.repeat(3000) }, type_url: typeUrls.cluster },
      /^node\.id: 3000 characters/,
    ],
  ])(
    '%s: refuses a malformed first request (%s) at once, while its token is still being checked',
    async (method, _label, request, field) => {
      const reviewer = new SlowReviewer();
      const { ads, source, open } = await start(reviewer.review);
      const stream = open(method, 'Bearer slow');
      const status = finalStatus(stream);
      stream.write(request);
      await reviewer.waiting(1);
      // The review has not answered, and never will here.
      expect(await status).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(field) });
      // The review is no longer wanted: one still waiting for its turn is not made.
      expect(reviewer.pending[0]?.signal?.aborted).toBe(true);
      expect(ads.status()).toEqual([]);
      expect(source.live.size).toBe(0);
    },
  );

  it.each<Method>(['StreamAggregatedResources', 'DeltaAggregatedResources'])(
    '%s: serves nothing before the token is accepted, then handles every request sent meanwhile, in order',
    async (method) => {
      const reviewer = new SlowReviewer();
      const { ads, open } = await start(reviewer.review);
      const stream = open(method, 'Bearer slow');
      const types: string[] = [];
      stream.on('data', (response: { type_url: string }) => types.push(response.type_url));
      stream.write(cdsRequest('early'));
      stream.write({ type_url: typeUrls.listener });
      await reviewer.waiting(1);
      await settle();
      expect(types).toEqual([]);
      expect(ads.status()).toEqual([]);
      reviewer.pending[0]?.approve();
      while (types.length < 2) await settle();
      expect(types).toEqual([typeUrls.cluster, typeUrls.listener]);
      expect(ads.status().map((p) => p.nodeId)).toEqual([nodeId('early')]);
      stream.cancel();
    },
  );

  it('refuses a caller whose token fails review, with the reason, and never registers it', async () => {
    const reviewer = new SlowReviewer();
    const { ads, source, open } = await start(reviewer.review);
    const before = await gauge();
    const stream = open('StreamAggregatedResources', 'Bearer forged');
    const status = finalStatus(stream);
    stream.write(cdsRequest('forged'));
    await reviewer.waiting(1);
    expect(reviewer.pending[0]?.authorization).toBe('Bearer forged');
    reviewer.pending[0]?.refuse('token signature invalid');
    expect(await status).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: 'token signature invalid' });
    await settle();
    expect(ads.status()).toEqual([]);
    expect(await gauge()).toBe(before);
    expect(source.live.size).toBe(0);
  });

  it.each<Method>(['StreamAggregatedResources', 'DeltaAggregatedResources'])(
    '%s: holds pushes for a proxy that stops reading, and sends it the latest config once it reads again',
    async (method) => {
      const cache = new SnapshotCache();
      // About 400 KB of clusters per push: one fills the HTTP/2 windows of a proxy that does not read.
      const clusters = (seconds: number) =>
        Object.fromEntries(
          Array.from({ length: 200 }, (_, i) => [
            `c${i}`,
            { name: `c${i}`, type: 'STATIC', connect_timeout: { seconds }, alt_stat_name: 'x'.repeat(2_000) },
          ]),
        );
      cache.update({ [typeUrls.cluster]: clusters(1) });
      const ads = new AdsServer(cache, componentLogger('test'));
      const server = new grpc.Server();
      server.addService(aggregatedDiscoveryService(), ads.implementation());
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
      );
      // A raw HTTP/2 client, as a proxy that stops reading is on the wire: it never lets flow control move on.
      const session = connect(`http://127.0.0.1:${port}`);
      shutdown.push(() => {
        session.destroy();
        server.forceShutdown();
        ads.close();
      });
      const stream = session.request({
        ':method': 'POST',
        ':path': `/envoy.service.discovery.v3.AggregatedDiscoveryService/${method}`,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      stream.on('error', () => undefined);
      const request = aggregatedDiscoveryService()[method]?.requestSerialize(cdsRequest('stalled')) as Buffer;
      const frame = Buffer.alloc(5);
      frame.writeUInt32BE(request.length, 1);
      stream.write(Buffer.concat([frame, request]));
      stream.pause();
      const pushes = async () => (await xdsPushes.get()).values.find((v) => v.labels['type'] === 'Cluster')?.value ?? 0;
      const before = await pushes();
      // 150 new versions while the proxy reads nothing: the first fills its windows, then nothing more is sent.
      for (let i = 2; i <= 151; i++) {
        cache.update({ [typeUrls.cluster]: clusters(i) });
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      expect((await pushes()) - before).toBeLessThanOrEqual(2);
      // Reading again, the proxy gets the latest version, having skipped the ones in between.
      const latest = cache.resources({ id: 'x' }, typeUrls.cluster, []).version;
      let received = Buffer.alloc(0);
      stream.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
      stream.resume();
      const responses = () => {
        const versions: string[] = [];
        for (let at = 0; at + 5 <= received.length;) {
          const length = received.readUInt32BE(at + 1);
          if (at + 5 + length > received.length) break;
          versions.push(decodeResponseVersion(method, received.subarray(at + 5, at + 5 + length)));
          at += 5 + length;
        }
        return versions;
      };
      while (responses().at(-1) !== latest) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(responses().length).toBeLessThanOrEqual(4);
      stream.close();
    },
  );
});

describe('AdsServer sync reporting', () => {
  it.each<Method>(['StreamAggregatedResources', 'DeltaAggregatedResources'])(
    '%s: tells the observer when a proxy enters and leaves sync, and of its NACKs, until it leaves',
    async (method) => {
      const cache = new SnapshotCache();
      const clusters = (seconds: number) => ({ a: { name: 'a', type: 'STATIC', connect_timeout: { seconds } } });
      cache.update({ [typeUrls.cluster]: clusters(1) });
      const ads = new AdsServer(cache, componentLogger('test'));
      const events: string[] = [];
      let heard: (() => void) | undefined;
      const note = (event: string) => {
        events.push(event);
        heard?.();
      };
      ads.observeSync({
        connected: (id, node) => note(`connected ${node.id.split('~')[2]}`),
        synced: (id, inSync) => note(inSync ? 'in sync' : 'out of sync'),
        nacked: (id, typeUrl, error) => note(`nack ${typeUrl.split('.').pop()}: ${error}`),
        disconnected: () => note('disconnected'),
      });
      const heardAll = async (count: number) => {
        while (events.length < count) await new Promise<void>((resolve) => (heard = resolve));
      };
      const server = new grpc.Server();
      server.addService(aggregatedDiscoveryService(), ads.implementation());
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
      );
      const Ads = grpc.makeGenericClientConstructor(aggregatedDiscoveryService(), 'ADS');
      const client = new Ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      shutdown.push(() => {
        client.close();
        server.forceShutdown();
        ads.close();
      });
      const stream = (client as unknown as Record<Method, () => ClientStream>)[method]();
      stream.on('error', () => undefined);
      const responses: Array<{ nonce: string; type_url: string }> = [];
      let responded: (() => void) | undefined;
      stream.on('data', (response: { nonce: string; type_url: string }) => {
        responses.push(response);
        responded?.();
      });
      const response = async (count: number) => {
        while (responses.length < count) await new Promise<void>((resolve) => (responded = resolve));
        return responses[count - 1] as { nonce: string };
      };
      const answer = (nonce: string, error?: string) =>
        stream.write({
          type_url: typeUrls.cluster,
          response_nonce: nonce,
          ...(error ? { error_detail: { code: 3, message: error } } : {}),
        });

      stream.write(cdsRequest('cart-1'));
      answer((await response(1)).nonce);
      await heardAll(2);
      expect(events).toEqual(['connected cart-1.shop', 'in sync']);
      // A push leaves sync; its NACK keeps the proxy out of it; the ACK of the next push brings it back.
      cache.update({ [typeUrls.cluster]: clusters(2) });
      answer((await response(2)).nonce, 'bad cluster');
      await heardAll(4);
      cache.update({ [typeUrls.cluster]: clusters(3) });
      answer((await response(3)).nonce);
      await heardAll(5);
      stream.end();
      await heardAll(6);
      expect(events).toEqual(['connected cart-1.shop', 'in sync', 'out of sync', 'nack Cluster: bad cluster', 'in sync', 'disconnected']);
    },
  );
});

describe('NackLog', () => {
  it("logs a stream's NACKs of a type at most once per interval, saying how many each line stands for", () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = { warn: (fields: Record<string, unknown>) => lines.push(fields) } as unknown as Logger;
    let now = 0;
    const nacks = new NackLog(log, 10_000, () => now);
    for (let i = 0; i < 1_000; i++) nacks.nacked('p', typeUrls.cluster, 'e'.repeat(5_000));
    nacks.nacked('p', typeUrls.listener, 'bad listener');
    expect(lines).toHaveLength(2);
    expect(String(lines[0]?.['error'])).toHaveLength(1_024 + '... (3976 more characters)'.length);
    now = 10_000;
    nacks.nacked('p', typeUrls.cluster, 'again');
    expect(lines[2]).toMatchObject({ type: 'Cluster', error: 'again', nacksSinceLastLine: 1_000 });
  });
});
