import { computeStatus, statusEqual, type DeploymentObservation } from './conditions.js';

const t0 = new Date('2026-01-01T00:00:00Z');
const t1 = new Date('2026-01-01T00:05:00Z');
const deployment = (ready: number, desired = 2, observedLatest = true): DeploymentObservation => ({
  name: 'weftd',
  desiredReplicas: desired,
  readyReplicas: ready,
  updatedReplicas: ready,
  availableReplicas: ready,
  replicas: ready,
  observedLatest,
});
const byType = (status: ReturnType<typeof computeStatus>, type: string) => status.conditions?.find((c) => c.type === type);

describe('computeStatus', () => {
  it('is Ready only when every desired weftd replica is available and up to date', () => {
    const notReady = computeStatus(3, { kind: 'applied', deployment: deployment(1) }, undefined, t0);
    expect(byType(notReady, 'Reconciled')).toMatchObject({ status: 'True', reason: 'Applied', observedGeneration: 3 });
    expect(byType(notReady, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ControlPlaneNotReady',
      message: '1/2 weftd replicas ready, 1 up to date',
    });
    expect(byType(computeStatus(3, { kind: 'applied', deployment: deployment(2) }, undefined, t0), 'Ready')?.status).toBe('True');
    // A Deployment controller that has not seen the new spec yet says nothing about it.
    expect(byType(computeStatus(3, { kind: 'applied', deployment: deployment(2, 2, false) }, undefined, t0), 'Ready')?.status).toBe(
      'False',
    );
  });

  it('is not Ready during a rollout while pods of the previous spec still run (they are what is available)', () => {
    // maxSurge 100%: the new pod exists (updated) but is not ready; the old one is still available.
    const rolling = { ...deployment(1, 1), updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, replicas: 2 };
    expect(byType(computeStatus(4, { kind: 'applied', deployment: rolling }, undefined, t0), 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ControlPlaneNotReady',
      message: '1/1 weftd replicas ready, 1 up to date, 1 of the previous spec still running',
    });
    const done = { ...rolling, replicas: 1 };
    expect(byType(computeStatus(4, { kind: 'applied', deployment: done }, undefined, t0), 'Ready')?.status).toBe('True');
  });

  it('reports a failed reconcile on Reconciled, Ready and Degraded with the reason', () => {
    const status = computeStatus(
      1,
      { kind: 'failed', reason: 'NamespaceConflict', message: "MeshInstallation 'a' already owns namespace weft-system" },
      undefined,
      t0,
    );
    expect(byType(status, 'Reconciled')).toMatchObject({ status: 'False', reason: 'NamespaceConflict' });
    expect(byType(status, 'Ready')?.status).toBe('False');
    expect(byType(status, 'Degraded')).toMatchObject({
      status: 'True',
      message: "MeshInstallation 'a' already owns namespace weft-system",
    });
  });

  it('keeps transition times while a condition holds, so a steady state writes nothing', () => {
    const first = computeStatus(1, { kind: 'applied', deployment: deployment(2) }, undefined, t0);
    const again = computeStatus(1, { kind: 'applied', deployment: deployment(2) }, first, t1);
    expect(statusEqual(first, again)).toBe(true);
    const changed = computeStatus(1, { kind: 'applied', deployment: deployment(0) }, first, t1);
    expect(byType(changed, 'Ready')?.lastTransitionTime).toBe(t1.toISOString());
    expect(byType(changed, 'Reconciled')?.lastTransitionTime).toBe(t0.toISOString());
    expect(byType(changed, 'Degraded')).toMatchObject({ status: 'True', reason: 'NoReplicaAvailable' });
  });

  it('reports each gateway with its replicas and a Ready condition, and is Ready only once every gateway is', () => {
    const gateway = (ready: number, desired = 1) => ({
      kind: 'Ingress' as const,
      name: 'istio-ingressgateway',
      namespace: 'weft-system',
      deployment: { ...deployment(ready, desired), name: 'istio-ingressgateway' },
    });
    const waiting = computeStatus(2, { kind: 'applied', deployment: deployment(2), gateways: [gateway(0)] }, undefined, t0);
    expect(byType(waiting, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'GatewaysNotReady',
      message:
        '2/2 weftd replicas ready, 2 up to date; gateways not ready: weft-system/istio-ingressgateway (0/1 replicas ready, 0 up to date)',
    });
    expect(waiting.gateways).toEqual([
      {
        name: 'istio-ingressgateway',
        namespace: 'weft-system',
        kind: 'Ingress',
        desiredReplicas: 1,
        readyReplicas: 0,
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'GatewayNotReady',
            message: '0/1 replicas ready, 0 up to date',
            observedGeneration: 2,
            lastTransitionTime: t0.toISOString(),
          },
        ],
      },
    ]);
    const ready = computeStatus(2, { kind: 'applied', deployment: deployment(2), gateways: [gateway(1)] }, waiting, t1);
    expect(byType(ready, 'Ready')).toMatchObject({ status: 'True', reason: 'ControlPlaneReady' });
    expect(ready.gateways?.[0]?.conditions?.[0]).toMatchObject({
      status: 'True',
      reason: 'GatewayReady',
      lastTransitionTime: t1.toISOString(),
    });
    // Steady: nothing to write.
    expect(statusEqual(ready, computeStatus(2, { kind: 'applied', deployment: deployment(2), gateways: [gateway(1)] }, ready, t1))).toBe(
      true,
    );
    const missing = computeStatus(
      2,
      { kind: 'applied', deployment: deployment(2), gateways: [{ ...gateway(0), deployment: undefined }] },
      ready,
      t1,
    );
    expect(missing.gateways?.[0]?.conditions?.[0]).toMatchObject({ reason: 'DeploymentNotFound', message: 'Deployment not found' });
    // A gateway taken out of the spec leaves the status with it.
    expect(computeStatus(3, { kind: 'applied', deployment: deployment(2), gateways: [] }, ready, t1).gateways).toBeUndefined();
    // A failed reconcile observed nothing new: the last entries stay.
    expect(computeStatus(3, { kind: 'failed', reason: 'ApplyFailed', message: 'x' }, ready, t1).gateways).toEqual(ready.gateways);
  });
});
