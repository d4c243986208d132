// Status as a pure function of what the reconcile observed. Transition times move
// only when a condition's status changes, so an unchanged world writes nothing.
import type { ConditionType, GatewayKind, GatewayStatus, MeshCondition, MeshInstallationStatus } from '../api/mesh-installation.js';

export interface DeploymentObservation {
  name: string;
  desiredReplicas: number;
  readyReplicas: number;
  updatedReplicas: number;
  availableReplicas: number;
  /** Pods of every revision (`status.replicas`): more than `updatedReplicas` while old weftd pods still run. */
  replicas: number;
  /** False while the Deployment controller has not yet seen the latest spec. */
  observedLatest: boolean;
}

/** A gateway of the spec (or the profile) and its Deployment as read after the apply. */
export interface GatewayObservation {
  kind: GatewayKind;
  name: string;
  namespace: string;
  deployment: DeploymentObservation | undefined;
}

export type ReconcileOutcome =
  | { kind: 'applied'; deployment: DeploymentObservation | undefined; gateways?: GatewayObservation[] }
  | { kind: 'failed'; reason: string; message: string };

/**
 * Whether a Deployment's rollout is done, as `kubectl rollout status` decides: every replica
 * updated, none of an old revision left, all available.
 */
function rolledOut(d: DeploymentObservation | undefined): boolean {
  if (!d) return false;
  const oldReplicas = Math.max(0, d.replicas - d.updatedReplicas);
  return d.observedLatest && d.updatedReplicas >= d.desiredReplicas && oldReplicas === 0 && d.availableReplicas >= d.desiredReplicas;
}

type Status = 'True' | 'False' | 'Unknown';
const condition = (type: ConditionType, status: Status, reason: string, message: string) => ({ type, status, reason, message });

export function computeStatus(
  generation: number,
  outcome: ReconcileOutcome,
  previous: MeshInstallationStatus | undefined,
  now: Date,
): MeshInstallationStatus {
  const next = [];
  const components: NonNullable<MeshInstallationStatus['components']> = [];
  if (outcome.kind === 'failed') {
    next.push(condition('Reconciled', 'False', outcome.reason, outcome.message));
    next.push(condition('Ready', 'False', outcome.reason, 'the control plane is not reconciled; see the Reconciled condition'));
    next.push(condition('Degraded', 'True', outcome.reason, outcome.message));
  } else {
    next.push(condition('Reconciled', 'True', 'Applied', 'every control-plane object matches the spec'));
    const d = outcome.deployment;
    // As `kubectl rollout status` decides a rollout is done: every replica updated, none of an old
    // revision left, all available. While old pods remain, availableReplicas counts them, and weftd's
    // readiness (webhook caBundle, injector config, mesh model) would speak for the old spec only.
    const oldReplicas = d ? Math.max(0, d.replicas - d.updatedReplicas) : 0;
    const ready = rolledOut(d);
    const progress = d
      ? `${d.readyReplicas}/${d.desiredReplicas} weftd replicas ready, ${d.updatedReplicas} up to date` +
        (oldReplicas > 0 ? `, ${oldReplicas} of the previous spec still running` : '')
      : 'weftd Deployment not found';
    // Ready means the whole installation serves, gateways included, as Istio's install waits for them.
    const waiting = (outcome.gateways ?? []).filter((g) => !rolledOut(g.deployment));
    if (!ready) next.push(condition('Ready', 'False', 'ControlPlaneNotReady', progress));
    else if (waiting.length > 0)
      next.push(
        condition(
          'Ready',
          'False',
          'GatewaysNotReady',
          `${progress}; gateways not ready: ${waiting.map((g) => `${g.namespace}/${g.name} (${gatewayProgress(g)})`).join(', ')}`,
        ),
      );
    else next.push(condition('Ready', 'True', 'ControlPlaneReady', progress));
    const degraded = d !== undefined && d.availableReplicas === 0 && d.desiredReplicas > 0;
    next.push(
      condition(
        'Degraded',
        degraded ? 'True' : 'False',
        degraded ? 'NoReplicaAvailable' : 'AsExpected',
        degraded ? progress : 'no known problem',
      ),
    );
    components.push({ name: d?.name ?? 'weftd', ready, message: progress });
  }
  // A failed reconcile observed nothing new of the gateways: their last entries stay.
  const gateways =
    outcome.kind === 'applied'
      ? (outcome.gateways ?? []).map((g) => gatewayStatus(g, generation, previous, now))
      : (previous?.gateways ?? []);

  const conditions: MeshCondition[] = next.map((c) => {
    const before = previous?.conditions?.find((p) => p.type === c.type);
    const lastTransitionTime =
      before && before.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : now.toISOString();
    return { ...c, observedGeneration: generation, lastTransitionTime };
  });
  return { observedGeneration: generation, conditions, components, ...(gateways.length > 0 ? { gateways } : {}) };
}

function gatewayProgress(g: GatewayObservation): string {
  const d = g.deployment;
  if (!d) return 'Deployment not found';
  const oldReplicas = Math.max(0, d.replicas - d.updatedReplicas);
  return (
    `${d.readyReplicas}/${d.desiredReplicas} replicas ready, ${d.updatedReplicas} up to date` +
    (oldReplicas > 0 ? `, ${oldReplicas} of the previous spec still running` : '')
  );
}

/** One gateway's entry in `status.gateways`: its replicas and a `Ready` condition (its Deployment rolled out). */
function gatewayStatus(g: GatewayObservation, generation: number, previous: MeshInstallationStatus | undefined, now: Date): GatewayStatus {
  const ready = rolledOut(g.deployment);
  const reason = ready ? 'GatewayReady' : g.deployment ? 'GatewayNotReady' : 'DeploymentNotFound';
  const status = ready ? 'True' : 'False';
  const before = previous?.gateways
    ?.find((p) => p.name === g.name && p.namespace === g.namespace)
    ?.conditions?.find((c) => c.type === 'Ready');
  const lastTransitionTime =
    before && before.status === status && before.lastTransitionTime ? before.lastTransitionTime : now.toISOString();
  return {
    name: g.name,
    namespace: g.namespace,
    kind: g.kind,
    desiredReplicas: g.deployment?.desiredReplicas ?? 0,
    readyReplicas: g.deployment?.readyReplicas ?? 0,
    conditions: [{ type: 'Ready', status, reason, message: gatewayProgress(g), observedGeneration: generation, lastTransitionTime }],
  };
}

export function statusEqual(a: MeshInstallationStatus | undefined, b: MeshInstallationStatus): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b);
}
