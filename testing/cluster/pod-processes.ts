// A "kubelet" for Weft's own images in the local cluster: for every Running kwok
// pod whose container image matches, run the real process, bound to the pod's IP,
// with the pod's env and a token of the pod's ServiceAccount (so RBAC is real).
// When the pod goes away, so does the process.
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
}

interface Running {
  uid: string;
  process: ManagedProcess;
}

export class PodProcessRunner {
  private readonly core: CoreV1Api;
  private readonly running = new Map<string, Running>();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: PodProcessOptions,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
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
    for (const [key, run] of this.running) {
      const want = wanted.get(key);
      if (!want || want.pod.metadata?.uid !== run.uid || !run.process.running) {
        this.running.delete(key);
        await run.process.stop();
      }
    }
    for (const [key, { pod, container, argv }] of wanted) {
      if (this.running.has(key) || this.stopped) continue;
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
