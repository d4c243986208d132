// `make demo`'s live sample: a bookinfo-shaped application in namespace `bookinfo`
// (productpage, details, reviews v1/v2/v3, ratings, and a load generator), each a
// Deployment a user could have written, injected by Weft with the `grpc-agent`
// template: proxyless gRPC workloads with SPIFFE certificates from Weft's CA and
// config from Weft's xDS. On the embedded cluster their pods run as processes
// (testing/workloads/bookinfo-app.ts behind local-grpc-agent.ts) bound to the pods' IPs.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterBinaries } from './binaries.js';
import type { LocalCluster } from './local-cluster.js';
import { PodProcessRunner, proxylessImageRule } from './pod-processes.js';

export const bookinfoImage = 'ghcr.io/weft-mesh/weft-bookinfo:demo';
export const bookinfoNamespace = 'bookinfo';
const grpcPort = 9080;
const controlPort = 9081;

/** The parts, as bookinfo has them; `loadgen` is the traffic. */
const parts: Array<{ app: string; version: string; service: boolean }> = [
  { app: 'productpage', version: 'v1', service: true },
  { app: 'details', version: 'v1', service: true },
  { app: 'reviews', version: 'v1', service: true },
  { app: 'reviews', version: 'v2', service: true },
  { app: 'reviews', version: 'v3', service: true },
  { app: 'ratings', version: 'v1', service: true },
  { app: 'loadgen', version: 'v1', service: false },
];

/** Every object of the sample, as one List (namespace first). */
export function bookinfoManifests(namespace = bookinfoNamespace): object {
  const field = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  const apps = [...new Set(parts.map((p) => p.app))];
  const items: object[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { 'weft-injection': 'enabled' } } },
    // One ServiceAccount per app: its SPIFFE identity, which AuthorizationPolicies name.
    ...apps.map((app) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: `bookinfo-${app}`, namespace } })),
    ...parts
      .filter((p) => p.service && p.version === 'v1')
      .map(({ app }) => ({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: app, namespace, labels: { app, service: app } },
        spec: { selector: { app }, ports: [{ name: 'grpc', port: grpcPort, targetPort: grpcPort }] },
      })),
    ...parts.map(({ app, version }) => {
      const labels = { app, version };
      return {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: `${app}-${version}`, namespace, labels },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels, annotations: { 'inject.istio.io/templates': 'grpc-agent' } },
            spec: {
              serviceAccountName: `bookinfo-${app}`,
              terminationGracePeriodSeconds: 5,
              containers: [
                {
                  name: app,
                  image: bookinfoImage,
                  ports: [
                    { name: 'grpc', containerPort: grpcPort },
                    { name: 'http-health', containerPort: controlPort },
                  ],
                  env: [
                    { name: 'SERVICE', value: app },
                    { name: 'VERSION', value: version },
                    field('POD_NAME', 'metadata.name'),
                    field('POD_NAMESPACE', 'metadata.namespace'),
                  ],
                  readinessProbe: { httpGet: { path: '/healthz', port: controlPort }, periodSeconds: 2 },
                  resources: { requests: { cpu: '10m', memory: '64Mi' } },
                  securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
                },
              ],
            },
          },
        },
      };
    }),
  ];
  return { apiVersion: 'v1', kind: 'List', items };
}

/** The command lines `make demo` prints once the sample runs: the three things to do next (`flag`: ` --name <cluster>` or ''). */
export function bookinfoNextSteps(flag: string): string[] {
  const shell = `./weft dev shell${flag}`;
  return [
    'The bookinfo sample runs in namespace bookinfo, with a load generator asking for 10 pages a second:',
    `  ${shell} -- kubectl apply -f config/samples/demo/reviews-canary.yaml    send 10% of reviews to v3, 90% to v1`,
    `  ${shell} -- kubectl apply -f config/samples/demo/strict-mtls.yaml       STRICT mTLS, and only productpage may call reviews`,
    `  ./weft dev dashboard${flag}    the mesh as a live graph in your browser (watch the canary move)`,
  ];
}

/**
 * Applies the sample and runs its pods; resolves once the load generator's pages come back
 * with reviews from the mesh (so the demo has traffic to look at). `stop` on the runner ends the pods' processes.
 */
export async function installBookinfoDemo(
  cluster: LocalCluster,
  binaries: ClusterBinaries,
  repositoryRoot: string,
  progress: (line: string) => void,
  timeoutMs = 120_000,
): Promise<PodProcessRunner> {
  const runner = new PodProcessRunner(cluster.kubeConfig(), {
    server: cluster.server,
    caFile: cluster.pki.caFile,
    workDir: join(cluster.workDir, 'logs', 'pods'),
    rules: [proxylessImageRule(cluster, repositoryRoot, bookinfoImage, 'bookinfo-app.js')],
  });
  runner.start();
  progress('kubectl apply the bookinfo sample (namespace bookinfo)');
  const apply = spawnSync(binaries.kubectl, ['apply', '-f', '-'], {
    env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath },
    input: JSON.stringify(bookinfoManifests()),
    encoding: 'utf8',
  });
  if (apply.status !== 0) {
    await runner.stop();
    throw new Error(`kubectl apply of the bookinfo sample failed: ${apply.stderr.trim()}`);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const served = [...runner.processes()]
      .filter(([key]) => key.startsWith(`${bookinfoNamespace}/loadgen`))
      .some(([, process]) => /"reviews v\d"/.test(tail(process.logPath)));
    if (served) return runner;
    if (Date.now() > deadline) {
      await runner.stop();
      throw new Error(
        `the bookinfo sample served no page within ${timeoutMs / 1000} s; its logs are in ${join(cluster.workDir, 'logs', 'pods')}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-4_096);
  } catch {
    return '';
  }
}
