// The Kubernetes Gateway API's CRDs on a test cluster, exactly as install.yaml carries them.
import { stringify } from 'yaml';
import { readGatewayApiCrds } from '../../api/crds.js';
import { ensureClusterBinaries } from '../cluster/binaries.js';
import type { LocalCluster } from '../cluster/local-cluster.js';
import { kubectl } from './kube-helpers.js';

/**
 * Applies the vendored standard-channel Gateway API CRDs (`api/crds.ts` `readGatewayApiCrds`, what
 * install.yaml carries after Weft's and Istio's) with `kubectl apply --server-side` and waits until each
 * is Established. Throws with kubectl's stderr when either step fails.
 */
export async function installGatewayApiCrds(cluster: LocalCluster): Promise<void> {
  const { kubectl: kubectlPath } = await ensureClusterBinaries(undefined, { allowBuild: false });
  const crds = readGatewayApiCrds();
  const applied = kubectl(cluster, kubectlPath, ['apply', '--server-side', '-f', '-'], crds.map((crd) => stringify(crd)).join('---\n'));
  if (applied.status !== 0) throw new Error(`applying the Gateway API CRDs failed: ${applied.stderr}`);
  const names = crds.map((crd) => `crd/${(crd['metadata'] as { name: string }).name}`);
  const waited = kubectl(cluster, kubectlPath, ['wait', '--for=condition=Established', '--timeout=60s', ...names]);
  if (waited.status !== 0) throw new Error(`the Gateway API CRDs did not become Established: ${waited.stderr}`);
}
