// Small helpers for integration tests against the local cluster.
import { spawnSync } from 'node:child_process';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { LocalCluster } from '../cluster/local-cluster.js';

export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function createNamespace(kc: KubeConfig, name: string, labels: Record<string, string> = {}): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name, labels } } });
  // The ServiceAccount admission plugin refuses pods until the namespace's default account exists.
  await eventually(`ServiceAccount default in ${name}`, async () =>
    core.readNamespacedServiceAccount({ name: 'default', namespace: name }),
  );
}

/** Runs the real kubectl against the cluster, as a user would. */
export function kubectl(
  cluster: LocalCluster,
  kubectlPath: string,
  args: string[],
  input?: string,
): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(kubectlPath, args, { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath }, encoding: 'utf8', input });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
