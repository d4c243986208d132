// The small interface between the xDS protocol and whatever produces resources
// (go-control-plane's split): the server knows versions, nonces and ACK/NACK,
// the source knows what each proxy should have.

export interface EncodedResource {
  name: string;
  /** google.protobuf.Any, encoded once and shared by every proxy that receives it. */
  resource: { type_url: string; value: Buffer };
}

export interface ResourceSet {
  /** Changes whenever any resource of this type changes for this proxy. */
  version: string;
  resources: EncodedResource[];
}

export interface DiscoveryNode {
  id: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
  /**
   * What the stream's token proved, set by the server on 15012 once the node's claims matched it
   * (connection-identity.ts `authorizeNode`); never read from a request. Absent on 15010 (plaintext
   * proves nothing), as istiod's `proxy.VerifiedIdentity`: a source serving secrets serves none then.
   */
  verifiedIdentity?: { namespace: string; serviceAccount: string };
}

export interface ConfigSource {
  /** Whether this source serves a type; other types are answered empty. */
  serves(typeUrl: string): boolean;
  /** Subscribed names narrow the answer; an empty list is a wildcard subscription. */
  resources(node: DiscoveryNode, typeUrl: string, names: string[]): ResourceSet;
  /** A proxy's stream has identified itself; the returned function is called when the stream ends. */
  connected?(node: DiscoveryNode): () => void;
  /** Called when content changed; the server pushes the changed types to the streams the change affects. */
  onChange(listener: (change: ConfigChange) => void): () => void;
}

/** What changed, narrowed as far as the source knows: which types, for which proxies, which names. */
export interface ConfigChange {
  typeUrls: string[];
  /** Whether this proxy's config of this type may have changed; absent: every proxy's may have. */
  affects?(node: DiscoveryNode, typeUrl: string): boolean;
  /** Per type, the only resource names that changed or went away; absent for a type: any may have. */
  names?: ReadonlyMap<string, ReadonlySet<string>>;
}

export type AckState = 'pending' | 'acked' | 'nacked';

/**
 * Hears when each stream's proxy is in sync (it has ACKed the last response of every type it
 * subscribes to and no push waits for the transport) or leaves it, and its NACKs: what config
 * propagation reporting (xds/model/propagation.ts) counts, as istiod's distribution reporter hears
 * each connection's ACKed nonce. Called only on transitions (and per NACK), never per ACK that
 * changes nothing; streams are numbered by the server, unique for its life.
 */
export interface SyncObserver {
  /** A stream named its node; `inSync` is false (its first responses are unanswered). */
  connected(streamId: number, node: DiscoveryNode): void;
  synced(streamId: number, inSync: boolean): void;
  /** `error` as kept for /debug/syncz (clipped); the stream is out of sync until a later ACK. */
  nacked(streamId: number, typeUrl: string, error: string): void;
  disconnected(streamId: number): void;
}

export interface TypeSyncStatus {
  typeUrl: string;
  subscribed: string[] | 'wildcard';
  versionSent?: string;
  nonceSent?: string;
  versionAcked?: string;
  state: AckState;
  lastNackError?: string;
}

export interface ProxySyncStatus {
  streamId: number;
  nodeId: string;
  /** From Istio's node id form, when the proxy uses it. */
  pod?: { name: string; namespace: string; ip: string };
  connectedAt: string;
  types: TypeSyncStatus[];
}

/** The status row of one type, from whichever stream kind tracks it. */
export function typeSyncStatus(
  typeUrl: string,
  subscribed: TypeSyncStatus['subscribed'],
  s: { versionSent?: string; nonceSent?: string; versionAcked?: string; state: AckState; lastNackError?: string },
): TypeSyncStatus {
  return {
    typeUrl,
    subscribed,
    ...(s.versionSent !== undefined ? { versionSent: s.versionSent } : {}),
    ...(s.nonceSent !== undefined ? { nonceSent: s.nonceSent } : {}),
    ...(s.versionAcked !== undefined ? { versionAcked: s.versionAcked } : {}),
    state: s.state,
    ...(s.lastNackError !== undefined ? { lastNackError: s.lastNackError } : {}),
  };
}
