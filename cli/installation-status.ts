// `weft status`, pure: each MeshInstallation's conditions and its components'
// health (Deployments ready, each weftd's /ready, each gateway of status.gateways) into tables or data.
import type { MeshInstallation } from '../api/mesh-installation.js';
import { orDash, renderTable, type Table } from './table.js';

export interface DeploymentHealth {
  namespace: string;
  name: string;
  /** Absent: the Deployment does not exist. */
  ready?: number;
  desired?: number;
}

export interface WeftdHealth {
  pod: string;
  ready: boolean;
  detail: string;
}

export interface InstallationHealth {
  installation: MeshInstallation;
  weftd: DeploymentHealth;
  pods: WeftdHealth[];
}

export interface MeshHealth {
  operator: DeploymentHealth;
  installations: InstallationHealth[];
}

const deploymentReady = (d: DeploymentHealth) => d.ready !== undefined && d.desired !== undefined && d.ready >= d.desired && d.desired > 0;
const replicas = (d: DeploymentHealth) => (d.ready === undefined ? 'missing' : `${d.ready}/${d.desired ?? 0}`);
const condition = (mi: MeshInstallation, type: string) => mi.status?.conditions?.find((c) => c.type === type);

/** Ready means: the operator says so, and every component we can see agrees. */
export function isHealthy(health: MeshHealth): boolean {
  return (
    deploymentReady(health.operator) &&
    health.installations.every(
      (i) =>
        condition(i.installation, 'Ready')?.status === 'True' &&
        deploymentReady(i.weftd) &&
        i.pods.length > 0 &&
        i.pods.every((p) => p.ready),
    )
  );
}

export function installationsTable(health: MeshHealth): Table {
  return {
    headers: ['NAME', 'PROFILE', 'NAMESPACE', 'REVISION', 'READY', 'REASON'],
    rows: health.installations.map(({ installation }) => {
      const ready = condition(installation, 'Ready');
      return [
        installation.metadata.name,
        installation.spec.profile,
        installation.spec.namespace,
        installation.spec.revision || 'default',
        orDash(ready?.status ?? 'Unknown'),
        orDash(ready?.reason),
      ];
    }),
  };
}

export function conditionsTable(installation: MeshInstallation): Table {
  return {
    headers: ['CONDITION', 'STATUS', 'REASON', 'MESSAGE', 'SINCE'],
    rows: (installation.status?.conditions ?? []).map((c) => [
      c.type,
      c.status,
      orDash(c.reason),
      orDash(c.message),
      orDash(c.lastTransitionTime),
    ]),
  };
}

export function componentsTable(health: MeshHealth): Table {
  const rows: string[][] = [
    [
      `deployment/${health.operator.name}`,
      health.operator.namespace,
      replicas(health.operator),
      deploymentReady(health.operator) ? 'ok' : 'not ready',
    ],
  ];
  for (const { installation, weftd, pods } of health.installations) {
    rows.push([`deployment/${weftd.name}`, weftd.namespace, replicas(weftd), deploymentReady(weftd) ? 'ok' : 'not ready']);
    for (const component of installation.status?.components ?? []) {
      if (component.name === weftd.name) continue;
      rows.push([component.name, installation.spec.namespace, component.ready ? 'yes' : 'no', orDash(component.message)]);
    }
    for (const pod of pods) rows.push([`pod/${pod.pod} /ready`, weftd.namespace, pod.ready ? 'yes' : 'no', pod.detail]);
    if (pods.length === 0) rows.push(['weftd pods', weftd.namespace, '0', 'no weftd pod is running']);
    for (const gateway of installation.status?.gateways ?? []) rows.push(gatewayRow(gateway));
  }
  return { headers: ['COMPONENT', 'NAMESPACE', 'READY', 'DETAIL'], rows };
}

type GatewayStatus = NonNullable<NonNullable<MeshInstallation['status']>['gateways']>[number];

/**
 * One gateway of the installation's `status.gateways`, as the operator last observed it: its
 * Deployment's ready and desired replicas, and its kind with `ok` or the Ready condition's message.
 */
function gatewayRow(gateway: GatewayStatus): string[] {
  const ready = gateway.conditions?.find((c) => c.type === 'Ready');
  const detail = ready?.status === 'True' ? 'ok' : (ready?.message ?? ready?.reason ?? 'not observed yet');
  return [
    `gateway/${gateway.name}`,
    gateway.namespace,
    `${gateway.readyReplicas ?? 0}/${gateway.desiredReplicas ?? 0}`,
    `${gateway.kind.toLowerCase()}: ${detail}`,
  ];
}

export function renderStatus(health: MeshHealth): string {
  const sections = [renderTable(installationsTable(health))];
  // Nobody updates the conditions while no operator runs: say so rather than show them as current.
  const stale = deploymentReady(health.operator)
    ? ''
    : `the operator is not running (${replicas(health.operator)} ready): these conditions are as it last wrote them, and may be stale\n`;
  for (const { installation } of health.installations) {
    const conditions = renderTable(conditionsTable(installation));
    sections.push(
      `MeshInstallation ${installation.metadata.name}:\n${conditions ? conditions + stale : 'no conditions yet (is the operator running?)\n'}`,
    );
  }
  sections.push(renderTable(componentsTable(health)));
  sections.push(`Mesh: ${isHealthy(health) ? 'Ready' : 'NOT READY'}\n`);
  return sections.join('\n');
}

export function statusData(health: MeshHealth): object {
  return {
    ready: isHealthy(health),
    operator: { ...health.operator, healthy: deploymentReady(health.operator) },
    installations: health.installations.map(({ installation, weftd, pods }) => ({
      name: installation.metadata.name,
      spec: { profile: installation.spec.profile, namespace: installation.spec.namespace, revision: installation.spec.revision },
      conditions: installation.status?.conditions ?? [],
      components: installation.status?.components ?? [],
      gateways: installation.status?.gateways ?? [],
      weftd: { ...weftd, healthy: deploymentReady(weftd), pods },
    })),
  };
}

/** Whether the operator has seen the latest spec of every installation. */
export const upToDate = (health: MeshHealth): boolean =>
  health.installations.every((i) => i.installation.status?.observedGeneration === i.installation.metadata.generation);

/** `weft install --wait`: one line per component, printed when it changes. */
export function progressLines(health: MeshHealth): string[] {
  const op = health.operator;
  const lines = [`operator: deployment ${op.namespace}/${op.name} ${op.ready === undefined ? 'not created yet' : `${replicas(op)} ready`}`];
  for (const { installation, weftd, pods } of health.installations) {
    const name = installation.metadata.name;
    const ready = condition(installation, 'Ready');
    lines.push(
      ready && installation.status?.observedGeneration === installation.metadata.generation
        ? `MeshInstallation ${name}: Ready=${ready.status}${ready.reason ? ` (${ready.reason}${ready.message ? `: ${ready.message}` : ''})` : ''}`
        : `MeshInstallation ${name}: waiting for the operator to reconcile it`,
    );
    lines.push(
      `weftd: deployment ${weftd.namespace}/${weftd.name} ${weftd.ready === undefined ? 'not created yet' : `${replicas(weftd)} ready`}`,
    );
    for (const pod of pods)
      lines.push(`weftd: pod ${weftd.namespace}/${pod.pod} ${pod.ready ? 'serving (/ready)' : `not serving yet: ${pod.detail}`}`);
  }
  return lines;
}
