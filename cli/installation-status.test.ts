import { join } from 'node:path';
import { stringify } from 'yaml';
import type { MeshInstallation } from '../api/mesh-installation.js';
import { expectMatchesGolden } from '../testing/jest/golden.js';
import { isHealthy, progressLines, renderStatus, statusData, upToDate, type MeshHealth } from './installation-status.js';

const testdata = join(import.meta.dirname, 'testdata');
type GatewayStatus = NonNullable<NonNullable<MeshInstallation['status']>['gateways']>[number];
/** A gateway as the operator reports it (operator/conditions.ts): replicas and a Ready condition with the rollout's progress. */
const gateway = (name: string, kind: 'Ingress' | 'Egress', ready: number, desired: number): GatewayStatus => ({
  name,
  namespace: 'weft-system',
  kind,
  desiredReplicas: desired,
  readyReplicas: ready,
  conditions: [
    {
      type: 'Ready',
      status: ready >= desired ? 'True' : 'False',
      reason: ready >= desired ? 'GatewayReady' : 'GatewayNotReady',
      message: `${ready}/${desired} replicas ready, ${ready} up to date`,
      lastTransitionTime: '2026-11-25T10:00:05Z',
    },
  ],
});
const installation = (ready: 'True' | 'False', generation = 2): MeshInstallation => ({
  apiVersion: 'mesh.weft.dev/v1alpha1',
  kind: 'MeshInstallation',
  metadata: { name: 'default', generation: 2 },
  spec: { namespace: 'weft-system', profile: 'demo', revision: '' } as MeshInstallation['spec'],
  status: {
    observedGeneration: generation,
    conditions: [
      { type: 'Reconciled', status: 'True', reason: 'Applied', message: 'applied 14 objects', lastTransitionTime: '2026-11-25T10:00:00Z' },
      {
        type: 'Ready',
        status: ready,
        reason: ready === 'True' ? 'Ready' : 'WeftdNotReady',
        message: ready === 'True' ? 'the control plane is serving' : '0/1 weftd replicas ready',
        lastTransitionTime: '2026-11-25T10:00:05Z',
      },
      { type: 'Degraded', status: 'False', reason: 'AsExpected', lastTransitionTime: '2026-11-25T10:00:00Z' },
    ],
    components: [{ name: 'weftd', ready: ready === 'True', message: '1/1 weftd replicas ready, 1 up to date' }],
    gateways: [gateway('istio-ingressgateway', 'Ingress', ready === 'True' ? 2 : 0, 2), gateway('istio-egressgateway', 'Egress', 1, 1)],
  },
});
const healthy: MeshHealth = {
  operator: { namespace: 'weft-operator', name: 'weft-operator', ready: 2, desired: 2 },
  installations: [
    {
      installation: installation('True'),
      weftd: { namespace: 'weft-system', name: 'weftd', ready: 1, desired: 1 },
      pods: [{ pod: 'weftd-7d9f-abcde', ready: true, detail: 'ready' }],
    },
  ],
};
const starting: MeshHealth = {
  operator: { namespace: 'weft-operator', name: 'weft-operator', ready: 2, desired: 2 },
  installations: [
    {
      installation: installation('False', 1),
      weftd: { namespace: 'weft-system', name: 'weftd' },
      pods: [],
    },
  ],
};

describe('weft status', () => {
  it('renders a Ready mesh', () => {
    expect(isHealthy(healthy)).toBe(true);
    expectMatchesGolden(join(testdata, 'status-ready.txt'), renderStatus(healthy));
    expectMatchesGolden(join(testdata, 'status-ready.yaml'), stringify(statusData(healthy)));
  });

  it('renders a mesh still starting, and says it is not ready', () => {
    expect(isHealthy(starting)).toBe(false);
    expect(upToDate(starting)).toBe(false);
    expectMatchesGolden(join(testdata, 'status-starting.txt'), renderStatus(starting));
  });

  it('says the conditions may be stale while no operator runs to update them', () => {
    const operatorDown: MeshHealth = { ...healthy, operator: { ...healthy.operator, ready: 0, desired: 0 } };
    expect(isHealthy(operatorDown)).toBe(false);
    const text = renderStatus(operatorDown);
    expect(text).toContain('the operator is not running (0/0 ready): these conditions are as it last wrote them, and may be stale');
    expect(text.indexOf('may be stale')).toBeGreaterThan(text.indexOf('Degraded'));
    expect(renderStatus(healthy)).not.toContain('may be stale');
  });

  it('prints install progress one component per line', () => {
    expect(progressLines(starting)).toEqual([
      'operator: deployment weft-operator/weft-operator 2/2 ready',
      'MeshInstallation default: waiting for the operator to reconcile it',
      'weftd: deployment weft-system/weftd not created yet',
    ]);
    expect(progressLines(healthy)).toContain('MeshInstallation default: Ready=True (Ready: the control plane is serving)');
    expect(progressLines(healthy)).toContain('weftd: pod weft-system/weftd-7d9f-abcde serving (/ready)');
  });
});
