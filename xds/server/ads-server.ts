// The ADS gRPC service: thin glue from grpc-js streams to AdsStream.
import * as grpc from '@grpc/grpc-js';
import { trace } from '@opentelemetry/api';
import type { Logger } from '../../lib/logger.js';
import { proxyConvergence, xdsConfigSize, xdsConnected, xdsPushes, xdsRejects } from '../../lib/monitoring.js';
import { typeOf } from '../protos.js';
import { AdsStream, clip, ProtocolError, type DiscoveryRequest, type DiscoveryResponse } from './ads-stream.js';
import { DeltaStream, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse } from './delta-stream.js';
import { checkConnectionIdentity, IdentityMismatch, isProvenIdentity, type ProvenIdentity } from './connection-identity.js';
import type { ConfigSource, DiscoveryNode, ProxySyncStatus } from './discovery-types.js';
import { PushSpans } from './push-spans.js';

const shortType = (typeUrl: string) => typeUrl.split('.').pop() ?? typeUrl;

/**
 * A stream's NACK warnings, at most one per type every `intervalMs`: a proxy rejecting
 * every push (or a client NACKing as fast as it can) must not flood the log. Each line
 * says how many NACKs of the type it stands for; weft_xds_rejects counts every one.
 */
export class NackLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  nacked(node: string | undefined, typeUrl: string, error: string): void {
    const entry = this.last.get(typeUrl);
    const now = this.now();
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    this.last.set(typeUrl, { at: now, suppressed: 0 });
    const suppressed = entry?.suppressed ?? 0;
    this.log.warn(
      { node, type: shortType(typeUrl), error: clip(error), ...(suppressed > 0 ? { nacksSinceLastLine: suppressed + 1 } : {}) },
      'proxy rejected config (NACK)',
    );
  }
}

/**
 * At most `limit` tasks in flight, the rest started in arrival order as earlier ones finish.
 * Each ADS stream on 15012 costs a TokenReview; 1,000 proxies reconnecting at once would
 * otherwise open 1,000 requests to the API server at the same moment (in the chaos run on two
 * cores, connections timed out and every one of them failed "fetch failed"). istiod likewise
 * queues them, behind its API client's rate limit (`--kubernetesApiQPS` 80, burst 160).
 */
export class TaskQueue {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(readonly limit: number) {}

  /** Runs `task` once a slot is free; settles as it does. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      // The slot passes to the next waiter, or frees.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** Tasks waiting for a slot (for tests). */
  get queued(): number {
    return this.waiting.length;
  }
}

/** Token reviews in flight per ADS server (see TaskQueue): about what an API server answers at once without queueing. */
export const maxConcurrentTokenReviews = 32;

export class AdsServer {
  private readonly streams = new Set<AdsStream>();
  private readonly reviews = new TaskQueue(maxConcurrentTokenReviews);
  private readonly deltaStreams = new Set<DeltaStream>();
  private nextId = 0;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly source: ConfigSource,
    private readonly log: Logger,
  ) {
    this.unsubscribe = source.onChange((change) => {
      // Called within the change's `xds.generate` span when tracing is on; pushes below parent to it.
      trace.getActiveSpan()?.setAttribute('xds.changed_types', change.typeUrls.map(shortType));
      for (const stream of [...this.streams, ...this.deltaStreams]) {
        const node = stream.discoveryNode;
        // Only the streams whose config the change may touch look at it at all.
        const types = node && change.affects ? change.typeUrls.filter((typeUrl) => change.affects?.(node, typeUrl)) : change.typeUrls;
        if (types.length > 0) stream.changed(types, change.names);
      }
    });
  }

  /**
   * `authenticate`, when given, must accept the stream's authorization metadata
   * before any request is read (15012: the proxy's ServiceAccount token); a refusal
   * ends the stream with UNAUTHENTICATED and the refusal's message. When it resolves
   * to an identity ({namespace, serviceAccount}), the first request's node must claim
   * no other (connection-identity.ts), or the stream ends with PERMISSION_DENIED
   * naming the claim, before anything is served. Without `authenticate` (15010) no
   * identity is checked, as istiod does on its plaintext port.
   */
  implementation(authenticate?: (authorization: string | undefined) => Promise<unknown>): grpc.UntypedServiceImplementation {
    // Requests wait (paused) until the caller is authenticated; a refusal ends the stream.
    const guarded =
      <Req, Res>(serve: (call: grpc.ServerDuplexStream<Req, Res>, identity: ProvenIdentity | undefined) => void) =>
      (call: grpc.ServerDuplexStream<Req, Res>) => {
        if (!authenticate) {
          serve(call, undefined);
          return;
        }
        call.pause();
        const authorization = call.metadata.get('authorization')[0]?.toString();
        this.reviews
          .run(() => (call.cancelled || call.destroyed ? Promise.resolve(undefined) : authenticate(authorization)))
          .then(
            (caller) => {
              // A caller that left while its token was checked has nothing left to serve:
              // its 'cancelled' has fired already and no listener would ever see it end.
              if (call.cancelled || call.destroyed) return;
              serve(call, isProvenIdentity(caller) ? { namespace: caller.namespace, serviceAccount: caller.serviceAccount } : undefined);
              call.resume();
            },
            (error: unknown) => {
              if (call.cancelled || call.destroyed) return;
              call.emit('error', {
                code: grpc.status.UNAUTHENTICATED,
                details: error instanceof Error ? error.message : 'unauthenticated',
              });
            },
          );
      };
    return {
      StreamAggregatedResources: guarded<DiscoveryRequest, DiscoveryResponse>((call, identity) => this.serve(call, identity)),
      DeltaAggregatedResources: guarded<DeltaDiscoveryRequest, DeltaDiscoveryResponse>((call, identity) => this.serveDelta(call, identity)),
    };
  }

  /** Streams waiting for a token review to start (see TaskQueue). */
  get tokenReviewsQueued(): number {
    return this.reviews.queued;
  }

  /** Every connected proxy's sync state, for /debug/syncz. */
  status(): ProxySyncStatus[] {
    return [...this.streams, ...this.deltaStreams].map((stream) => stream.status());
  }

  close(): void {
    this.unsubscribe();
  }

  /** The configuration a connected proxy has been sent, decoded (for /debug/config_dump?proxyID=). */
  configDump(proxyId: string): unknown {
    const stream = [...this.streams].find((s) => s.nodeId === proxyId || s.nodeId?.includes(proxyId));
    const node = stream?.discoveryNode;
    if (!stream || !node) return { error: `no connected proxy matches ${proxyId}; see /debug/syncz for the connected ones` };
    return {
      nodeId: node.id,
      configs: stream.subscriptions().map(({ typeUrl, names }) => {
        if (!this.source.serves(typeUrl)) return { typeUrl, resources: [] };
        const type = typeOf(typeUrl);
        const set = this.source.resources(node, typeUrl, names);
        return {
          typeUrl,
          version: set.version,
          resources: set.resources.map((r) =>
            type.toObject(type.decode(r.resource.value), { longs: String, enums: String, bytes: String }),
          ),
        };
      }),
    };
  }

  private serve(call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>, identity: ProvenIdentity | undefined): void {
    const spans = new PushSpans(() => stream);
    const nacks = new NackLog(this.log);
    const stream = new AdsStream(
      ++this.nextId,
      this.source,
      (response) => {
        if (!call.writable) return;
        // Once the transport has written it (the proxy's flow-control window had room), pushes that waited go.
        call.write(response, () => {
          if (call.writableLength === 0) stream.drained();
        });
      },
      {
        onPush: (typeUrl, bytes, resources) => {
          xdsPushes.inc({ type: shortType(typeUrl) });
          xdsConfigSize.observe({ type: shortType(typeUrl) }, bytes);
          spans.pushed(typeUrl, bytes, resources);
        },
        onAck: (typeUrl, version, sinceSentMs) => {
          proxyConvergence.observe(sinceSentMs / 1000);
          spans.acked(typeUrl, version);
        },
        onNack: (typeUrl, error) => {
          spans.nacked(typeUrl, error);
          xdsRejects.inc({ type: shortType(typeUrl) });
          nacks.nacked(stream.nodeId, typeUrl, error);
        },
        ...(identity ? { authorize: (node: DiscoveryNode) => checkConnectionIdentity(node, identity) } : {}),
      },
      // A response still unwritten (a proxy not reading): later pushes wait rather than queue.
      () => call.writableLength > 0,
    );
    this.attach(call, stream, this.streams, () => spans.closed());
  }

  private serveDelta(
    call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>,
    identity: ProvenIdentity | undefined,
  ): void {
    const spans = new PushSpans(() => stream);
    const nacks = new NackLog(this.log);
    const stream = new DeltaStream(
      ++this.nextId,
      this.source,
      (response) => {
        if (!call.writable) return;
        call.write(response, () => {
          if (call.writableLength === 0) stream.drained();
        });
        const bytes = response.resources.reduce((sum, r) => sum + r.resource.value.length, 0);
        xdsPushes.inc({ type: shortType(response.type_url) });
        xdsConfigSize.observe({ type: shortType(response.type_url) }, bytes);
        spans.pushed(response.type_url, bytes, response.resources.length);
      },
      (typeUrl, error) => {
        spans.nacked(typeUrl, error);
        xdsRejects.inc({ type: shortType(typeUrl) });
        nacks.nacked(stream.nodeId, typeUrl, error);
      },
      (typeUrl, version) => spans.acked(typeUrl, version),
      // As for state-of-the-world streams: a response still unwritten makes later pushes wait.
      () => call.writableLength > 0,
      identity ? (node) => checkConnectionIdentity(node, identity) : undefined,
    );
    this.attach(call, stream, this.deltaStreams, () => spans.closed());
  }

  /**
   * One lifecycle for both stream kinds: requests in, protocol errors end the stream.
   * A stream is registered (in /debug/syncz, proxy-status, pilot_xds and the source's
   * connected proxies) only once its first request named its node, and every exit
   * (cancel, end, error, close) unregisters it exactly once.
   */
  private attach<Req, Stream extends { handle(request: Req): void; nodeId: string | undefined; discoveryNode: DiscoveryNode | undefined }>(
    call: grpc.ServerDuplexStream<Req, unknown>,
    stream: Stream,
    streams: Set<Stream>,
    onClose: () => void,
  ): void {
    let closed = false;
    // The source learns which proxies are connected (per-proxy config lives as long as they do).
    let release: (() => void) | undefined;
    const finish = () => {
      if (closed) return;
      closed = true;
      if (streams.delete(stream)) xdsConnected.dec();
      onClose();
      release?.();
      release = undefined;
    };
    call.on('data', (request: Req) => {
      // Nothing registers after the end (grpc-js reads one message at a time today; this does not rely on it).
      if (closed) return;
      try {
        const hadNode = stream.discoveryNode !== undefined;
        stream.handle(request);
        if (!hadNode && stream.discoveryNode) {
          streams.add(stream);
          xdsConnected.inc();
          release = this.source.connected?.(stream.discoveryNode);
        }
      } catch (error) {
        finish();
        if (error instanceof IdentityMismatch) {
          // As istiod: "Unauthorized XDS", a warning (the proxy is refused; weftd is fine).
          this.log.warn({ error: error.message }, 'proxy refused: its node claims another identity than its token');
          call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: `authorization failed: ${error.message}` });
          return;
        }
        const protocol = error instanceof ProtocolError;
        if (!protocol)
          this.log.error({ node: stream.nodeId, error: error instanceof Error ? error.message : String(error) }, 'xDS request failed');
        call.emit('error', {
          code: protocol ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL,
          details: protocol ? (error as Error).message : 'internal error handling the request; see the control plane logs',
        });
      }
    });
    call.on('end', () => {
      finish();
      call.end();
    });
    call.on('error', finish);
    call.on('cancelled', finish);
    call.on('close', finish);
    if (call.cancelled || call.destroyed) finish();
  }
}
