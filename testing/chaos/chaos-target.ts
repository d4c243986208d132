// What the chaos runs against: a real local cluster with Weft installed as a user
// would (install.yaml and the sample MeshInstallation), weftd running as the process
// of its own pod. The chaos talks to that weftd as proxies and the API server do:
// the CA on 15012 (TLS, trust bundle from `istio-ca-root-cert`), the webhooks on
// 15017 (HTTPS, the webhook configuration's caBundle), metrics on 15014.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ensureClusterBinaries } from '../cluster/binaries.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import type { ManagedProcess } from '../cluster/managed-process.js';
import { installMeshDemo } from '../cluster/mesh-demo.js';
import type { PodProcessRunner } from '../cluster/pod-processes.js';

/** The name weftd's serving certificates carry, as the agent's CA_ADDR and the webhook Service use it. */
export const weftdServiceName = 'weftd.weft-system.svc';

export interface ChaosTarget {
  cluster: LocalCluster;
  kubeConfig: KubeConfig;
  /** The weftd pod's IP; its process listens there. */
  weftdIp: string;
  /** The weftd process itself: a crash shows as `running === false`. */
  weftd: ManagedProcess;
  /** PEM roots that verify weftd's serving certificates. */
  trustBundle: string;
  /** The cluster's ServiceAccount signing key (PEM) and the API server's issuer: to mint tokens as the API server would, with claims it never would. */
  serviceAccountKeyPem: string;
  issuer: string;
  stop(): Promise<void>;
}

export async function startChaosTarget(repositoryRoot: string, progress: (line: string) => void): Promise<ChaosTarget> {
  const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
  progress('starting the local cluster');
  const cluster = await LocalCluster.start({ binaries });
  let runner: PodProcessRunner | undefined;
  try {
    runner = await installMeshDemo(cluster, binaries, repositoryRoot, (line) => progress(line));
    const target = await chaosTargetOf(cluster, runner);
    const started = runner;
    return {
      ...target,
      stop: async () => {
        await started.stop();
        await cluster.stop();
      },
    };
  } catch (error) {
    await runner?.stop();
    await cluster.stop({ keepLogs: true });
    throw error;
  }
}

/** The target on a cluster where Weft is already installed (`installMeshDemo`); `stop` is left to the caller. */
export async function chaosTargetOf(cluster: LocalCluster, runner: PodProcessRunner): Promise<ChaosTarget> {
  const kubeConfig = cluster.kubeConfig();
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace: 'weft-system', labelSelector: 'app.kubernetes.io/name=weftd' });
  const pod = pods.items.find((p) => p.status?.phase === 'Running' && p.status.podIP && !p.metadata?.deletionTimestamp);
  if (!pod) throw new Error('no running weftd pod after the install');
  const weftd = [...runner.processes()].find(([key]) => key.startsWith(`weft-system/${pod.metadata?.name}/`))?.[1];
  if (!weftd) throw new Error(`no process runs weftd pod ${pod.metadata?.name}`);
  const bundle = await core.readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace: 'weft-system' });
  const trustBundle = bundle.data?.['root-cert.pem'];
  if (!trustBundle) throw new Error('istio-ca-root-cert in weft-system has no root-cert.pem');
  return {
    cluster,
    kubeConfig,
    weftdIp: pod.status?.podIP as string,
    weftd,
    trustBundle,
    serviceAccountKeyPem: readFileSync(cluster.pki.serviceAccountKeyFile, 'utf8'),
    issuer: 'https://kubernetes.default.svc.cluster.local',
    stop: async () => {},
  };
}

/** weftd's metrics on 15014, as name{labels} → value. */
export async function scrapeMetrics(target: ChaosTarget): Promise<Map<string, number>> {
  return scrapeWeftdMetrics(target.weftdIp);
}

/** The metrics of the weftd process at `ip` (15014), as name{labels} → value. */
export async function scrapeWeftdMetrics(ip: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${ip}:15014/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

/** A metric's values by one label (`weft_ca_csr_refused_total` by `reason`). */
export function byLabel(metrics: Map<string, number>, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  const pattern = new RegExp(`^${name}\\{(.*)\\}$`);
  for (const [key, value] of metrics) {
    const labels = pattern.exec(key)?.[1];
    if (labels === undefined) continue;
    const found = new RegExp(`(?:^|,)${label}="([^"]*)"`).exec(labels);
    out.set(found?.[1] ?? '', (out.get(found?.[1] ?? '') ?? 0) + value);
  }
  return out;
}

/**
 * weftd's log from a byte offset: lines at error level or above (pino levels 50, 60) and
 * lines that are not JSON at all (a stack trace printed by Node when an exception escapes).
 */
export function logProblemsSince(process: ManagedProcess, offset: number): string[] {
  const size = statSync(process.logPath).size;
  if (size <= offset) return [];
  const buffer = Buffer.alloc(size - offset);
  const fd = openSync(process.logPath, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, offset);
  } finally {
    closeSync(fd);
  }
  const problems: string[] = [];
  for (const line of buffer.toString('utf8').split('\n')) {
    if (!line.trim()) continue;
    let level: number;
    try {
      level = Number((JSON.parse(line) as { level?: unknown }).level ?? 0);
    } catch {
      problems.push(line);
      continue;
    }
    if (level >= 50) problems.push(line);
  }
  return problems;
}

export const logSize = (process: ManagedProcess): number => statSync(process.logPath).size;

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}
