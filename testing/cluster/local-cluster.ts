// A real Kubernetes control plane on this machine: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, and kwok standing in for kubelets.
// Nothing is faked: tests talk to the same API a cluster serves.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, type V1Node } from '@kubernetes/client-node';
import { createClusterPki, type ClusterPki } from './cluster-pki.js';
import type { ClusterBinaries } from './binaries.js';
import { freePort } from './free-port.js';
import { writeKubeconfig } from './kubeconfig.js';
import { ManagedProcess } from './managed-process.js';
import { sandboxAddressing } from '../sandbox/addressing.js';

export interface LocalClusterOptions {
  binaries: ClusterBinaries;
  /** Fake nodes to create; pods are scheduled onto them and get IPs from their podCIDR. */
  nodes?: number;
  /** Folder for certificates, data and logs; a fresh temporary folder by default. */
  workDir?: string;
  progress?: (line: string) => void;
  startTimeoutMs?: number;
}

export class LocalCluster {
  private stopped = false;
  private failure: string | undefined;

  private constructor(
    readonly workDir: string,
    readonly server: string,
    /** Admin kubeconfig (client certificate in system:masters). */
    readonly kubeconfigPath: string,
    readonly pki: ClusterPki,
    private readonly processes: ManagedProcess[],
    readonly nodeNames: string[],
  ) {
    for (const child of processes) {
      child.watchUnexpectedExit((message) => {
        this.failure ??= message;
      });
    }
  }

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const progress = options.progress ?? (() => {});
    const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'weft-cluster-'));
    const logs = join(workDir, 'logs');
    const pkiDir = join(workDir, 'pki');
    mkdirSync(logs, { recursive: true });
    mkdirSync(pkiDir, { recursive: true });
    const net = sandboxAddressing;
    const processes: ManagedProcess[] = [];
    const deadline = Date.now() + (options.startTimeoutMs ?? 180_000);
    const bin = options.binaries;

    const spawnComponent = (name: string, command: string, args: string[]): ManagedProcess => {
      const child = new ManagedProcess(name, command, args, join(logs, `${name}.log`));
      processes.push(child);
      return child;
    };

    try {
      progress('generating cluster certificates');
      const pki = createClusterPki(pkiDir, net.kubernetesServiceIp);

      const [etcdClient, etcdPeer, apiPort, kwokPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
      progress('starting etcd');
      const etcd = spawnComponent('etcd', bin.etcd, [
        `--data-dir=${join(workDir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ]);

      progress('starting kube-apiserver');
      const server = `https://127.0.0.1:${apiPort}`;
      const apiserver = spawnComponent('kube-apiserver', bin.kubeApiserver, [
        `--etcd-servers=http://127.0.0.1:${etcdClient}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        '--advertise-address=127.0.0.1',
        // The kubernetes Endpoints object refuses a loopback address.
        '--endpoint-reconciler-type=none',
        `--tls-cert-file=${pki.servingCertFile}`,
        `--tls-private-key-file=${pki.servingKeyFile}`,
        `--client-ca-file=${pki.caFile}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${pki.serviceAccountPublicKeyFile}`,
        `--service-account-signing-key-file=${pki.serviceAccountKeyFile}`,
        '--authorization-mode=RBAC',
        `--service-cluster-ip-range=${net.serviceCidr}`,
        '--allow-privileged=true',
        // Webhook Services are called through their endpoints (pod IPs, local in the sandbox).
        '--enable-aggregator-routing=true',
        `--cert-dir=${pkiDir}`,
      ]);
      await waitFor('kube-apiserver /readyz', deadline, [etcd, apiserver], () => apiserverReady(server, pki));

      const kubeconfigPath = join(workDir, 'admin.kubeconfig');
      writeKubeconfig(kubeconfigPath, server, pki.caFile, 'weft-admin', pki.clients.admin);
      const componentConfig = (role: keyof ClusterPki['clients']): string => {
        const path = join(workDir, `${role}.kubeconfig`);
        writeKubeconfig(path, server, pki.caFile, role, pki.clients[role]);
        return path;
      };

      progress('starting kube-controller-manager, kube-scheduler and kwok');
      spawnComponent('kube-controller-manager', bin.kubeControllerManager, [
        `--kubeconfig=${componentConfig('controllerManager')}`,
        '--bind-address=127.0.0.1',
        '--secure-port=0',
        '--leader-elect=false',
        '--controllers=*',
        '--use-service-account-credentials=true',
        `--service-account-private-key-file=${pki.serviceAccountKeyFile}`,
        `--root-ca-file=${pki.caFile}`,
        `--cluster-signing-cert-file=${pki.caFile}`,
        `--cluster-signing-key-file=${pki.caKeyFile}`,
        '--allocate-node-cidrs=true',
        `--cluster-cidr=${net.podCidr}`,
        '--node-cidr-mask-size=24',
        `--service-cluster-ip-range=${net.serviceCidr}`,
      ]);
      spawnComponent('kube-scheduler', bin.kubeScheduler, [
        `--kubeconfig=${componentConfig('scheduler')}`,
        '--bind-address=127.0.0.1',
        '--secure-port=0',
        '--leader-elect=false',
      ]);
      // kwok v0.8.0 creates a node's IP pool on first use without a lock (pod_controller.go ipPool: Load,
      // then Store), so two pods of one node played in parallel can both get its first address. One
      // worker plays pod stages; IPs are then unique (a pod takes about a millisecond to play).
      const kwokConfig = join(workDir, 'kwok-configuration.yaml');
      writeFileSync(
        kwokConfig,
        [
          'apiVersion: config.kwok.x-k8s.io/v1alpha1',
          'kind: KwokConfiguration',
          // A configuration file gets no defaults for what it leaves out: kwok's own defaults, but one pod worker.
          'options:',
          '  podPlayStageParallelism: 1',
          '  nodePlayStageParallelism: 4',
          '  nodeLeaseParallelism: 4',
          '  podsOnNodeSyncParallelism: 1',
          '  enableDebuggingHandlers: true',
          '  enableProfilingHandler: true',
          '  enablePodsOnNodeSyncListPager: true',
          '',
        ].join('\n'),
      );
      spawnComponent('kwok', bin.kwok, [
        `--kubeconfig=${componentConfig('kwok')}`,
        `--config=${kwokConfig}`,
        `--config=${bin.kwokStages}`,
        '--manage-all-nodes=true',
        '--node-lease-duration-seconds=40',
        `--node-ip=${net.nodeIp}`,
        `--cidr=${net.podCidr}`,
        `--server-address=127.0.0.1:${kwokPort}`,
      ]);

      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(kubeconfigPath);
      const core = kubeConfig.makeApiClient(CoreV1Api);
      const nodeNames = Array.from({ length: options.nodes ?? 2 }, (_, i) => `kwok-node-${i}`);
      progress(`creating ${nodeNames.length} kwok nodes`);
      for (const name of nodeNames) await core.createNode({ body: fakeNode(name) });

      const cluster = new LocalCluster(workDir, server, kubeconfigPath, pki, processes, nodeNames);
      await waitFor('nodes Ready with a podCIDR', deadline, processes, async () => {
        const nodes = await core.listNode();
        return nodes.items.filter((node) => nodeReady(node) && node.spec?.podCIDR).length === nodeNames.length;
      });
      await waitFor("the default namespace's ServiceAccount", deadline, processes, async () => {
        try {
          await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
          return true;
        } catch {
          return false;
        }
      });
      progress(`cluster ready at ${server}`);
      return cluster;
    } catch (error) {
      await Promise.all(processes.map((child) => child.stop()));
      const detail = error instanceof Error ? error.message : String(error);
      throw new Error(`the local cluster did not start: ${detail}\nLogs kept in ${logs}`, { cause: error });
    }
  }

  kubeConfig(): KubeConfig {
    const config = new KubeConfig();
    config.loadFromFile(this.kubeconfigPath);
    return config;
  }

  /** Process ids of every component still running. */
  pids(): number[] {
    return this.processes.filter((child) => child.running && child.pid !== undefined).map((child) => child.pid as number);
  }

  /**
   * Restarts kube-apiserver or etcd in place, as a crashed static pod comes back: the process is
   * killed (`signal`, SIGKILL by default) and started again with the same flags, so it keeps its
   * ports, certificates and (etcd) data directory and every client reconnects to the same address.
   * Resolves once the API server's /readyz answers 200 again (its readiness includes etcd), with
   * how long the API was unavailable, in ms. Throws if it is not ready within `timeoutMs` (60 s).
   */
  async restart(component: 'kube-apiserver' | 'etcd', options: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<number> {
    const child = this.processes.find((p) => p.name === component);
    if (!child) throw new Error(`no component named ${component}`);
    const started = Date.now();
    await child.kill(options.signal ?? 'SIGKILL');
    child.respawn();
    child.watchUnexpectedExit((message) => {
      this.failure ??= message;
    });
    await waitFor(`${component} to come back`, started + (options.timeoutMs ?? 60_000), this.processes, () =>
      apiserverReady(this.server, this.pki),
    );
    return Date.now() - started;
  }

  /** Set when a component died after start; tests should fail with it. */
  get unexpectedExit(): string | undefined {
    return this.failure;
  }

  /**
   * Stops every component in reverse start order. The work folder is removed
   * unless `keepLogs` or a component died, in which case its path is returned.
   */
  async stop(options: { keepLogs?: boolean } = {}): Promise<string | undefined> {
    if (this.stopped) return undefined;
    this.stopped = true;
    for (const child of [...this.processes].reverse()) await child.stop();
    if (options.keepLogs || this.failure) return join(this.workDir, 'logs');
    rmSync(this.workDir, { recursive: true, force: true });
    return undefined;
  }
}

function fakeNode(name: string): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'kwok.x-k8s.io/node': 'fake' },
      labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', type: 'kwok' },
    },
  };
}

function nodeReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

async function apiserverReady(server: string, pki: ClusterPki): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      `${server}/readyz`,
      {
        ca: pki.caPem,
        cert: readFileSync(pki.clients.admin.certFile),
        key: readFileSync(pki.clients.admin.keyFile),
        timeout: 2_000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function waitFor(what: string, deadline: number, mustStayUp: ManagedProcess[], check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    const dead = mustStayUp.find((child) => !child.running);
    if (dead) throw new Error(`${dead.name} exited while waiting for ${what}:\n${dead.logTail()}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      const tails = mustStayUp.map((child) => `--- ${child.name} (${child.logPath})\n${child.logTail(10)}`).join('\n');
      throw new Error(`timed out waiting for ${what}\n${tails}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
