// Config propagation on status: for each Istio object, how many of the connected proxies whose
// config reads it have ACKed config generated from a model holding its current generation, and
// the last NACK naming it. Istio's `Reconciled` condition ("N/M proxies up to date.", True when
// all are), from the distribution reporting istiod once had (pilot/pkg/status/distribution:
// each connection's ACKed nonce against a ledger of every object's generation). Weft counts the
// proxies the object applies to (Istio counted every proxy), from a cheaper fact than a ledger:
//
// - Models are numbered in the order they reach the proxies (`modelApplied`, after ProxyGroups
//   announced the change); each object notes the first model that held its current generation.
// - The ADS server reports when a stream is in sync (every type's last response ACKed, nothing
//   waiting) and when it leaves it (SyncObserver). A stream leaves sync only by a push, and a
//   push for model k happens before model k is counted here: a stream out of sync since model s
//   has ACKed everything up to s; one in sync, everything so far.
// - So a proxy is up to date with an object when it is in sync, or left sync at or after the
//   model that first held the object's generation.
//
// Proxies with the same kind, namespace and labels read the same objects: they form one class
// (ProxyGroups' label key), which keeps counts (in sync, and out of sync by model), so a count is
// a sum over the object's classes. Costs: an ACK or push is O(1) (a class's counts); a changed
// object is checked against each class once; a new class against each object once; NACKs are
// attributed and conditions computed once per `take()` (weftd: once a second), for the objects
// of the classes that moved. Pure: no I/O, no timers. Counts only this weftd's own proxies: with
// several replicas, propagation-replicas.ts sums every replica's `counts()`.
import type { DiscoveryNode, SyncObserver } from '../server/discovery-types.js';
import { parseProxyId } from '../server/proxy-id.js';
import { appliesTo } from '../security/workload-policies.js';
import { boundGateways, gatewaysSelecting } from '../traffic/gateway-servers.js';
import { exportedTo, labelsMatch } from '../traffic/host-names.js';
import { MeshIndex } from '../traffic/mesh-index.js';
import { sidecarFor } from '../traffic/proxy-view.js';
import { proxyScopeOf, scopeKey, type ProxyScope } from '../traffic/proxy-scope.js';
import { outboundScopeOf } from '../traffic/scope-signature.js';
import { emptyIstioConfig, type ConfigObject, type IstioConfig } from './istio-config.js';
import type { MeshModel } from './mesh-model.js';

/** The kinds whose objects get a `Reconciled` condition, by their field in IstioConfig. */
const trackedKinds: ReadonlyArray<{ kind: string; field: keyof IstioConfig }> = [
  { kind: 'VirtualService', field: 'virtualServices' },
  { kind: 'DestinationRule', field: 'destinationRules' },
  { kind: 'ServiceEntry', field: 'serviceEntries' },
  { kind: 'Sidecar', field: 'sidecars' },
  { kind: 'Gateway', field: 'gateways' },
  { kind: 'PeerAuthentication', field: 'peerAuthentications' },
  { kind: 'AuthorizationPolicy', field: 'authorizationPolicies' },
  { kind: 'RequestAuthentication', field: 'requestAuthentications' },
  { kind: 'Telemetry', field: 'telemetries' },
];

/** Objects of these kinds decide which other objects apply to a proxy (its Sidecar, its Gateways). */
const selectingKinds = new Set(['Sidecar', 'Gateway']);

/** A `Reconciled` condition as weftd writes it (IstioCondition), without its transition time. */
export interface ReconciledCondition {
  type: 'Reconciled';
  /** Unknown while some control plane replica's counts are missing (propagation-replicas.ts). */
  status: 'True' | 'False' | 'Unknown';
  /** `Reconciled`, `StillPropagating`, `Rejected` while a proxy's last NACK of it stands, or `NotAggregated` (a replica did not report). */
  reason: 'Reconciled' | 'StillPropagating' | 'Rejected' | 'NotAggregated';
  /** "N/M proxies up to date." as Istio's, then the last NACK naming the object, if any. */
  message: string;
  /** The object generation the counts are for. */
  observedGeneration?: number;
}

/** A condition that changed since the last `take()`, with the object it belongs to. */
export interface ReconciledUpdate {
  kind: string;
  namespace: string;
  name: string;
  condition: ReconciledCondition;
}

/** One object's counts at one weftd, for its own proxies: what `/debug/propagationz` serves, by `kind/namespace/name`. */
export interface ObjectCounts {
  /** The object generation the counts are for (its metadata.generation in this weftd's model). */
  generation?: number;
  /** Affected proxies up to date with that generation. */
  up: number;
  /** Affected proxies connected to this weftd. */
  total: number;
  /** The last NACK naming the object, while it stands. */
  nack?: NackNote;
}

/** Work done, for tests and /debug: how often an object was checked against a class, and conditions computed. */
export interface PropagationWork {
  appliesChecks: number;
  conditionsComputed: number;
}

export interface NackNote {
  /** The proxy's pod, `name.namespace`. */
  proxy: string;
  typeUrl: string;
  /** Envoy's error detail, as the proxy sent it. */
  error: string;
}

interface TrackedObject {
  kind: string;
  object: ConfigObject<unknown>;
  /** The first model (sequence number) that held the object's current generation. */
  since: number;
  classes: Set<ProxyClass>;
  lastNack: NackNote | undefined;
  /** The condition's generation, status and message as last taken. */
  taken: string | undefined;
}

interface ProxyClass {
  scope: ProxyScope;
  key: string;
  members: number;
  inSync: number;
  /** Out-of-sync members by the last model they were in sync with (-1: never). */
  behind: Map<number, number>;
  objects: Set<TrackedObject>;
}

interface ProxyState {
  name: string;
  cls: ProxyClass;
  inSync: boolean;
  /** While out of sync: the last model it was in sync with. */
  syncedSeq: number;
  nack: { typeUrl: string; error: string } | undefined;
}

const nackMessageLimit = 200;

/** The `Reconciled` condition of one object from its counts (Istio's message: "%d/%d proxies up to date."). */
export function reconciledCondition(up: number, total: number, generation?: number, nack?: NackNote): ReconciledCondition {
  const done = up >= total;
  const shortType = nack ? (nack.typeUrl.split('.').pop() ?? nack.typeUrl) : '';
  const error = nack && nack.error.length > nackMessageLimit ? `${nack.error.slice(0, nackMessageLimit)}...` : nack?.error;
  return {
    type: 'Reconciled',
    status: done ? 'True' : 'False',
    reason: done ? 'Reconciled' : nack ? 'Rejected' : 'StillPropagating',
    message: `${up}/${total} proxies up to date.${nack && !done ? ` Last NACK: ${nack.proxy} rejected ${shortType}: ${error}` : ''}`,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}

/**
 * Whether an object is part of the config of proxies of one scope (kind, namespace, labels),
 * as the generators read it: VirtualServices bound to `mesh` and exported to the proxy's namespace
 * (sidecars, proxyless gRPC) or bound to a Gateway selecting it (gateways); DestinationRules and
 * ServiceEntries exported to it (a DestinationRule's workloadSelector in its own namespace);
 * the Sidecar sidecarFor picks (a gateway's: its namespace's default); Gateways selecting it;
 * PeerAuthentication and AuthorizationPolicy selecting a sidecar's or gRPC server's workload
 * (workload-policies.ts), RequestAuthentication and Telemetry a sidecar's (proxyless gRPC gets
 * neither; gateways no security policy). A Sidecar's egress hosts narrowing what it sees are not
 * read: an object exported to the namespace counts.
 */
export function objectApplies(kind: string, object: ConfigObject<unknown>, scope: ProxyScope, index: MeshIndex): boolean {
  const spec = object.spec as Record<string, unknown> & { exportTo?: string[] };
  const exported = exportedTo(spec.exportTo, object.namespace, scope.namespace);
  const workload = { namespace: scope.namespace, labels: scope.labels };
  const selectable = object as unknown as Parameters<typeof appliesTo>[0];
  switch (kind) {
    case 'VirtualService': {
      const bound = boundGateways(object as Parameters<typeof boundGateways>[0]);
      if (!exported) return false;
      if (scope.kind !== 'router') return bound.includes('mesh');
      return gatewaysSelecting(index, scope).some((g) => bound.includes(`${g.namespace}/${g.name}`));
    }
    case 'DestinationRule': {
      const selector = (spec['workloadSelector'] as { matchLabels?: Record<string, string> } | undefined)?.matchLabels;
      if (selector && Object.keys(selector).length > 0) {
        const out = outboundScopeOf(scope);
        return object.namespace === out.namespace && labelsMatch(selector, out.labels);
      }
      return exported;
    }
    case 'ServiceEntry':
      return exported;
    case 'Sidecar': {
      const chosen = sidecarFor(index.config.sidecars, outboundScopeOf(scope), index.rootNamespace);
      return chosen?.namespace === object.namespace && chosen.name === object.name;
    }
    case 'Gateway':
      return (
        scope.kind === 'router' && gatewaysSelecting(index, scope).some((g) => g.namespace === object.namespace && g.name === object.name)
      );
    case 'PeerAuthentication':
    case 'AuthorizationPolicy':
      return scope.kind !== 'router' && appliesTo(selectable, workload, index.rootNamespace);
    case 'RequestAuthentication':
    case 'Telemetry':
      return scope.kind === 'sidecar' && appliesTo(selectable, workload, index.rootNamespace);
    default:
      return false;
  }
}

/** A proxy as a NACK note names it: its pod (`name.namespace`) from an Istio node id, else the node id. */
function proxyName(node: DiscoveryNode): string {
  const id = parseProxyId(node.id);
  return id ? `${id.pod}.${id.namespace}` : node.id.slice(0, 100);
}

/**
 * The propagation of every Istio object to the proxies it applies to. weftd's ADS server tells it
 * of streams (SyncObserver), the model source of each model the proxies were given
 * (`modelApplied`), and the status writer takes the conditions that changed (`take`).
 */
export class Propagation implements SyncObserver {
  private seq = 0;
  private index: MeshIndex | undefined;
  private readonly objects = new Map<string, TrackedObject>();
  private readonly classes = new Map<string, ProxyClass>();
  private readonly proxies = new Map<number, ProxyState>();
  private readonly dirtyObjects = new Set<TrackedObject>();
  private readonly dirtyClasses = new Set<ProxyClass>();
  private readonly nackedProxies = new Set<ProxyState>();
  readonly work: PropagationWork = { appliesChecks: 0, conditionsComputed: 0 };

  /**
   * The proxies were given the config of `model` (ProxyGroups announced it): it becomes the
   * current model. Objects new or changed since the last one (by identity; a new generation
   * restarts the count) are checked against each class; when a Sidecar or Gateway changed,
   * every object is (they decide what applies to whom).
   */
  modelApplied(model: MeshModel): void {
    this.seq++;
    const index = MeshIndex.of(model);
    this.index = index;
    const config = model.istio ?? emptyIstioConfig();
    const seen = new Set<string>();
    const changed: TrackedObject[] = [];
    let selectorsChanged = false;
    for (const { kind, field } of trackedKinds) {
      for (const object of config[field] as ReadonlyArray<ConfigObject<unknown>>) {
        const key = `${kind}/${object.namespace}/${object.name}`;
        seen.add(key);
        let tracked = this.objects.get(key);
        if (tracked?.object === object) continue;
        if (!tracked) {
          tracked = { kind, object, since: this.seq, classes: new Set(), lastNack: undefined, taken: undefined };
          this.objects.set(key, tracked);
        } else if (tracked.object.generation !== object.generation) {
          tracked.since = this.seq;
          tracked.lastNack = undefined;
        }
        tracked.object = object;
        if (selectingKinds.has(kind)) selectorsChanged = true;
        changed.push(tracked);
      }
    }
    for (const [key, tracked] of this.objects) {
      if (seen.has(key)) continue;
      this.objects.delete(key);
      if (selectingKinds.has(tracked.kind)) selectorsChanged = true;
      for (const cls of tracked.classes) cls.objects.delete(tracked);
      this.dirtyObjects.delete(tracked);
    }
    for (const tracked of selectorsChanged ? this.objects.values() : changed) {
      this.placeObject(tracked, index);
      this.dirtyObjects.add(tracked);
    }
  }

  connected(streamId: number, node: DiscoveryNode): void {
    const scope = proxyScopeOf(node);
    const key = scopeKey(scope);
    let cls = this.classes.get(key);
    if (!cls) {
      cls = { scope, key, members: 0, inSync: 0, behind: new Map(), objects: new Set() };
      this.classes.set(key, cls);
      if (this.index) for (const tracked of this.objects.values()) this.placeIn(tracked, cls, this.index);
    }
    cls.members++;
    bump(cls.behind, -1, 1);
    this.proxies.set(streamId, { name: proxyName(node), cls, inSync: false, syncedSeq: -1, nack: undefined });
    this.dirtyClasses.add(cls);
  }

  synced(streamId: number, inSync: boolean): void {
    const proxy = this.proxies.get(streamId);
    if (!proxy || proxy.inSync === inSync) return;
    const cls = proxy.cls;
    if (inSync) {
      bump(cls.behind, proxy.syncedSeq, -1);
      cls.inSync++;
    } else {
      cls.inSync--;
      proxy.syncedSeq = this.seq;
      bump(cls.behind, proxy.syncedSeq, 1);
    }
    proxy.inSync = inSync;
    this.dirtyClasses.add(cls);
  }

  nacked(streamId: number, typeUrl: string, error: string): void {
    const proxy = this.proxies.get(streamId);
    if (!proxy) return;
    // Noted only: attributed to objects at the next take(), so a NACK storm costs one attribution.
    proxy.nack = { typeUrl, error };
    this.nackedProxies.add(proxy);
  }

  disconnected(streamId: number): void {
    const proxy = this.proxies.get(streamId);
    if (!proxy) return;
    this.proxies.delete(streamId);
    this.nackedProxies.delete(proxy);
    const cls = proxy.cls;
    cls.members--;
    if (proxy.inSync) cls.inSync--;
    else bump(cls.behind, proxy.syncedSeq, -1);
    if (cls.members > 0) {
      this.dirtyClasses.add(cls);
      return;
    }
    this.classes.delete(cls.key);
    this.dirtyClasses.delete(cls);
    for (const tracked of cls.objects) {
      tracked.classes.delete(cls);
      this.dirtyObjects.add(tracked);
    }
  }

  /**
   * The conditions whose status or message changed since the last call: NACKs noted since are
   * attributed to the objects of the NACKing proxy it had not yet ACKed (those the rejected push
   * could have carried), then the objects of every class whose counts moved are computed again.
   */
  take(): ReconciledUpdate[] {
    this.attributeNacks();
    const updates: ReconciledUpdate[] = [];
    for (const tracked of this.dirtyObjects) {
      const condition = this.conditionOf(tracked);
      const text = `${condition.observedGeneration ?? ''} ${condition.status} ${condition.message}`;
      if (text === tracked.taken) continue;
      tracked.taken = text;
      const { namespace, name } = tracked.object;
      updates.push({ kind: tracked.kind, namespace, name, condition });
    }
    this.dirtyObjects.clear();
    return updates;
  }

  /**
   * Every tracked object's counts now, by `kind/namespace/name` (what `/debug/propagationz` serves
   * a replica summing them). O(objects x their classes); does not consume what `take()` returns.
   */
  counts(): Record<string, ObjectCounts> {
    this.attributeNacks();
    const counts: Record<string, ObjectCounts> = {};
    for (const [key, tracked] of this.objects) {
      const { up, total } = this.countOf(tracked);
      const { generation } = tracked.object;
      counts[key] = {
        ...(generation !== undefined ? { generation } : {}),
        up,
        total,
        ...(tracked.lastNack ? { nack: tracked.lastNack } : {}),
      };
    }
    return counts;
  }

  /** Forgets what was taken: the next `take()` returns every object's condition (after others wrote them). */
  retake(): void {
    for (const tracked of this.objects.values()) {
      tracked.taken = undefined;
      this.dirtyObjects.add(tracked);
    }
  }

  /** NACKs noted since are attributed; the objects of classes whose counts moved become dirty. */
  private attributeNacks(): void {
    for (const proxy of this.nackedProxies) {
      if (!proxy.nack || proxy.inSync) continue;
      for (const tracked of proxy.cls.objects) {
        if (tracked.since <= proxy.syncedSeq) continue;
        tracked.lastNack = { proxy: proxy.name, ...proxy.nack };
        this.dirtyObjects.add(tracked);
      }
      proxy.nack = undefined;
    }
    this.nackedProxies.clear();
    for (const cls of this.dirtyClasses) for (const tracked of cls.objects) this.dirtyObjects.add(tracked);
    this.dirtyClasses.clear();
  }

  /** One object's condition now (undefined for an object not in the last model), e.g. to write with its verdict. */
  condition(kind: string, namespace: string, name: string): ReconciledCondition | undefined {
    const tracked = this.objects.get(`${kind}/${namespace}/${name}`);
    return tracked ? this.conditionOf(tracked) : undefined;
  }

  private conditionOf(tracked: TrackedObject): ReconciledCondition {
    this.work.conditionsComputed++;
    const { up, total } = this.countOf(tracked);
    return reconciledCondition(up, total, tracked.object.generation, tracked.lastNack);
  }

  private countOf(tracked: TrackedObject): { up: number; total: number } {
    let up = 0;
    let total = 0;
    for (const cls of tracked.classes) {
      total += cls.members;
      up += cls.inSync;
      for (const [seq, count] of cls.behind) if (seq >= tracked.since) up += count;
    }
    // Every affected proxy is up to date: a NACK before no longer stands.
    if (up >= total) tracked.lastNack = undefined;
    return { up, total };
  }

  private placeObject(tracked: TrackedObject, index: MeshIndex): void {
    for (const cls of this.classes.values()) this.placeIn(tracked, cls, index);
  }

  private placeIn(tracked: TrackedObject, cls: ProxyClass, index: MeshIndex): void {
    this.work.appliesChecks++;
    if (objectApplies(tracked.kind, tracked.object, cls.scope, index)) {
      tracked.classes.add(cls);
      cls.objects.add(tracked);
    } else if (tracked.classes.delete(cls)) cls.objects.delete(tracked);
  }
}

function bump(counts: Map<number, number>, key: number, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next === 0) counts.delete(key);
  else counts.set(key, next);
}
