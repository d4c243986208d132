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
}

export class AdsStream {
  private node: DiscoveryNode | undefined;
  private readonly types = new Map<string, TypeState>();
  private nonce = 0;
  readonly connectedAt = new Date();

  constructor(
    readonly id: number,
    private readonly source: ConfigSource,
    private readonly send: (response: DiscoveryResponse) => void,
    private readonly events: StreamEvents = {},
  ) {}

  get nodeId(): string | undefined {
    return this.node?.id;
  }

  /** Handles one request; throws only for protocol violations the stream must end on. */
  handle(request: DiscoveryRequest): void {
    if (!this.node) {
      if (!request.node?.id) throw new ProtocolError('the first DiscoveryRequest on a stream must carry node.id');
      this.node = {
        id: request.node.id,
        ...(request.node.cluster ? { cluster: request.node.cluster } : {}),
        ...(request.node.metadata ? { metadata: structToJson(request.node.metadata) } : {}),
      };
    }
    const typeUrl = request.type_url ?? '';
    if (!typeUrl) throw new ProtocolError('DiscoveryRequest without type_url (this server speaks ADS: every request names its type)');
    let state = this.types.get(typeUrl);
    // An ACK usually repeats the names it had: keep the held list then (no sort, no copy; thousands of EDS names per ACK).
    let names: string[];
    if (state && request.resource_names_bytes && state.namesBytes?.equals(request.resource_names_bytes)) names = state.names;
    else {
      const requested = request.resource_names ?? [];
      names = state && sameNames(requested, state) ? state.names : [...requested].sort();
    }

    if (request.response_nonce) {
      // A nonce other than the last one sent for this type is stale: the proxy has newer news coming.
      if (!state || request.response_nonce !== state.nonceSent) return;
      state.namesBytes = request.resource_names_bytes;
      if (request.error_detail) {
        state.state = 'nacked';
        state.lastNackError = request.error_detail.message ?? `code ${request.error_detail.code ?? 'unknown'}`;
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

  /** What this proxy is subscribed to, per type (for config dumps). */
  subscriptions(): Array<{ typeUrl: string; names: string[] }> {
    return [...this.types].map(([typeUrl, s]) => ({ typeUrl, names: s.wildcard ? [] : s.names }));
  }

  get discoveryNode(): DiscoveryNode | undefined {
    return this.node;
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
