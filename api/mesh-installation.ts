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

/** One entry of `spec.gateways.ingress` or `spec.gateways.egress` (both lists share the schema). */
export type GatewaySpec = NonNullable<MeshInstallationSpec['gateways']['ingress']>[number];
/** Which list a gateway comes from: Istio's ingressGateways or egressGateways. */
export type GatewayKind = 'Ingress' | 'Egress';
export type GatewayStatus = NonNullable<MeshInstallationStatus['gateways']>[number];
