// What `make demo` does once the local cluster is up: install Weft exactly as a
// user would (kubectl apply of install.yaml and the sample MeshInstallation),
// with Weft's pods run as real processes, and report the installation's progress.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { meshInstallationApi, type MeshInstallation } from '../../api/mesh-installation.js';
import type { ClusterBinaries } from './binaries.js';
import type { LocalCluster } from './local-cluster.js';
import { PodProcessRunner, weftImageRule } from './pod-processes.js';

export async function installMeshDemo(
  cluster: LocalCluster,
  binaries: ClusterBinaries,
  repositoryRoot: string,
  progress: (line: string) => void,
  timeoutMs = 120_000,
): Promise<PodProcessRunner> {
  const installYaml = join(repositoryRoot, 'dist', 'install.yaml');
  const sample = join(repositoryRoot, 'config', 'samples', 'meshinstallation.yaml');
  if (!existsSync(installYaml)) throw new Error(`${installYaml} is missing; run 'make manifests'`);
  const kubectl = (args: string[]): void => {
    const result = spawnSync(binaries.kubectl, args, { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath }, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr.trim()}`);
  };

  const runner = new PodProcessRunner(cluster.kubeConfig(), {
    server: cluster.server,
    caFile: cluster.pki.caFile,
    workDir: join(cluster.workDir, 'logs', 'pods'),
    rules: [weftImageRule(repositoryRoot)],
  });
  runner.start();
  progress('kubectl apply --server-side -f dist/install.yaml');
  kubectl(['apply', '--server-side', '-f', installYaml]);
  kubectl(['wait', '--for=condition=Established', 'crd/meshinstallations.mesh.weft.dev', '--timeout=60s']);
  progress('kubectl apply -f config/samples/meshinstallation.yaml');
  kubectl(['apply', '-f', sample]);

  const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
  const { group, version, plural } = meshInstallationApi;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const mi = (await custom.getClusterCustomObject({ group, version, plural, name: 'default' }).catch(() => undefined)) as
      MeshInstallation | undefined;
    const ready = mi?.status?.conditions?.find((c) => c.type === 'Ready');
    const line = ready
      ? `MeshInstallation default: Ready=${ready.status} (${ready.reason}: ${ready.message})`
      : 'MeshInstallation default: waiting for the operator';
    if (line !== last) progress(line);
    last = line;
    if (ready?.status === 'True' && (await weftdServing(cluster))) return runner;
    if (Date.now() > deadline) {
      await runner.stop();
      throw new Error(
        `the MeshInstallation did not become Ready within ${timeoutMs / 1000} s; pod logs are in ${join(cluster.workDir, 'logs', 'pods')}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * kwok marks pods Ready without probing them; a real kubelet would wait for weftd's
 * readiness probe. Ask every weftd process its /ready directly instead.
 */
async function weftdServing(cluster: LocalCluster): Promise<boolean> {
  const pods = await cluster
    .kubeConfig()
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace: 'weft-system', labelSelector: 'app.kubernetes.io/name=weftd' });
  const running = pods.items.filter((pod) => pod.status?.phase === 'Running' && pod.status.podIP && !pod.metadata?.deletionTimestamp);
  if (running.length === 0) return false;
  const answers = await Promise.all(
    running.map((pod) =>
      fetch(`http://${pod.status?.podIP}:15014/ready`, { signal: AbortSignal.timeout(1_000) }).then(
        (response) => response.ok,
        () => false,
      ),
    ),
  );
  return answers.every(Boolean);
}
