// Writes each Istio object's verdict (networking.istio.io and security.istio.io)
// to its status subresource, only when it changes, one write at a time. Thin:
// the verdicts come from traffic/config-analysis. Gateway API objects' statuses
// (computed whole by gatewayapi/, conditions with their transition times) go the same way.
// With a propagation source (model/propagation.ts), each status also carries the `Reconciled`
// condition: with the verdict when that is written, and on its own when only it changed, taken
// once per interval (1 s), so an object's status is written at most once a second for it
// however many proxies ACK, and only when its text changed.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../lib/logger.js';
import { statusOf, type ConfigVerdict } from '../traffic/config-analysis.js';
import { istioKinds, type IstioObject } from './mesh-model-of.js';
import type { GatewayApiStatus } from './gateway-api-source.js';
import type { ReconciledCondition, ReconciledUpdate } from './propagation.js';

/** What the writer reads of config propagation (model/propagation.ts `Propagation`). */
export interface PropagationSource {
  /** The `Reconciled` conditions that changed since the last call. */
  take(): ReconciledUpdate[];
  /** One object's `Reconciled` condition now; undefined when it is not tracked. */
  condition(kind: string, namespace: string, name: string): ReconciledCondition | undefined;
}

/** The object as last seen, by API group (Istio's `Gateway` and the Gateway API's share a kind), kind, namespace and name. */
type StatusOf = (
  group: string,
  kind: string,
  namespace: string,
  name: string,
) => (IstioObject & { status?: Record<string, unknown> }) | undefined;

/**
 * `status` with `condition` as its `Reconciled` condition (replacing any), its lastTransitionTime
 * kept from `previous` while the condition's status is unchanged, as Kubernetes conditions do.
 */
export function withReconciled(
  status: Record<string, unknown>,
  condition: ReconciledCondition,
  previous: Record<string, unknown> | undefined,
  now: string,
): Record<string, unknown> {
  const conditionsOf = (s: Record<string, unknown> | undefined) => (s?.['conditions'] as Array<Record<string, unknown>> | undefined) ?? [];
  const before = conditionsOf(previous).find((c) => c['type'] === 'Reconciled');
  const lastTransitionTime = before?.['status'] === condition.status ? (before['lastTransitionTime'] ?? now) : now;
  return {
    ...status,
    conditions: [...conditionsOf(status).filter((c) => c['type'] !== 'Reconciled'), { ...condition, lastTransitionTime }],
  };
}

/** The `Reconciled` condition a status has, if any. */
function keptReconciled(status: Record<string, unknown> | undefined): ReconciledCondition | undefined {
  const conditions = (status?.['conditions'] as Array<Record<string, unknown>> | undefined) ?? [];
  return conditions.find((c) => c['type'] === 'Reconciled') as ReconciledCondition | undefined;
}

/** Tries of one `Reconciled` write before it waits for the condition's next change. */
const propagationWriteAttempts = 3;

const verdictKey = (kind: string, namespace: string, name: string) => `${kind}/${namespace}/${name}`;

const comparable = (status: Record<string, unknown> | undefined) =>
  JSON.stringify(status ?? {}, (key, value: unknown) => (key === 'lastTransitionTime' ? undefined : value));

export class ConfigStatusWriter {
  private readonly api: CustomObjectsApi;
  private pending: ConfigVerdict[] = [];
  private pendingGatewayApi: GatewayApiStatus[] = [];
  /** `Reconciled` conditions that changed, by object, the latest of each. */
  private readonly pendingPropagation = new Map<string, ReconciledUpdate>();
  /** Objects whose `Reconciled` write failed, with the attempts so far: written again (the condition then) at the next take. */
  private readonly retries = new Map<string, { update: ReconciledUpdate; attempts: number }>();
  /** The verdict last published of each object: a `Reconciled` change is written with it. */
  private verdicts = new Map<string, ConfigVerdict>();
  private readonly timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    config: KubeConfig,
    private readonly current: StatusOf,
    private readonly log: Logger,
    private readonly propagation?: PropagationSource,
    propagationIntervalMs = 1_000,
  ) {
    this.api = config.makeApiClient(CustomObjectsApi);
    if (propagation) {
      this.timer = setInterval(() => this.takePropagation(), propagationIntervalMs);
      this.timer.unref();
    }
  }

  /** Stops taking propagation changes (writes under way finish). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The latest verdicts; older pending ones are replaced. */
  publish(verdicts: ConfigVerdict[]): void {
    this.pending = verdicts;
    this.verdicts = new Map(verdicts.map((v) => [verdictKey(v.kind, v.namespace, v.name), v]));
    if (!this.running) void this.drain();
  }

  private takePropagation(): void {
    const updates = this.propagation?.take() ?? [];
    for (const [key, { update }] of this.retries) {
      // Retried with the condition as it is now: an older one must not overwrite a newer one written meanwhile.
      const condition = this.propagation?.condition(update.kind, update.namespace, update.name);
      if (condition) this.pendingPropagation.set(key, { ...update, condition });
    }
    for (const update of updates) this.pendingPropagation.set(verdictKey(update.kind, update.namespace, update.name), update);
    if (this.pendingPropagation.size > 0 && !this.running) void this.drain();
  }

  /** The latest Gateway API statuses (gatewayapi/gateway-api-config.ts); older pending ones are replaced. */
  publishGatewayApi(statuses: GatewayApiStatus[]): void {
    this.pendingGatewayApi = statuses;
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.length > 0 || this.pendingGatewayApi.length > 0 || this.pendingPropagation.size > 0) {
        const verdicts = this.pending;
        this.pending = [];
        for (const verdict of verdicts) {
          if (this.pending.length > 0) break;
          await this.write(verdict);
        }
        const statuses = this.pendingGatewayApi;
        this.pendingGatewayApi = [];
        for (const status of statuses) {
          if (this.pendingGatewayApi.length > 0) break;
          await this.writeGatewayApi(status);
        }
        const updates = [...this.pendingPropagation];
        this.pendingPropagation.clear();
        for (const [key, update] of updates) {
          // Without a verdict yet, the verdict's first write carries the condition.
          const verdict = this.verdicts.get(key);
          if (!verdict) continue;
          const attempts = (this.retries.get(key)?.attempts ?? 0) + 1;
          this.retries.delete(key);
          // A lost write would leave the condition stale until its text changes again: a few more tries, a second apart.
          if (!(await this.write(verdict, update.condition)) && attempts < propagationWriteAttempts)
            this.retries.set(key, { update, attempts });
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** One Gateway API object's status, when it differs from the object's (transition times aside). */
  private async writeGatewayApi(next: GatewayApiStatus): Promise<void> {
    const object = this.current('gateway.networking.k8s.io', next.kind, next.namespace ?? '', next.name);
    if (!object || comparable(next.status) === comparable(object.status)) return;
    const target = { group: 'gateway.networking.k8s.io', version: next.version, plural: next.plural, name: next.name };
    const body = [{ op: 'add', path: '/status', value: next.status }];
    try {
      if (next.namespace) await this.api.patchNamespacedCustomObjectStatus({ ...target, namespace: next.namespace, body });
      else await this.api.patchClusterCustomObjectStatus({ ...target, body });
    } catch (error) {
      // The object may be gone or changed meanwhile; the next rebuild writes again.
      this.log.warn(
        { kind: next.kind, namespace: next.namespace, name: next.name, error: error instanceof Error ? error.message : String(error) },
        'could not write the status of a Gateway API object',
      );
    }
  }

  /** One Istio object's status: its verdict, and its `Reconciled` condition (`reconciled`, else the source's now). */
  /** Whether the status is as it should be (written, or no write needed); false when the write failed. */
  private async write(verdict: ConfigVerdict, reconciled?: ReconciledCondition): Promise<boolean> {
    const kind = istioKinds.find((k) => k.kind === verdict.kind);
    if (!kind) return true;
    const object = this.current(kind.group, verdict.kind, verdict.namespace, verdict.name);
    if (!object) return true;
    const now = new Date().toISOString();
    const condition = reconciled ?? this.propagation?.condition(verdict.kind, verdict.namespace, verdict.name);
    const verdictStatus = statusOf(verdict, object.status, now);
    // No condition from the source: another control plane replica writes it (propagation-replicas.ts), or not yet; kept.
    const kept = this.propagation && !condition ? keptReconciled(object.status) : undefined;
    const next = condition
      ? withReconciled(verdictStatus, condition, object.status, now)
      : kept
        ? withReconciled(verdictStatus, kept, object.status, now)
        : verdictStatus;
    if (comparable(next) === comparable(object.status)) return true;
    try {
      await this.api.patchNamespacedCustomObjectStatus({
        group: kind.group,
        version: 'v1',
        namespace: verdict.namespace,
        plural: kind.plural,
        name: verdict.name,
        body: [{ op: 'add', path: '/status', value: next }],
      });
    } catch (error) {
      // The object may be gone or changed meanwhile; the next rebuild writes again.
      this.log.warn(
        {
          kind: verdict.kind,
          namespace: verdict.namespace,
          name: verdict.name,
          error: error instanceof Error ? error.message : String(error),
        },
        'could not write the status of an Istio object',
      );
      return false;
    }
    return true;
  }
}
