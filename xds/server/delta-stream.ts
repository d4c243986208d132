// One incremental (Delta) ADS stream: per type, the names subscribed (or a
// wildcard) and the version of each resource the proxy holds; every push sends
// only what changed and names what was removed. Pure protocol, like AdsStream.
import { podOf } from './proxy-id.js';
import { structToJson } from './struct-value.js';
import { createHash } from 'node:crypto';
import { typeSyncStatus, type ConfigSource, type DiscoveryNode, type ProxySyncStatus, type TypeSyncStatus } from './discovery-types.js';
import { checkNames, checkRequest, checkTypeCount, clip, ProtocolError, type TransportBusy } from './ads-stream.js';

export interface DeltaDiscoveryRequest {
  node?: DiscoveryNode;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
  /** Set instead of the fields when the request's wire format is wrong (request-wire-check.ts). */
  malformed?: string;
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: Array<{ name: string; version: string; resource: { type_url: string; value: Buffer } }>;
  type_url: string;
  removed_resources: string[];
  nonce: string;
}

interface DeltaTypeState {
  wildcard: boolean;
  names: Set<string>;
  /** Resource name to the version the proxy holds. */
  held: Map<string, string>;
  nonceSent?: string;
  versionSent?: string;
  versionAcked?: string;
  state: TypeSyncStatus['state'];
  lastNackError?: string;
}

const versionCache = new WeakMap<Buffer, string>();
/** A resource's version is a digest of its bytes: equal bytes, equal version, on every replica. */
function resourceVersion(bytes: Buffer): string {
  let version = versionCache.get(bytes);
  if (!version) {
    version = createHash('sha256').update(bytes).digest('base64url').slice(0, 16);
    versionCache.set(bytes, version);
  }
  return version;
}

export class DeltaStream {
  private node: DiscoveryNode | undefined;
  private readonly types = new Map<string, DeltaTypeState>();
  private nonce = 0;
  private readonly connectedAt = new Date();
  /** Types whose push waits for the transport (see TransportBusy); each is compared in full once it drains. */
  private readonly waiting = new Set<string>();

  constructor(
    readonly id: number,
    private readonly source: ConfigSource,
    private readonly send: (response: DeltaDiscoveryResponse) => void,
    private readonly onNack?: (typeUrl: string, error: string) => void,
    private readonly onAck?: (typeUrl: string, version: string) => void,
    private readonly busy: TransportBusy = () => false,
    /** Called with the first request's node before anything is served (see StreamEvents.authorize). */
    private readonly authorize?: (node: DiscoveryNode) => void,
  ) {}

  /**
   * The transport wrote everything it held: each type that waited gets one response, the
   * difference between what the proxy holds and the current config (the versions in
   * between are never sent, as with the state-of-the-world stream).
   */
  drained(): void {
    for (const typeUrl of this.waiting) {
      if (this.busy()) return;
      this.waiting.delete(typeUrl);
      this.push(typeUrl);
    }
  }

  /** Types whose push waits for the transport (a slow or stalled proxy), for tests and status. */
  get waitingTypes(): string[] {
    return [...this.waiting];
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

  get nodeId(): string | undefined {
    return this.node?.id;
  }

  handle(request: DeltaDiscoveryRequest): void {
    checkRequest('DeltaDiscoveryRequest', request, this.node === undefined);
    if (!this.node) {
      if (!request.node?.id) throw new ProtocolError('node.id: the first DeltaDiscoveryRequest on a stream must carry node.id');
      const node: DiscoveryNode = {
        id: request.node.id,
        ...(request.node.metadata ? { metadata: structToJson(request.node.metadata) } : {}),
      };
      this.authorize?.(node);
      this.node = node;
    }
    const typeUrl = request.type_url ?? '';
    if (!typeUrl) throw new ProtocolError('type_url: missing (every DeltaDiscoveryRequest names its type)');
    let state = this.types.get(typeUrl);
    const subscribe = request.resource_names_subscribe ?? [];
    const unsubscribe = request.resource_names_unsubscribe ?? [];
    checkNames(subscribe, 'resource_names_subscribe');
    checkNames(unsubscribe, 'resource_names_unsubscribe');
    if (!state) {
      checkTypeCount(this.types.size, typeUrl);
      // The first request of a type with no names, or naming "*", is a wildcard subscription.
      state = {
        wildcard: subscribe.length === 0 || subscribe.includes('*'),
        names: new Set(),
        held: new Map(Object.entries(request.initial_resource_versions ?? {})),
        state: 'pending',
      };
      this.types.set(typeUrl, state);
    }
    if (request.response_nonce && request.response_nonce === state.nonceSent) {
      if (request.error_detail) {
        state.state = 'nacked';
        state.lastNackError = clip(request.error_detail.message ?? `code ${request.error_detail.code ?? 'unknown'}`);
        this.onNack?.(typeUrl, state.lastNackError);
      } else {
        state.state = 'acked';
        state.versionAcked = state.versionSent;
        this.onAck?.(typeUrl, state.versionAcked ?? '');
      }
    }
    for (const name of subscribe) if (name !== '*') state.names.add(name);
    if (subscribe.includes('*')) state.wildcard = true;
    for (const name of unsubscribe) {
      if (name === '*') state.wildcard = false;
      state.names.delete(name);
      state.held.delete(name);
    }
    if (subscribe.length > 0 || unsubscribe.length > 0 || !request.response_nonce) this.push(typeUrl);
  }

  /** Config changed for these types; `names`, per type, are the only names that changed (named subscriptions compare just those). */
  changed(typeUrls: string[], names?: ReadonlyMap<string, ReadonlySet<string>>): void {
    for (const typeUrl of typeUrls) if (this.types.has(typeUrl)) this.push(typeUrl, names?.get(typeUrl));
  }

  status(): ProxySyncStatus {
    return {
      streamId: this.id,
      nodeId: this.node?.id ?? '',
      ...podOf(this.node?.id),
      connectedAt: this.connectedAt.toISOString(),
      types: [...this.types].map(([typeUrl, s]) => typeSyncStatus(typeUrl, s.wildcard ? 'wildcard' : [...s.names].sort(), s)),
    };
  }

  private push(typeUrl: string, onlyNames?: ReadonlySet<string>): void {
    const state = this.types.get(typeUrl);
    if (!state || !this.node) return;
    if (this.busy()) {
      // Which names changed is forgotten: once drained, every held resource is compared.
      this.waiting.add(typeUrl);
      return;
    }
    if (!this.source.serves(typeUrl)) {
      if (!state.nonceSent) this.respond(typeUrl, state, '', [], []);
      return;
    }
    // A named subscription told which names changed looks only at those it holds.
    const names = onlyNames && !state.wildcard && state.nonceSent ? [...onlyNames].filter((n) => state.names.has(n)) : [...state.names];
    if (onlyNames && !state.wildcard && state.nonceSent && names.length === 0) return;
    const set = this.source.resources(this.node, typeUrl, state.wildcard ? [] : names);
    const present = new Set(set.resources.map((r) => r.name));
    const changed = set.resources
      .map((r) => ({ name: r.name, version: resourceVersion(r.resource.value), resource: r.resource }))
      .filter((r) => state.held.get(r.name) !== r.version);
    // Wildcard types announce removals. Named resources (EDS, RDS) belong to a parent the proxy
    // tracks: when the parent goes, the proxy unsubscribes them itself (Envoy and Istio's adsc
    // both do, and adsc fails on a removal that races its own unsubscribe).
    const removed = state.wildcard ? [...state.held.keys()].filter((name) => !present.has(name)) : [];
    if (changed.length === 0 && removed.length === 0 && state.nonceSent) return;
    for (const r of changed) state.held.set(r.name, r.version);
    for (const name of removed) state.held.delete(name);
    this.respond(typeUrl, state, set.version, changed, removed);
  }

  private respond(
    typeUrl: string,
    state: DeltaTypeState,
    version: string,
    resources: DeltaDiscoveryResponse['resources'],
    removed: string[],
  ): void {
    const nonce = String(++this.nonce);
    state.nonceSent = nonce;
    state.versionSent = version;
    state.state = 'pending';
    this.send({ system_version_info: version, resources, type_url: typeUrl, removed_resources: removed, nonce });
  }
}
