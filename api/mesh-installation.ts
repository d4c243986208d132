// The MeshInstallation API (mesh.weft.dev/v1alpha1). Field types are generated
// from the CRD schema in crds/; this file adds only identity and helpers.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { MeshInstallationSpec, MeshInstallationStatus } from './mesh-installation.types.js';

export type { MeshInstallationSpec, MeshInstallationStatus };

export const meshInstallationApi = {
  group: 'mesh.weft.dev',
  version: 'v1alpha1',
  plural: 'meshinstallations',
  kind: 'MeshInstallation',
  apiVersion: 'mesh.weft.dev/v1alpha1',
} as const;

export interface MeshInstallation {
  apiVersion: typeof meshInstallationApi.apiVersion;
  kind: typeof meshInstallationApi.kind;
  metadata: V1ObjectMeta & { name: string };
  spec: MeshInstallationSpec;
  status?: MeshInstallationStatus;
}

export type ConditionType = 'Reconciled' | 'Ready' | 'Degraded';
export type MeshCondition = NonNullable<MeshInstallationStatus['conditions']>[number];
