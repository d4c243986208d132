// Status as a pure function of what the reconcile observed. Transition times move
// only when a condition's status changes, so an unchanged world writes nothing.
import type { ConditionType, MeshCondition, MeshInstallationStatus } from '../api/mesh-installation.js';

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

export type ReconcileOutcome =
  { kind: 'applied'; deployment: DeploymentObservation | undefined } | { kind: 'failed'; reason: string; message: string };

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
    const ready =
      d !== undefined &&
      d.observedLatest &&
      d.updatedReplicas >= d.desiredReplicas &&
      oldReplicas === 0 &&
      d.availableReplicas >= d.desiredReplicas;
    const progress = d
      ? `${d.readyReplicas}/${d.desiredReplicas} weftd replicas ready, ${d.updatedReplicas} up to date` +
        (oldReplicas > 0 ? `, ${oldReplicas} of the previous spec still running` : '')
      : 'weftd Deployment not found';
    next.push(condition('Ready', ready ? 'True' : 'False', ready ? 'ControlPlaneReady' : 'ControlPlaneNotReady', progress));
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

  const conditions: MeshCondition[] = next.map((c) => {
    const before = previous?.conditions?.find((p) => p.type === c.type);
    const lastTransitionTime =
      before && before.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : now.toISOString();
    return { ...c, observedGeneration: generation, lastTransitionTime };
  });
  return { observedGeneration: generation, conditions, components };
}

export function statusEqual(a: MeshInstallationStatus | undefined, b: MeshInstallationStatus): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b);
}
