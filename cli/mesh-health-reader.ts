// Reads what `weft status` and `weft install --wait` report: the operator's
// Deployment, each MeshInstallation, its weftd Deployment and each weftd's /ready.
import { AppsV1Api } from '@kubernetes/client-node';
import { operatorNamespace } from '../cdk8s/install-chart.js';
import { controlPlaneNames } from '../cdk8s/names.js';
import { CliError } from './cli-error.js';
import type { ClusterConnection } from './cluster-connection.js';
import { listInstallations, noInstallation, weftdPods } from './control-plane-locator.js';
import type { DeploymentHealth, MeshHealth } from './installation-status.js';
import { statusCodeOf } from './kube-error-message.js';
import { readReady } from './weftd-debug-client.js';

export const operatorDeployment = { namespace: operatorNamespace, name: 'weft-operator' } as const;

async function readDeployment(connection: ClusterConnection, namespace: string, name: string): Promise<DeploymentHealth> {
  try {
    const deployment = await connection.config.makeApiClient(AppsV1Api).readNamespacedDeployment({ name, namespace });
    return { namespace, name, ready: deployment.status?.readyReplicas ?? 0, desired: deployment.spec?.replicas ?? 1 };
  } catch (error) {
    if (statusCodeOf(error) === 404) return { namespace, name };
    throw connection.explain(error, `reading Deployment ${namespace}/${name}`);
  }
}

/** `only`: just this installation (install --wait); none found is an error unless `allowNone`. */
export async function readMeshHealth(
  connection: ClusterConnection,
  options: { only?: string; allowNone?: boolean } = {},
): Promise<MeshHealth> {
  const all = await listInstallations(connection);
  const installations = options.only ? all.filter((i) => i.metadata.name === options.only) : all;
  if (installations.length === 0 && !options.allowNone) throw new CliError(noInstallation);
  const [operator, ...rest] = await Promise.all([
    readDeployment(connection, operatorDeployment.namespace, operatorDeployment.name),
    ...installations.map(async (installation) => {
      const names = controlPlaneNames(installation);
      const [weftd, pods] = await Promise.all([
        readDeployment(connection, names.namespace, names.weftd),
        weftdPods(connection, installation),
      ]);
      const ready = await Promise.all(pods.map(async (pod) => ({ pod: pod.name, ...(await readReady(connection, pod)) })));
      return { installation, weftd, pods: ready };
    }),
  ]);
  return { operator: operator as DeploymentHealth, installations: rest as MeshHealth['installations'] };
}
