// Where the mesh's control plane runs: every MeshInstallation (cluster-scoped) names
// its namespace; its weftd pods carry the installation's labels.
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { labels } from '../api/labels.js';
import { meshInstallationApi, type MeshInstallation } from '../api/mesh-installation.js';
import { controlPlaneNames } from '../cdk8s/names.js';
import { CliError } from './cli-error.js';
import type { ClusterConnection } from './cluster-connection.js';
import { statusCodeOf } from './kube-error-message.js';

export const noInstallation = 'no MeshInstallation found; run `weft install`';

export interface WeftdPod {
  name: string;
  namespace: string;
  installation: string;
  version?: string;
  ip?: string;
}

export interface ControlPlane {
  installation: MeshInstallation;
  namespace: string;
  weftdDeployment: string;
  pods: WeftdPod[];
}

/** Every MeshInstallation; none (or no CRD) is an empty list. */
export async function listInstallations(connection: ClusterConnection): Promise<MeshInstallation[]> {
  const { group, version, plural } = meshInstallationApi;
  const custom = connection.config.makeApiClient(CustomObjectsApi);
  try {
    const list = (await custom.listClusterCustomObject({ group, version, plural })) as { items?: MeshInstallation[] };
    return (list.items ?? []).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  } catch (error) {
    // No CRD: Weft was never installed on this cluster.
    if (statusCodeOf(error) === 404) return [];
    throw connection.explain(error, 'listing MeshInstallations');
  }
}

const serving = (pod: V1Pod) => pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp;

export async function weftdPods(connection: ClusterConnection, installation: MeshInstallation): Promise<WeftdPod[]> {
  const namespace = installation.spec.namespace;
  const selector = `${labels.name}=weftd,${labels.installation}=${installation.metadata.name}`;
  const pods = await connection.call(`listing weftd pods in ${namespace}`, () =>
    connection.config.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, labelSelector: selector }),
  );
  return pods.items
    .filter(serving)
    .map((pod) => ({
      name: pod.metadata?.name ?? '',
      namespace,
      installation: installation.metadata.name,
      ...(pod.metadata?.labels?.[labels.version] ? { version: pod.metadata.labels[labels.version] } : {}),
      ...(pod.status?.podIP ? { ip: pod.status.podIP } : {}),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Every installation's control plane; a cluster without one is an error that says how to install. */
export async function findControlPlanes(connection: ClusterConnection): Promise<ControlPlane[]> {
  const installations = await listInstallations(connection);
  if (installations.length === 0) throw new CliError(noInstallation);
  return Promise.all(
    installations.map(async (installation) => ({
      installation,
      namespace: installation.spec.namespace,
      weftdDeployment: controlPlaneNames(installation).weftd,
      pods: await weftdPods(connection, installation),
    })),
  );
}
