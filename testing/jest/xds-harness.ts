// What the xDS integration tests share: Istio's CRDs applied as a user would,
// Weft's xDS (model, snapshots, ADS server on loopback) in the test process, and
// echo workloads run as processes bound to their pods' IPs.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { KubeConfig, V1Deployment } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { readWeftCrds } from '../../api/crds.js';
import type { Logger } from '../../lib/logger.js';
import { ProxyGroups } from '../../xds/cache/proxy-groups.js';
import { KubeMeshModel } from '../../xds/model/kube-mesh-model.js';
import { aggregatedDiscoveryService } from '../../xds/protos.js';
import { AdsServer } from '../../xds/server/ads-server.js';
import { LoadStore } from '../../xds/load/load-store.js';
import { LoadReportingServer, loadReportingService } from '../../xds/server/load-reporting.js';
import { ensureClusterBinaries } from '../cluster/binaries.js';
import type { LocalCluster } from '../cluster/local-cluster.js';
import { PodProcessRunner } from '../cluster/pod-processes.js';
import { kubectl } from './kube-helpers.js';

/** Istio's CRDs (networking, security, telemetry), as install.yaml carries them, applied with kubectl and Established. */
export async function installIstioCrds(cluster: LocalCluster): Promise<void> {
  const { kubectl: kubectlPath } = await ensureClusterBinaries(undefined, { allowBuild: false });
  const crds = readWeftCrds().filter((crd) => String((crd['spec'] as { group: string }).group).endsWith('istio.io'));
  const applied = kubectl(cluster, kubectlPath, ['apply', '--server-side', '-f', '-'], crds.map((crd) => stringify(crd)).join('---\n'));
  if (applied.status !== 0) throw new Error(`applying Istio's CRDs failed: ${applied.stderr}`);
  const names = crds.map((crd) => `crd/${(crd['metadata'] as { name: string }).name}`);
  const waited = kubectl(cluster, kubectlPath, ['wait', '--for=condition=Established', '--timeout=60s', ...names]);
  if (waited.status !== 0) throw new Error(`Istio's CRDs did not become Established: ${waited.stderr}`);
}

export interface XdsHarness {
  groups: ProxyGroups;
  model: KubeMeshModel;
  ads: AdsServer;
  /** What the clients' load reports (LRS, on the same port) say, reported every second. */
  loads: LoadStore;
  /** The ADS server's port on 127.0.0.1 (plaintext, as 15010). */
  port: number;
  stop(): Promise<void>;
}

/** Weft's xDS against the cluster, serving on loopback. */
export async function startXdsHarness(
  kc: KubeConfig,
  log: Logger,
  options: ConstructorParameters<typeof KubeMeshModel>[5] = {},
): Promise<XdsHarness> {
  const groups = new ProxyGroups();
  const model = new KubeMeshModel(kc, groups, log, 'cluster.local', 'istio-system', options);
  await model.start();
  const ads = new AdsServer(groups, log);
  const server = new grpc.Server();
  server.addService(aggregatedDiscoveryService(), ads.implementation());
  // Load reports every second, so a test sees a client's calls soon after it makes them.
  const loads = new LoadStore({ windowMs: 300_000, maxClustersPerStream: 1_000 });
  server.addService(
    loadReportingService(),
    new LoadReportingServer(loads, { intervalSeconds: 1, maxClusters: 1_000, log }).implementation(),
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    groups,
    model,
    ads,
    loads,
    port,
    stop: async () => {
      server.forceShutdown();
      ads.close();
      await model.stop();
    },
  };
}

/** Runs `registry.example/echo` pods as echo-workload processes bound to their pod IPs. */
export function startEchoRunner(kc: KubeConfig, cluster: LocalCluster): PodProcessRunner {
  const runner = new PodProcessRunner(kc, {
    server: cluster.server,
    caFile: cluster.pki.caFile,
    workDir: join(cluster.workDir, 'pods'),
    rules: [
      {
        matches: (image) => image.startsWith('registry.example/echo'),
        command: () => [process.execPath, join(process.cwd(), 'dist', 'testing', 'workloads', 'echo-workload.js')],
      },
    ],
  });
  runner.start();
  return runner;
}

/** A Deployment of echo workloads (label app=echo) serving gRPC on 9090; `env` configures the workload (VERSION, FAIL_EVERY). */
export function echoDeployment(
  name: string,
  labels: Record<string, string>,
  replicas: number,
  env: Record<string, string> = {},
): V1Deployment {
  const podLabels = { app: 'echo', ...labels };
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: podLabels },
      template: {
        metadata: { labels: podLabels },
        spec: {
          containers: [
            {
              name: 'echo',
              image: 'registry.example/echo:1',
              ports: [{ name: 'grpc', containerPort: 9090 }],
              env: [
                { name: 'PORT', value: '9090' },
                ...Object.entries(env).map(([k, v]) => ({ name: k, value: v })),
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              ],
            },
          ],
        },
      },
    },
  };
}
