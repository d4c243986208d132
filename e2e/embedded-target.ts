// The journey's target on the embedded local cluster (`make e2e`): a real control
// plane with kwok nodes inside the network sandbox. No container runs: pods of
// Weft's image run as `weft` processes and the sample app's pods as echo-app
// processes, each bound to its pod's IP (testing/cluster/pod-processes.ts). The
// injector gives the sample pods the `grpc-agent` template (proxyless gRPC, no
// Envoy), and local-grpc-agent.ts stands in for the agent: the workload certificate
// from weftd's CA and the xDS bootstrap.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureClusterBinaries } from '../testing/cluster/binaries.js';
import { LocalCluster } from '../testing/cluster/local-cluster.js';
import { PodProcessRunner, proxylessImageRule, weftImageRule } from '../testing/cluster/pod-processes.js';
import { run, type E2eTarget } from './target.js';

export const embeddedEchoImage = 'ghcr.io/weft-mesh/weft-echo:e2e';

export async function startEmbeddedTarget(repositoryRoot = process.cwd()): Promise<E2eTarget> {
  const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
  const cluster = await LocalCluster.start({ binaries, nodes: 2 });
  const runner = new PodProcessRunner(cluster.kubeConfig(), {
    server: cluster.server,
    caFile: cluster.pki.caFile,
    workDir: join(cluster.workDir, 'logs', 'pods'),
    rules: [weftImageRule(repositoryRoot), proxylessImageRule(cluster, repositoryRoot, embeddedEchoImage, 'echo-app.js')],
  });
  runner.start();
  const env = { ...process.env, KUBECONFIG: cluster.kubeconfigPath };

  return {
    name: 'embedded',
    kubeconfigPath: cluster.kubeconfigPath,
    echoImage: embeddedEchoImage,
    injectionTemplate: 'grpc-agent',
    serviceTarget: (host, port) => `xds:///${host}:${port}`,
    async plainServiceTarget(service, namespace, port) {
      // No cluster DNS and no routed Service IPs in the sandbox: the Service's ready endpoints, as gRPC's ipv4: list.
      const result = await run(
        binaries.kubectl,
        ['get', 'endpointslices', '-n', namespace, '-l', `kubernetes.io/service-name=${service}`, '-o', 'json'],
        { env },
      );
      if (result.status !== 0) throw new Error(`no EndpointSlices of ${namespace}/${service}: ${result.stderr.trim()}`);
      const slices = JSON.parse(result.stdout) as {
        items: Array<{ endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }> }>;
      };
      const addresses = slices.items.flatMap((slice) => slice.endpoints ?? []).filter((e) => e.conditions?.ready !== false);
      if (addresses.length === 0) throw new Error(`no ready endpoint of ${namespace}/${service}`);
      return `ipv4:${addresses.map((e) => `${e.addresses[0]}:${port}`).join(',')}`;
    },
    kubectl: (args, input) => run(binaries.kubectl, args, { env, ...(input === undefined ? {} : { input }) }),
    async httpGetFromPod(namespace, pod, port, path) {
      // The test runs in the sandbox too: the pod's IP is a local address here.
      const result = await run(binaries.kubectl, ['get', 'pod', pod, '-n', namespace, '-o', 'jsonpath={.status.podIP}'], { env });
      if (result.status !== 0 || !result.stdout) throw new Error(`no IP for pod ${namespace}/${pod}: ${result.stderr.trim()}`);
      const response = await fetch(`http://${result.stdout}:${port}${path}`, { signal: AbortSignal.timeout(60_000) });
      const body = await response.text();
      if (!response.ok) throw new Error(`GET ${path} in ${namespace}/${pod}: ${response.status} ${body}`);
      return body;
    },
    async logs(namespace) {
      return [...runner.processes()]
        .filter(([key]) => key.startsWith(`${namespace}/`))
        .map(([key, process]) => `--- ${key} (${process.logPath})\n${tail(process.logPath, 60)}`)
        .join('\n');
    },
    async stop({ failed }) {
      await runner.stop();
      const keptLogs = await cluster.stop({ keepLogs: failed });
      if (keptLogs) process.stderr.write(`local cluster logs kept in ${keptLogs}\n`);
    },
  };
}

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
