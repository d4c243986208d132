// The ADS gRPC service: thin glue from grpc-js streams to AdsStream.
import * as grpc from '@grpc/grpc-js';
import { trace } from '@opentelemetry/api';
import type { Logger } from '../../lib/logger.js';
import { proxyConvergence, xdsConfigSize, xdsConnected, xdsPushes, xdsRejects } from '../../lib/monitoring.js';
import { typeOf } from '../protos.js';
import { AdsStream, clip, ProtocolError, type DiscoveryRequest, type DiscoveryResponse } from './ads-stream.js';
import { DeltaStream, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse } from './delta-stream.js';
import { authorizeNode, IdentityMismatch, isProvenIdentity, type ProvenIdentity } from './connection-identity.js';
import type { ConfigSource, DiscoveryNode, ProxySyncStatus, SyncObserver } from './discovery-types.js';
import { PushSpans } from './push-spans.js';
import { firstRequestProblem } from './request-wire-check.js';

const shortType = (typeUrl: string) => typeUrl.split('.').pop() ?? typeUrl;

/** What a stream's caller sent while its token was checked: requests (the first one checked already), and whether it half-closed. */
interface EarlyRequests<Req> {
  requests: Req[];
  ended: boolean;
}

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

/** An SDS Secret's private key, as config dumps show it: "[redacted]", as istiod's /debug/config_dump (debug.go). */
function redactPrivateKey(resource: Record<string, unknown>): Record<string, unknown> {
  const certificate = resource['tls_certificate'] as Record<string, unknown> | undefined;
  if (certificate?.['private_key'] === undefined) return resource;
  return {
    ...resource,
    tls_certificate: { ...certificate, private_key: { inline_bytes: Buffer.from('[redacted]').toString('base64') } },
  };
}

export class AdsServer {
  private readonly streams = new Set<AdsStream>();
  private readonly deltaStreams = new Set<DeltaStream>();
  private nextId = 0;
  private readonly unsubscribe: () => void;
  private syncObserver: SyncObserver | undefined;
  /** Each registered stream's sync state as last told to the observer. */
  private readonly lastSync = new WeakMap<object, boolean>();

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
        if (types.length > 0) {
          stream.changed(types, change.names);
          this.reportSync(stream);
        }
      }
    });
  }

  /** Tells `observer` of each stream's sync transitions and NACKs from now on (one observer; weftd's propagation status). */
  observeSync(observer: SyncObserver): void {
    this.syncObserver = observer;
  }

  /** Tells the observer when a registered stream entered or left sync (O(its types); nothing when unchanged). */
  private reportSync(stream: { id: number; inSync(): boolean }): void {
    const observer = this.syncObserver;
    const was = this.lastSync.get(stream);
    if (!observer || was === undefined) return;
    const now = stream.inSync();
    if (now === was) return;
    this.lastSync.set(stream, now);
    observer.synced(stream.id, now);
  }

  /**
   * `authenticate`, when given, must accept the stream's authorization metadata
   * before any request is handled (15012: the proxy's ServiceAccount token); a refusal
   * ends the stream with UNAUTHENTICATED and the refusal's message. Meanwhile the first
   * request is read and checked: a malformed one ends the stream at once with
   * INVALID_ARGUMENT naming the field (`firstRequestProblem`), without waiting for the
   * review; a good one waits for it, and later requests are not read until then. The
   * `signal` given to `authenticate` aborts when the caller leaves or is refused (its review
   * need not be made). When it resolves to an identity ({namespace, serviceAccount}), the
   * first request's node must claim no other (connection-identity.ts), or the stream ends
   * with PERMISSION_DENIED naming the claim, before anything is served. Without
   * `authenticate` (15010) no identity is checked, as istiod does on its plaintext port.
   */
  implementation(
    authenticate?: (authorization: string | undefined, signal: AbortSignal) => Promise<unknown>,
  ): grpc.UntypedServiceImplementation {
    const guarded =
      <Req extends DiscoveryRequest | DeltaDiscoveryRequest, Res>(
        delta: boolean,
        serve: (call: grpc.ServerDuplexStream<Req, Res>, identity: ProvenIdentity | undefined, early?: EarlyRequests<Req>) => void,
      ) =>
      (call: grpc.ServerDuplexStream<Req, Res>) => {
        if (!authenticate) {
          serve(call, undefined);
          return;
        }
        const early: EarlyRequests<Req> = { requests: [], ended: false };
        const left = new AbortController();
        const onData = (request: Req) => {
          if (left.signal.aborted) return;
          const problem = early.requests.length === 0 ? firstRequestProblem(request, delta) : undefined;
          if (problem) {
            left.abort();
            call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: problem });
            return;
          }
          // Held until the token is checked; no more are read meanwhile.
          early.requests.push(request);
          call.pause();
        };
        const onEnd = () => (early.ended = true);
        const onLeave = () => left.abort();
        call.on('data', onData);
        call.on('end', onEnd);
        call.on('cancelled', onLeave);
        const settled = () => {
          call.off('data', onData);
          call.off('end', onEnd);
          call.off('cancelled', onLeave);
          // A caller that left (or was refused) while its token was checked has nothing left to serve:
          // its 'cancelled' has fired already and no listener would ever see it end.
          return !(left.signal.aborted || call.cancelled || call.destroyed);
        };
        const authorization = call.metadata.get('authorization')[0]?.toString();
        authenticate(authorization, left.signal).then(
          (caller) => {
            if (!settled()) return;
            serve(
              call,
              isProvenIdentity(caller) ? { namespace: caller.namespace, serviceAccount: caller.serviceAccount } : undefined,
              early,
            );
            call.resume();
          },
          (error: unknown) => {
            if (!settled()) return;
            left.abort();
            call.emit('error', {
              code: grpc.status.UNAUTHENTICATED,
              details: error instanceof Error ? error.message : 'unauthenticated',
            });
          },
        );
      };
    return {
      StreamAggregatedResources: guarded<DiscoveryRequest, DiscoveryResponse>(false, (call, identity, early) =>
        this.serve(call, identity, early),
      ),
      DeltaAggregatedResources: guarded<DeltaDiscoveryRequest, DeltaDiscoveryResponse>(true, (call, identity, early) =>
        this.serveDelta(call, identity, early),
      ),
    };
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
            redactPrivateKey(type.toObject(type.decode(r.resource.value), { longs: String, enums: String, bytes: String })),
          ),
        };
      }),
    };
  }

  private serve(
    call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>,
    identity: ProvenIdentity | undefined,
    early?: EarlyRequests<DiscoveryRequest>,
  ): void {
    const spans = new PushSpans(() => stream);
    const nacks = new NackLog(this.log);
    const stream = new AdsStream(
      ++this.nextId,
      this.source,
      (response) => {
        if (!call.writable) return;
        // Once the transport has written it (the proxy's flow-control window had room), pushes that waited go.
        call.write(response, () => {
          if (call.writableLength === 0) {
            stream.drained();
            this.reportSync(stream);
          }
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
          if (this.lastSync.has(stream)) this.syncObserver?.nacked(stream.id, typeUrl, error);
        },
        ...(identity ? { authorize: (node: DiscoveryNode) => authorizeNode(node, identity) } : {}),
      },
      // A response still unwritten (a proxy not reading): later pushes wait rather than queue.
      () => call.writableLength > 0,
    );
    this.attach(call, stream, this.streams, () => spans.closed(), early);
  }

  private serveDelta(
    call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>,
    identity: ProvenIdentity | undefined,
    early?: EarlyRequests<DeltaDiscoveryRequest>,
  ): void {
    const spans = new PushSpans(() => stream);
    const nacks = new NackLog(this.log);
    const stream = new DeltaStream(
      ++this.nextId,
      this.source,
      (response) => {
        if (!call.writable) return;
        call.write(response, () => {
          if (call.writableLength === 0) {
            stream.drained();
            this.reportSync(stream);
          }
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
        if (this.lastSync.has(stream)) this.syncObserver?.nacked(stream.id, typeUrl, error);
      },
      (typeUrl, version) => spans.acked(typeUrl, version),
      // As for state-of-the-world streams: a response still unwritten makes later pushes wait.
      () => call.writableLength > 0,
      identity ? (node) => authorizeNode(node, identity) : undefined,
    );
    this.attach(call, stream, this.deltaStreams, () => spans.closed(), early);
  }

  /**
   * One lifecycle for both stream kinds: requests in, protocol errors end the stream.
   * A stream is registered (in /debug/syncz, proxy-status, pilot_xds and the source's
   * connected proxies) only once its first request named its node, and every exit
   * (cancel, end, error, close) unregisters it exactly once.
   */
  private attach<
    Req,
    Stream extends {
      id: number;
      handle(request: Req): void;
      inSync(): boolean;
      nodeId: string | undefined;
      discoveryNode: DiscoveryNode | undefined;
    },
  >(
    call: grpc.ServerDuplexStream<Req, unknown>,
    stream: Stream,
    streams: Set<Stream>,
    onClose: () => void,
    early?: EarlyRequests<Req>,
  ): void {
    let closed = false;
    // The source learns which proxies are connected (per-proxy config lives as long as they do).
    let release: (() => void) | undefined;
    const finish = () => {
      if (closed) return;
      closed = true;
      if (streams.delete(stream)) xdsConnected.dec();
      if (this.lastSync.delete(stream)) this.syncObserver?.disconnected(stream.id);
      onClose();
      release?.();
      release = undefined;
    };
    const onRequest = (request: Req) => {
      // Nothing registers after the end (grpc-js reads one message at a time today; this does not rely on it).
      if (closed) return;
      try {
        const hadNode = stream.discoveryNode !== undefined;
        stream.handle(request);
        if (!hadNode && stream.discoveryNode) {
          streams.add(stream);
          xdsConnected.inc();
          release = this.source.connected?.(stream.discoveryNode);
          if (this.syncObserver) {
            this.lastSync.set(stream, false);
            this.syncObserver.connected(stream.id, stream.discoveryNode);
          }
        }
        this.reportSync(stream);
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
    };
    // Requests read while the token was checked come first, in order.
    for (const request of early?.requests ?? []) onRequest(request);
    call.on('data', onRequest);
    const onEnd = () => {
      finish();
      call.end();
    };
    if (early?.ended) onEnd();
    else call.on('end', onEnd);
    call.on('error', finish);
    call.on('cancelled', finish);
    call.on('close', finish);
    if (call.cancelled || call.destroyed) finish();
  }
}
