// istiod (pilot-discovery) against the local cluster, for the side-by-side xDS
// benchmark: plaintext xDS on a loopback port, and nothing else istiod would do
// in a real installation (no CA, no injector, no validation webhook patching,
// no Gateway API), since weftd's bench process does none of it either.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { freePort } from '../cluster/free-port.js';
import { ManagedProcess } from '../cluster/managed-process.js';

/** RSS and CPU seconds of any process, from /proc (what `ps` shows). */
export function processUsage(pid: number): { rssBytes: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  // utime and stime are fields 14 and 15, counted after the command name's closing parenthesis.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  // USER_HZ is 100 on every Linux build that matters here.
  return { rssBytes: rssKib * 1024, cpuSeconds: ticks / 100 };
}

async function httpStatus(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** A running istiod with its plaintext xDS address. */
export interface Istiod {
  process: ManagedProcess;
  xdsAddress: string;
  startMs: number;
}

/**
 * Starts pilot-discovery and waits for its /ready (informers synced). Throws with
 * the log's tail when it exits or does not get ready within `timeoutMs`.
 */
export async function startIstiod(binary: string, kubeconfigPath: string, logDir: string, timeoutMs = 180_000): Promise<Istiod> {
  const [grpcPort, httpPort, monitoringPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const started = Date.now();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KUBECONFIG: kubeconfigPath,
    POD_NAMESPACE: 'istio-system',
    POD_NAME: 'istiod-bench',
    REVISION: 'default',
    CLUSTER_ID: 'Kubernetes',
    // No webhooks to patch, no injector, no CA: weftd's bench process serves xDS only.
    VALIDATION_WEBHOOK_CONFIG_NAME: '',
    INJECTION_WEBHOOK_CONFIG_NAME: '',
    INJECT_ENABLED: 'false',
    ENABLE_CA_SERVER: 'false',
    // Without a CA, istiod has no DNS certificate to make; "none" says so instead of warning.
    PILOT_CERT_PROVIDER: 'none',
    // The Gateway API CRDs are not installed; its controllers would only wait for them.
    PILOT_ENABLE_GATEWAY_API: 'false',
    PILOT_ENABLE_GATEWAY_API_STATUS: 'false',
    PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER: 'false',
    PILOT_ENABLE_GATEWAY_API_GATEWAYCLASS_CONTROLLER: 'false',
    // Both sides get the same two cores.
    GOMAXPROCS: '2',
  };
  const child = new ManagedProcess(
    'istiod',
    binary,
    [
      'discovery',
      '--kubeconfig',
      kubeconfigPath,
      '--grpcAddr',
      `127.0.0.1:${grpcPort}`,
      '--secureGRPCAddr',
      '',
      '--httpAddr',
      `127.0.0.1:${httpPort}`,
      '--httpsAddr',
      '',
      '--monitoringAddr',
      `127.0.0.1:${monitoringPort}`,
      '--domain',
      'cluster.local',
      '--log_output_level',
      'all:warn',
    ],
    join(logDir, 'istiod.log'),
    env,
  );
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!child.running) throw new Error(`istiod exited during start:\n${child.logTail(20)}`);
    if ((await httpStatus(`http://127.0.0.1:${httpPort}/ready`)) === 200) break;
    if (Date.now() > deadline) {
      await child.stop();
      throw new Error(`istiod was not ready within ${timeoutMs / 1000} s:\n${child.logTail(20)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { process: child, xdsAddress: `127.0.0.1:${grpcPort}`, startMs: Date.now() - started };
}
