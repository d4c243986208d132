// The `Reconciled` condition across several weftd replicas. Each replica sees only the proxies
// connected to it, so one replica sums everyone's counts, as istiod's distribution reporting did
// (pilot/pkg/status/distribution: each istiod wrote its own report, the leader summed them).
// Weft needs no Lease and no report objects: the replica with the lowest pod IP among weftd's own
// Service's endpoints writes (every replica reads the same endpoints from the same model) and
// fetches the others' counts from their monitoring port (`/debug/propagationz`), once a second,
// off the push path. The others write no `Reconciled` (they write `Accepted` as before).
import type { Logger } from '../../lib/logger.js';
import type { PropagationSource } from './config-status-writer.js';
import type { MeshModel } from './mesh-model.js';
import {
  reconciledCondition,
  type NackNote,
  type ObjectCounts,
  type Propagation,
  type ReconciledCondition,
  type ReconciledUpdate,
} from './propagation.js';

/** What `/debug/propagationz` answers: this replica's counts for its own proxies, by `kind/namespace/name`. */
export interface PropagationReport {
  objects: Record<string, ObjectCounts>;
}

/**
 * The replica that writes `Reconciled`: the lowest of the addresses (IPv4 by number, else as
 * text), the same on every replica reading the same endpoints; undefined for none.
 */
export function conditionWriter(addresses: Iterable<string>): string | undefined {
  const key = (address: string) => {
    const octets = address.split('.');
    // IPv4 sorts below IPv6; padded octets order as numbers.
    return octets.length === 4 && octets.every((o) => /^\d{1,3}$/.test(o))
      ? `4 ${octets.map((o) => o.padStart(3, '0')).join('.')}`
      : `6 ${address}`;
  };
  let lowest: string | undefined;
  for (const address of addresses) if (lowest === undefined || key(address) < key(lowest)) lowest = address;
  return lowest;
}

/**
 * One object's condition from the counts of the replicas that reported it (`reports`: one entry per
 * replica whose model holds the object) out of `replicas` serving proxies. Fewer reports than
 * replicas: Unknown (`NotAggregated`) "k of n control plane replicas reported." (a missing count
 * is never guessed). Else the counts are for the newest generation any replica holds: a replica
 * still at an older one has not generated config from it, so its affected proxies count as not up
 * to date (its NACK, about the older generation, is dropped); the NACK named is the first
 * reported at that generation (reports in replica order, the writer's own first).
 */
export function summedCondition(replicas: number, reports: ReadonlyArray<ObjectCounts>): ReconciledCondition {
  const generations = reports.map((r) => r.generation).filter((g): g is number => g !== undefined);
  const generation = generations.length > 0 ? Math.max(...generations) : undefined;
  if (reports.length < replicas) {
    return {
      type: 'Reconciled',
      status: 'Unknown',
      reason: 'NotAggregated',
      message: `${reports.length} of ${replicas} control plane replicas reported.`,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    };
  }
  let up = 0;
  let total = 0;
  let nack: NackNote | undefined;
  for (const report of reports) {
    total += report.total;
    if (report.generation !== generation) continue;
    up += report.up;
    nack ??= report.nack;
  }
  return reconciledCondition(up, total, generation, nack);
}

const isCount = (value: unknown) => typeof value === 'number' && Number.isInteger(value) && value >= 0;

/** A peer's `/debug/propagationz` answer, checked; throws an Error naming the first bad field. */
export function parsePropagationReport(body: unknown): PropagationReport {
  const objects = (body as { objects?: unknown } | null)?.objects;
  if (typeof objects !== 'object' || objects === null || Array.isArray(objects)) throw new Error('objects: expected an object');
  for (const [key, counts] of Object.entries(objects as Record<string, unknown>)) {
    const field = `objects[${JSON.stringify(key)}]`;
    const c = counts as Partial<Record<keyof ObjectCounts, unknown>> | null;
    if (typeof c !== 'object' || c === null) throw new Error(`${field}: expected an object`);
    for (const name of ['up', 'total'] as const) if (!isCount(c[name])) throw new Error(`${field}.${name}: expected a count`);
    if (c.generation !== undefined && !isCount(c.generation)) throw new Error(`${field}.generation: expected a count`);
    const nack = c.nack as Partial<Record<keyof NackNote, unknown>> | undefined;
    if (
      nack !== undefined &&
      (typeof nack !== 'object' ||
        nack === null ||
        !['proxy', 'typeUrl', 'error'].every((k) => typeof nack[k as keyof NackNote] === 'string'))
    )
      throw new Error(`${field}.nack: expected proxy, typeUrl and error`);
  }
  return { objects: objects as Record<string, ObjectCounts> };
}

/** `/debug/propagationz` of the replica at `address`, port `port`, given up after `timeoutMs`. */
export async function fetchPropagationReport(address: string, port: number, timeoutMs: number): Promise<PropagationReport> {
  const host = address.includes(':') ? `[${address}]` : address;
  const response = await fetch(`http://${host}:${port}/debug/propagationz`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return parsePropagationReport(await response.json());
}

export interface ReplicatedPropagationOptions {
  /** This replica's pod IP (weftd: POD_IP); undefined when unknown (it then writes only while it is the only replica). */
  self: string | undefined;
  /** The control plane replicas' addresses in a model (weftd: its own Service's endpoint addresses). */
  replicas: (model: MeshModel) => Iterable<string>;
  /** A peer's counts (default: `fetchPropagationReport` on `port`, `timeoutMs`). Rejecting: the peer did not report. */
  fetchReport?: (address: string) => Promise<PropagationReport>;
  /** The peers' monitoring port (weftd: 15014, every replica alike). */
  port?: number;
  /** How long a peer may take to answer, ms (default 500: under the writer's 1 s beat). */
  timeoutMs?: number;
  log?: Logger;
}

type Role = 'alone' | 'writer' | 'reader';

/**
 * The `Reconciled` conditions the status writer takes (PropagationSource), across replicas:
 * - alone (weftd's Service has at most one endpoint address): the local Propagation's, as they are;
 * - writer (the lowest address, conditionWriter): each `take()` starts a round fetching every peer's
 *   counts in parallel, and returns the conditions the last finished round changed, summed by
 *   `summedCondition` with the local counts of that moment (so a condition lags by one beat);
 * - reader: none; `condition()` is undefined so the writer's condition on the object is kept.
 * Cost for the writer: per beat, each peer's counts of every object (JSON) and a sum per object;
 * only conditions whose text changed are returned.
 */
export class ReplicatedPropagation implements PropagationSource {
  private role: Role = 'alone';
  private addresses: string[] = [];
  private round: Promise<void> | undefined;
  /** Writer: the conditions of the last finished round, by key, and those not yet taken. */
  private summed = new Map<string, ReconciledUpdate>();
  private readonly untaken = new Map<string, ReconciledUpdate>();
  private readonly taken = new Map<string, string>();
  /** Peers whose last fetch failed (warned once until they answer again). */
  private readonly failing = new Set<string>();
  private readonly fetchReport: (address: string) => Promise<PropagationReport>;

  constructor(
    readonly local: Propagation,
    private readonly options: ReplicatedPropagationOptions,
  ) {
    this.fetchReport =
      options.fetchReport ?? ((address) => fetchPropagationReport(address, options.port ?? 15014, options.timeoutMs ?? 500));
  }

  /** The proxies were given `model`: the local counts follow it, and the replicas are read from it. */
  modelApplied(model: MeshModel): void {
    this.local.modelApplied(model);
    const addresses = [...new Set(this.options.replicas(model))];
    const { self } = this.options;
    const role: Role =
      addresses.length <= 1 && (self === undefined || addresses.length === 0 || addresses[0] === self)
        ? 'alone'
        : self !== undefined && conditionWriter(addresses) === self
          ? 'writer'
          : 'reader';
    this.addresses = addresses;
    if (role === this.role) return;
    // Another replica may have written meanwhile: what this one took before says nothing of the objects now.
    if (role === 'alone') this.local.retake();
    this.taken.clear();
    this.untaken.clear();
    this.summed = new Map();
    this.role = role;
  }

  /** What this replica writes as it is: `alone`, `writer` or `reader`. */
  get currentRole(): Role {
    return this.role;
  }

  take(): ReconciledUpdate[] {
    if (this.role === 'alone') return this.local.take();
    if (this.role === 'reader') return [];
    this.round ??= this.sum()
      .catch((error: unknown) =>
        this.options.log?.error({ error: error instanceof Error ? error.message : String(error) }, 'summing propagation failed'),
      )
      .finally(() => (this.round = undefined));
    const updates = [...this.untaken.values()];
    this.untaken.clear();
    return updates;
  }

  condition(kind: string, namespace: string, name: string): ReconciledCondition | undefined {
    if (this.role === 'alone') return this.local.condition(kind, namespace, name);
    if (this.role === 'reader') return undefined;
    return this.summed.get(`${kind}/${namespace}/${name}`)?.condition;
  }

  /** One writer's round: every peer's counts (in parallel, each within the timeout), then the sums. */
  async sum(): Promise<void> {
    const self = this.options.self;
    const peers = this.addresses.filter((a) => a !== self);
    const expected = this.addresses.length;
    const answers = await Promise.all(
      peers.map((address) =>
        this.fetchReport(address).then(
          (report) => {
            if (this.failing.delete(address))
              this.options.log?.info({ replica: address }, 'control plane replica reports propagation again');
            return report;
          },
          (error: unknown) => {
            if (!this.failing.has(address)) {
              this.failing.add(address);
              this.options.log?.warn(
                { replica: address, error: error instanceof Error ? error.message : String(error) },
                'control plane replica did not report propagation: Reconciled is Unknown',
              );
            }
            return undefined;
          },
        ),
      ),
    );
    // The role may have changed while the peers answered: a round for an old role is dropped.
    if (this.role !== 'writer') return;
    const own = this.local.counts();
    const reports = [{ objects: own }, ...answers.filter((a): a is PropagationReport => a !== undefined)];
    const summed = new Map<string, ReconciledUpdate>();
    // The writer's own model decides which objects get a condition (it writes them with its verdicts).
    for (const key of Object.keys(own)) {
      const counts = reports.map((r) => r.objects[key]).filter((c): c is ObjectCounts => c !== undefined);
      const condition = summedCondition(expected, counts);
      // Keys are `kind/namespace/name`; Kubernetes names hold no '/'.
      const [kind = '', namespace = '', name = ''] = key.split('/');
      const update = { kind, namespace, name, condition };
      summed.set(key, update);
      const text = `${condition.observedGeneration ?? ''} ${condition.status} ${condition.message}`;
      if (this.taken.get(key) === text) continue;
      this.taken.set(key, text);
      this.untaken.set(key, update);
    }
    for (const key of this.taken.keys()) if (!summed.has(key)) this.taken.delete(key);
    this.summed = summed;
  }
}
