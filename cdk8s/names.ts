import type { MeshInstallation } from '../api/mesh-installation.js';

/** Stable object names (no hashes) for one installation; a revision suffixes them as Istio does. */
export function controlPlaneNames(installation: MeshInstallation) {
  const { namespace, revision } = installation.spec;
  const suffix = revision ? `-${revision}` : '';
  return {
    namespace,
    weftd: `weftd${suffix}`,
    meshConfigMap: `weft${suffix}`,
    injectorConfigMap: `weft-sidecar-injector${suffix}`,
    // Cluster-scoped names include the namespace so that installations never collide.
    clusterRole: `weftd-${namespace}${suffix}`,
    mutatingWebhook: `weft-sidecar-injector-${namespace}${suffix}`,
    validatingWebhook: `weft-validator-${namespace}${suffix}`,
  };
}
