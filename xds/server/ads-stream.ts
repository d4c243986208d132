// One state-of-the-world ADS stream: subscriptions, versions and nonces per type,
// ACK/NACK as explicit state. Pure protocol: it knows nothing of Kubernetes.
import { podOf } from './proxy-id.js';
import { structToJson } from './struct-value.js';
import {
  typeSyncStatus,
  type ConfigSource,
  type DiscoveryNode,
  type ProxySyncStatus,
  type ResourceSet,
  type TypeSyncStatus,
} from './discovery-types.js';

export interface DiscoveryRequest {
  version_info?: string;
  node?: DiscoveryNode;
  resource_names?: string[];
  /** The encoded names, when the decoder kept them (see protos.ts): equal bytes, equal names. */
  resource_names_bytes?: Buffer;
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
  /** Set instead of the fields when the request's wire format is wrong (request-wire-check.ts): the field and the problem. */
  malformed?: string;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: Array<{ type_url: string; value: Buffer }>;
  type_url: string;
  nonce: string;
}

interface TypeState {
  /** What this stream last sent of each resource (RDS, EDS: only changed ones are resent). */
  sentBytes?: Map<string, Buffer>;
  names: string[];
  /** The encoded names of the last request (see resource_names_bytes). */
  namesBytes?: Buffer | undefined;
  /** `names` as a set, made when first needed (cleared when the names change). */
  nameSet?: Set<string> | undefined;
  wildcard: boolean;
  versionSent?: string;
  /** The names list last answered (lists are replaced, never edited, so identity is change). */
  namesSent?: string[];
  nonceSent?: string;
  sentAt?: number;
  versionAcked?: string;
  state: TypeSyncStatus['state'];
  lastNackError?: string;
}

export interface StreamEvents {
  /** `sinceSentMs`: time from sending the response to its ACK. */
  onAck?: (typeUrl: string, version: string, sinceSentMs: number) => void;
  onNack?: (typeUrl: string, error: string) => void;
  onPush?: (typeUrl: string, bytes: number, resources: number) => void;
  /**
   * Called with the first request's node before anything is served or registered; throwing
   * (connection-identity.ts: IdentityMismatch) ends the stream unserved.
   */
  authorize?: (node: DiscoveryNode) => void;
}

/**
 * Whether the transport still holds responses it has not written to the proxy (a
 * proxy that reads slowly, or never). Pushes wait meanwhile, and `drained()` sends the
 * latest state of each type that waited: a stalled stream holds at most the responses
 * already written, never a queue of every version (Istio sends one push at a time per
 * connection, each waiting for the previous Send: pilot/pkg/xds/ads.go).
 */
export type TransportBusy = () => boolean;

export class AdsStream {
  private node: DiscoveryNode | undefined;
  private readonly types = new Map<string, TypeState>();
  private nonce = 0;
  readonly connectedAt = new Date();
  /** Types whose push waits for the transport; true when it must be answered even if unchanged (a request). */
  private readonly waiting = new Map<string, boolean>();

  constructor(
    readonly id: number,
    private readonly source: ConfigSource,
    private readonly send: (response: DiscoveryResponse) => void,
    private readonly events: StreamEvents = {},
    private readonly busy: TransportBusy = () => false,
  ) {}

  /** The transport wrote everything it held: send what waited (the current state, once per type). */
  drained(): void {
    for (const [typeUrl, force] of this.waiting) {
      if (this.busy()) return;
      this.waiting.delete(typeUrl);
      this.push(typeUrl, force);
    }
  }

  get nodeId(): string | undefined {
    return this.node?.id;
  }

  /** Handles one request; throws only for protocol violations the stream must end on. */
  handle(request: DiscoveryRequest): void {
    checkRequest('DiscoveryRequest', request, this.node === undefined);
    if (!this.node) {
      if (!request.node?.id) throw new ProtocolError('node.id: the first DiscoveryRequest on a stream must carry node.id');
      const node: DiscoveryNode = {
        id: request.node.id,
        ...(request.node.cluster ? { cluster: request.node.cluster } : {}),
        ...(request.node.metadata ? { metadata: structToJson(request.node.metadata) } : {}),
      };
      this.events.authorize?.(node);
      this.node = node;
    }
    const typeUrl = request.type_url ?? '';
    if (!typeUrl) throw new ProtocolError('type_url: missing (this server speaks ADS: every request names its type)');
    let state = this.types.get(typeUrl);
    if (!state) checkTypeCount(this.types.size, typeUrl);
    // An ACK usually repeats the names it had: keep the held list then (no sort, no copy; thousands of EDS names per ACK).
    let names: string[];
    if (state && request.resource_names_bytes && state.namesBytes?.equals(request.resource_names_bytes)) names = state.names;
    else {
      const requested = request.resource_names ?? [];
      checkNames(requested);
      names = state && sameNames(requested, state) ? state.names : [...requested].sort();
    }

    // A nonce on a type this stream never answered is a proxy reconnecting with the nonce of its last
    // stream: a first request (Istio's INIT/RECONNECT, pilot/pkg/xds ShouldRespond). A NACK of it is only noted.
    if (request.response_nonce && !state && request.error_detail) return;
    if (request.response_nonce && state) {
      // A nonce other than the last one sent for this type is stale: the proxy has newer news coming.
      if (request.response_nonce !== state.nonceSent) return;
      state.namesBytes = request.resource_names_bytes;
      if (request.error_detail) {
        state.state = 'nacked';
        state.lastNackError = clip(request.error_detail.message ?? `code ${request.error_detail.code ?? 'unknown'}`);
        this.events.onNack?.(typeUrl, state.lastNackError);
        // The proxy keeps its last good config; we send nothing new until the config changes.
        if (names !== state.names) {
          state.names = names;
          state.nameSet = undefined;
        }
        return;
      }
      state.state = 'acked';
      state.versionAcked = request.version_info ?? state.versionSent;
      this.events.onAck?.(typeUrl, state.versionAcked ?? '', Date.now() - (state.sentAt ?? Date.now()));
      if (names === state.names) return;
      state.names = names;
      state.nameSet = undefined;
      state.wildcard = names.length === 0;
      this.push(typeUrl);
      return;
    }

    // A first request for the type (or a reconnecting proxy's request, carrying the version it has).
    if (!state) {
      state = { names, wildcard: names.length === 0, state: 'pending' };
      this.types.set(typeUrl, state);
    }
    state.namesBytes = request.resource_names_bytes;
    if (names !== state.names) {
      state.names = names;
      state.nameSet = undefined;
      state.wildcard = names.length === 0;
    }
    this.push(typeUrl, true);
  }

  /**
   * Config changed for these types: push them to this stream if it subscribes.
   * `names`, per type, are the only names that changed: RDS and EDS compare just those.
   */
  changed(typeUrls: string[], names?: ReadonlyMap<string, ReadonlySet<string>>): void {
    for (const typeUrl of typeUrls) if (this.types.has(typeUrl)) this.push(typeUrl, false, names?.get(typeUrl));
  }

  /** Types whose push waits for the transport (a slow or stalled proxy), for tests and status. */
  get waitingTypes(): string[] {
    return [...this.waiting.keys()];
  }

  /** What this proxy is subscribed to, per type (for config dumps). */
  subscriptions(): Array<{ typeUrl: string; names: string[] }> {
    return [...this.types].map(([typeUrl, s]) => ({ typeUrl, names: s.wildcard ? [] : s.names }));
  }

  get discoveryNode(): DiscoveryNode | undefined {
    return this.node;
  }

  /** Whether the proxy ACKed the last response of every type and no push waits (see SyncObserver). */
  inSync(): boolean {
    if (this.waiting.size > 0) return false;
    for (const state of this.types.values()) if (state.state !== 'acked') return false;
    return true;
  }

  status(): ProxySyncStatus {
    return {
      streamId: this.id,
      nodeId: this.node?.id ?? '',
      ...podOf(this.node?.id),
      connectedAt: this.connectedAt.toISOString(),
      types: [...this.types].map(([typeUrl, s]) => typeSyncStatus(typeUrl, s.wildcard ? 'wildcard' : s.names, s)),
    };
  }

  private push(typeUrl: string, force = false, onlyNames?: ReadonlySet<string>): void {
    const state = this.types.get(typeUrl);
    if (!state || !this.node) return;
    if (this.busy()) {
      // Which names changed is forgotten: once drained, the whole type is compared with what was sent.
      this.waiting.set(typeUrl, force || (this.waiting.get(typeUrl) ?? false));
      return;
    }
    if (!this.source.serves(typeUrl)) {
      // Types we do not serve (Istio's agent asks for its own) get an empty answer, once.
      if (state.nonceSent && !force) return;
      this.respond(typeUrl, state, '', []);
      return;
    }
    const namesChanged = state.names !== state.namesSent;
    if (onlyNames && !force && !namesChanged && !completeStateTypes.has(typeUrl) && !state.wildcard && state.sentBytes) {
      // Only these names changed: compare just the ones this proxy asked for.
      state.nameSet ??= new Set(state.names);
      const subscribed = state.nameSet;
      const asked = [...onlyNames].filter((name) => subscribed.has(name));
      if (asked.length === 0) return;
      const partial = this.source.resources(this.node, typeUrl, asked);
      // The version names this answer's content (SotW version_info is opaque to the proxy).
      this.sendChanged(typeUrl, state, partial.resources, partial.version);
      return;
    }
    const set = this.source.resources(this.node, typeUrl, state.wildcard ? [] : state.names);
    if (!force && set.version === state.versionSent && !namesChanged) return;
    state.namesSent = state.names;
    if (completeStateTypes.has(typeUrl) || force || namesChanged) {
      state.sentBytes = new Map(set.resources.map((r) => [r.name, r.resource.value]));
      this.respond(
        typeUrl,
        state,
        set.version,
        set.resources.map((r) => r.resource),
      );
      return;
    }
    this.sendChanged(typeUrl, state, set.resources, set.version);
  }

  /**
   * RDS and EDS need not repeat unchanged resources (the xDS protocol allows it for all but LDS
   * and CDS): a change to one Service's endpoints reaches only the proxies that use it.
   */
  private sendChanged(typeUrl: string, state: TypeState, resources: ResourceSet['resources'], version: string): void {
    const sent = state.sentBytes ?? new Map<string, Buffer>();
    const changed = resources.filter((r) => {
      const previous = sent.get(r.name);
      return previous !== r.resource.value && !previous?.equals(r.resource.value);
    });
    if (changed.length === 0) {
      state.versionSent = version;
      return;
    }
    for (const r of changed) sent.set(r.name, r.resource.value);
    state.sentBytes = sent;
    this.respond(
      typeUrl,
      state,
      version,
      changed.map((r) => r.resource),
    );
  }

  private respond(typeUrl: string, state: TypeState, version: string, resources: DiscoveryResponse['resources']): void {
    const nonce = String(++this.nonce);
    state.versionSent = version;
    state.nonceSent = nonce;
    state.sentAt = Date.now();
    state.state = 'pending';
    this.send({ version_info: version, resources, type_url: typeUrl, nonce });
    this.events.onPush?.(
      typeUrl,
      resources.reduce((sum, r) => sum + r.value.length, 0),
      resources.length,
    );
  }
}

export class ProtocolError extends Error {}

/**
 * Limits on what one request may carry, each refusal naming its field. Istio's node ids
 * (`sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`) stay under 700 characters;
 * type URLs, versions (Weft's own, echoed back) and resource names (Envoy's longest are
 * `outbound|<port>|<subset>|<fqdn>`) are far shorter than the limits. Without them one
 * stream could keep megabytes per field (gRPC's 4 MiB message limit is the only other bound).
 */
export const requestLimits = {
  nodeId: 2_048,
  typeUrl: 512,
  versionInfo: 1_024,
  resourceName: 4_096,
  typesPerStream: 32,
  nackMessage: 1_024,
};

/** Refuses a request the decoder could not read, or whose strings exceed `requestLimits` (throws ProtocolError naming the field). */
export function checkRequest(
  kind: string,
  request: { malformed?: string; node?: DiscoveryNode; type_url?: string; version_info?: string },
  first: boolean,
): void {
  if (request.malformed) throw new ProtocolError(`${request.malformed} (malformed ${kind})`);
  const tooLong = (field: string, value: string | undefined, limit: number) => {
    if (value !== undefined && value.length > limit)
      throw new ProtocolError(`${field}: ${value.length} characters, more than the ${limit} allowed`);
  };
  if (first) tooLong('node.id', request.node?.id, requestLimits.nodeId);
  tooLong('type_url', request.type_url, requestLimits.typeUrl);
  tooLong('version_info', request.version_info, requestLimits.versionInfo);
}

/** Refuses resource names over `requestLimits.resourceName` characters, naming the first. */
export function checkNames(names: readonly string[], field = 'resource_names'): void {
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (name.length > requestLimits.resourceName)
      throw new ProtocolError(`${field}[${i}]: ${name.length} characters, more than the ${requestLimits.resourceName} allowed`);
  }
}

/** Refuses a stream's type beyond `requestLimits.typesPerStream` (each type keeps state for the stream's life). */
export function checkTypeCount(held: number, typeUrl: string): void {
  if (held >= requestLimits.typesPerStream)
    throw new ProtocolError(
      `type_url: ${JSON.stringify(typeUrl.slice(0, 100))} would be type ${held + 1} on this stream; at most ${requestLimits.typesPerStream} are allowed`,
    );
}

/** A NACK's message as kept and logged: Envoy's can list every rejected resource. */
export function clip(message: string): string {
  const limit = requestLimits.nackMessage;
  return message.length <= limit ? message : `${message.slice(0, limit)}... (${message.length - limit} more characters)`;
}

// Types whose every response must carry every subscribed resource (absence means deletion).
const completeStateTypes = new Set([
  'type.googleapis.com/envoy.config.listener.v3.Listener',
  'type.googleapis.com/envoy.config.cluster.v3.Cluster',
]);

/** Whether a request names exactly the names held (in any order; names are unique). */
function sameNames(requested: ReadonlyArray<string>, state: TypeState): boolean {
  if (requested.length !== state.names.length) return false;
  if (requested.every((name, i) => name === state.names[i])) return true;
  state.nameSet ??= new Set(state.names);
  const held = state.nameSet;
  return requested.every((name) => held.has(name));
}
