// A "kubelet" for Weft's own images in the local cluster: for every Running kwok
// pod whose container image matches, run the real process, bound to the pod's IP,
// with the pod's env and a token of the pod's ServiceAccount (so RBAC is real).
// When the pod goes away, so does the process. A process that exits while its pod
// still runs is restarted as the kubelet restarts a container: at once the first
// time, then after a back-off that doubles (CrashLoopBackOff).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { ManagedProcess } from './managed-process.js';

export interface ImageRule {
  /** Which container images this rule runs. */
  matches: (image: string) => boolean;
  /** The argv to run for a container of that image. */
  command: (container: V1Container) => string[];
}

export interface PodProcessOptions {
  server: string;
  caFile: string;
  workDir: string;
  rules: ImageRule[];
  pollMs?: number;
  /**
   * The kubelet's restart back-off for a container that exited: 10 s first, doubling up to
   * 300 s (kubelet `initialCrashLoopBackOff` and `MaxContainerBackOff`). KubeletConfiguration's
   * `crashLoopBackOff.maxContainerRestartPeriod` (feature KubeletCrashLoopBackOffMax) lowers the
   * maximum, and the initial delay with it when smaller; `maxMs` plays that setting.
   */
  crashLoopBackOff?: { initialMs?: number; maxMs?: number };
}

interface Running {
  uid: string;
  process: ManagedProcess;
}

/**
 * The kubelet's container restart back-off: client-go's flowcontrol.Backoff as kuberuntime's
 * doBackOff uses it, keyed by container, without jitter. A container that exited at `finishedAt`
 * is restarted once `mayRestart` says so, and `restarted` is then called: the first restart (or
 * the first after a quiet spell of twice the maximum) is immediate and arms the initial delay;
 * each later one waits the current delay from the exit and doubles it, up to the maximum.
 * Times in epoch ms.
 */
export class ContainerBackOff {
  private readonly entries = new Map<string, { backoffMs: number; lastUpdate: number }>();
  readonly initialMs: number;
  readonly maxMs: number;

  constructor(options: { initialMs?: number; maxMs?: number } = {}) {
    this.maxMs = options.maxMs ?? 300_000;
    this.initialMs = Math.min(options.initialMs ?? 10_000, this.maxMs);
  }

  /** The opposite of Backoff.IsInBackOffSince(key, finishedAt). */
  mayRestart(key: string, finishedAt: number, now: number): boolean {
    const entry = this.entries.get(key);
    if (!entry || finishedAt - entry.lastUpdate > 2 * this.maxMs) return true;
    return now - finishedAt >= entry.backoffMs;
  }

  /** Backoff.Next(key, finishedAt): the delay the next exit will wait. */
  restarted(key: string, finishedAt: number, now: number): number {
    const entry = this.entries.get(key);
    const backoffMs = !entry || finishedAt - entry.lastUpdate > 2 * this.maxMs ? this.initialMs : Math.min(entry.backoffMs * 2, this.maxMs);
    this.entries.set(key, { backoffMs, lastUpdate: now });
    return backoffMs;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}

export class PodProcessRunner {
  private readonly core: CoreV1Api;
  private readonly running = new Map<string, Running>();
  /** Containers that exited while their pod runs: the process, kept until restarted. */
  private readonly exited = new Map<string, Running>();
  private readonly backoff: ContainerBackOff;
  private readonly held = new Set<string>();
  private readonly restartCounts = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: PodProcessOptions,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.backoff = new ContainerBackOff(options.crashLoopBackOff);
    mkdirSync(options.workDir, { recursive: true });
  }

  start(): void {
    const loop = (): void => {
      this.syncing = this.sync()
        .catch(() => undefined)
        .then(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.options.pollMs ?? 300);
        });
    };
    loop();
  }

  /** Processes currently running, keyed by namespace/pod/container. */
  processes(): Map<string, ManagedProcess> {
    return new Map([...this.running].map(([key, run]) => [key, run.process]));
  }

  /** How often a container (namespace/pod/container) was restarted after exiting, as `restartCount`; every container's sum without a key. */
  restarts(key?: string): number {
    if (key === undefined) return [...this.restartCounts.values()].reduce((a, b) => a + b, 0);
    return this.restartCounts.get(key) ?? 0;
  }

  /**
   * Kills a pod's process with `signal` (SIGKILL by default: a crash) and resolves once it is
   * gone. The pod stays, so the process is restarted as the kubelet would restart the container,
   * unless `hold` is set: then it stays down (a node that stopped answering) until `release(key)`.
   * Throws if no process runs for `key`.
   */
  async kill(key: string, options: { signal?: NodeJS.Signals; hold?: boolean } = {}): Promise<void> {
    const run = this.running.get(key);
    if (!run?.process.running) throw new Error(`no process runs for ${key}`);
    if (options.hold) this.held.add(key);
    await run.process.kill(options.signal ?? 'SIGKILL');
  }

  /** Lets a container held down by `kill(key, { hold: true })` be restarted again. */
  release(key: string): void {
    this.held.delete(key);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.syncing;
    await Promise.all([...this.running.values()].map((run) => run.process.stop()));
    this.running.clear();
  }

  private async sync(): Promise<void> {
    const pods = (await this.core.listPodForAllNamespaces()).items;
    const wanted = new Map<string, { pod: V1Pod; container: V1Container; argv: string[] }>();
    for (const pod of pods) {
      if (pod.status?.phase !== 'Running' || !pod.status.podIP || pod.metadata?.deletionTimestamp) continue;
      for (const container of pod.spec?.containers ?? []) {
        const rule = this.options.rules.find((r) => r.matches(container.image ?? ''));
        if (rule)
          wanted.set(`${pod.metadata?.namespace}/${pod.metadata?.name}/${container.name}`, {
            pod,
            container,
            argv: rule.command(container),
          });
      }
    }
    const now = Date.now();
    // Stopped together, as each pod's own kubelet would: one by one, a standby outlives its leader's hand-over and takes the Lease.
    const stopping: Array<Promise<void>> = [];
    for (const [key, run] of this.running) {
      const want = wanted.get(key);
      if (!want || want.pod.metadata?.uid !== run.uid) {
        this.running.delete(key);
        this.backoff.forget(key);
        stopping.push(run.process.stop());
      } else if (!run.process.running) {
        // The container exited while its pod runs: the kubelet restarts it, after its back-off.
        this.running.delete(key);
        this.exited.set(key, run);
      }
    }
    await Promise.all(stopping);
    for (const [key, run] of this.exited) {
      const want = wanted.get(key);
      if (!want || want.pod.metadata?.uid !== run.uid) {
        this.exited.delete(key);
        this.backoff.forget(key);
      }
    }
    for (const [key, { pod, container, argv }] of wanted) {
      if (this.running.has(key) || this.stopped) continue;
      const previous = this.exited.get(key);
      if (previous) {
        const finishedAt = previous.process.finishedAt ?? now;
        if (this.held.has(key) || !this.backoff.mayRestart(key, finishedAt, now)) continue;
        this.backoff.restarted(key, finishedAt, now);
        this.exited.delete(key);
        this.restartCounts.set(key, (this.restartCounts.get(key) ?? 0) + 1);
      }
      const env = await this.environment(pod, container);
      const logPath = join(this.options.workDir, `${key.replaceAll('/', '_')}.log`);
      const [command, ...args] = argv;
      this.running.set(key, { uid: pod.metadata?.uid ?? '', process: new ManagedProcess(key, command as string, args, logPath, env) });
    }
  }

  private async environment(pod: V1Pod, container: V1Container): Promise<NodeJS.ProcessEnv> {
    const namespace = pod.metadata?.namespace ?? 'default';
    const name = pod.metadata?.name ?? '';
    const serviceAccount = pod.spec?.serviceAccountName ?? 'default';
    const token = await this.core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: {
        spec: {
          audiences: [],
          expirationSeconds: 24 * 3600,
          boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name, uid: pod.metadata?.uid },
        },
      },
    });
    const kubeconfig = join(this.options.workDir, `${namespace}_${name}.kubeconfig`);
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'local', cluster: { server: this.options.server, 'certificate-authority': this.options.caFile } }],
        users: [{ name: serviceAccount, user: { token: token.status?.token } }],
        contexts: [{ name: 'local', context: { cluster: 'local', user: serviceAccount, namespace } }],
        'current-context': 'local',
      }),
      { mode: 0o600 },
    );
    const fields: Record<string, string | undefined> = {
      'metadata.name': name,
      'metadata.namespace': namespace,
      'status.podIP': pod.status?.podIP,
      'spec.serviceAccountName': serviceAccount,
      'spec.nodeName': pod.spec?.nodeName,
    };
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'],
      KUBECONFIG: kubeconfig,
      POD_IP: pod.status?.podIP,
      WEFT_LOG_LEVEL: process.env['WEFT_LOG_LEVEL'],
      // For profiling the control plane where it runs (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`); unset by default.
      ...(process.env['WEFT_POD_NODE_OPTIONS'] ? { NODE_OPTIONS: process.env['WEFT_POD_NODE_OPTIONS'] } : {}),
    };
    for (const variable of container.env ?? []) {
      const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
      env[variable.name] = variable.value ?? (fieldPath ? fields[fieldPath] : undefined);
    }
    return env;
  }
}

/** Weft's image runs the weft CLI built in dist/. */
export function weftImageRule(repositoryRoot: string): ImageRule {
  return {
    matches: (image) => image.startsWith('ghcr.io/weft-mesh/weft:'),
    command: (container) => [process.execPath, join(repositoryRoot, 'dist', 'cmd', 'weft.js'), ...(container.args ?? [])],
  };
}

/**
 * Pods of `image` run as a proxyless gRPC workload: `local-grpc-agent.js` stands in for pilot-agent of the
 * `grpc-agent` template (the workload certificate from weftd's CA, the xDS bootstrap, pointing at weftd's
 * plaintext ADS of the sample MeshInstallation), then runs `appModule` (under dist/testing/workloads).
 */
export function proxylessImageRule(
  cluster: { kubeconfigPath: string; workDir: string },
  repositoryRoot: string,
  image: string,
  appModule: string,
): ImageRule {
  const workloads = join(repositoryRoot, 'dist', 'testing', 'workloads');
  return {
    matches: (candidate) => candidate === image,
    command: () => [
      process.execPath,
      join(workloads, 'local-grpc-agent.js'),
      `--kubeconfig=${cluster.kubeconfigPath}`,
      '--xds-service=weftd.weft-system:15010',
      // Each pod's stand-in for its containers' files: the bootstrap and the workload certificates.
      `--pods-dir=${join(cluster.workDir, 'pod-files')}`,
      join(workloads, appModule),
    ],
  };
}
