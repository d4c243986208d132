// The mesh of the xDS benchmark, created on the real local cluster: Services with
// Deployments whose pods kwok runs (the EndpointSlice controller fills the
// endpoints), VirtualServices with DestinationRule subsets, AuthorizationPolicies
// and namespace-wide STRICT PeerAuthentications; and the proxies that stand for
// those pods, described as Istio's agent describes them to the control plane.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubernetesObjectApi,
  type KubeConfig,
  type KubernetesObject,
  type V1EndpointSlice,
  type V1Pod,
} from '@kubernetes/client-node';
import { startInformer, type Cache } from '../../kube/informer.js';
import { componentLogger } from '../../lib/logger.js';

/** The shape of the mesh; every figure scales from it. */
export interface MeshSize {
  services: number;
  namespaces: number;
  /** Pods per Service (one Deployment each), each with an Envoy sidecar. */
  replicas: number;
  virtualServices: number;
  authorizationPolicies: number;
  /** Proxyless gRPC clients: pods of their own, not behind any Service. */
  grpcClients: number;
}

/** What a proxy says about itself (node id, metadata) and how it subscribes; the load generator's ProxyDesc. */
export interface ProxyDescription {
  id: string;
  cluster: string;
  kind: 'sidecar' | 'grpc';
  delta: boolean;
  metadata: Record<string, unknown>;
  listeners?: string[];
}

/** The Istio version the simulated agents announce: the release the pinned istio.io/istio commit leads to. */
export const simulatedIstioVersion = '1.31.0';
const servicePort = 80;
const benchLabel = 'weft.dev/bench';

export const namespaceOf = (size: MeshSize, service: number): string => `mesh-${service % size.namespaces}`;
/** The service's rank inside its namespace: VirtualServices and policies go to the first ranks of every namespace. */
const rankOf = (size: MeshSize, service: number): number => Math.floor(service / size.namespaces);
export const hostOf = (size: MeshSize, service: number): string => `svc-${service}.${namespaceOf(size, service)}.svc.cluster.local`;
/** Istio's (and Weft's) name for a service port's outbound cluster, which is also its EDS name. */
export const clusterOf = (size: MeshSize, service: number): string => `outbound|${servicePort}||${hostOf(size, service)}`;

/** Services that get a VirtualService and a DestinationRule: ranks 0.. of every namespace, spread evenly. */
export function virtualServiceIndexes(size: MeshSize): number[] {
  const perNamespace = Math.ceil(size.virtualServices / size.namespaces);
  const out: number[] = [];
  for (let s = 0; s < size.services && out.length < size.virtualServices; s++) if (rankOf(size, s) < perNamespace) out.push(s);
  return out;
}

function meshObjects(size: MeshSize): { namespaces: KubernetesObject[]; config: KubernetesObject[]; workloads: KubernetesObject[] } {
  const labels = { [benchLabel]: 'mesh' };
  const namespaces = Array.from({ length: size.namespaces }, (_, n) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: `mesh-${n}`, labels: { ...labels, 'istio-injection': 'enabled' } },
  }));
  const config: KubernetesObject[] = [];
  const workloads: KubernetesObject[] = [];
  const deployment = (name: string, namespace: string, replicas: number, podLabels: Record<string, string>): KubernetesObject =>
    ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace, labels },
      spec: {
        replicas,
        selector: { matchLabels: { app: podLabels['app'] as string } },
        template: {
          // The labels the injector leaves on a sidecar's pod: auto mTLS reads tlsMode.
          metadata: {
            labels: {
              ...podLabels,
              ...labels,
              'security.istio.io/tlsMode': 'istio',
              'service.istio.io/canonical-name': podLabels['app'] as string,
              'service.istio.io/canonical-revision': podLabels['version'] as string,
            },
          },
          spec: {
            containers: [{ name: 'app', image: 'registry.example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
            terminationGracePeriodSeconds: 0,
          },
        },
      },
    }) as KubernetesObject;
  for (let s = 0; s < size.services; s++) {
    const namespace = namespaceOf(size, s);
    const app = `svc-${s}`;
    config.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: app, namespace, labels },
      spec: { selector: { app }, ports: [{ name: 'http', port: servicePort, targetPort: 8080 }] },
    } as KubernetesObject);
    workloads.push(deployment(app, namespace, size.replicas, { app, version: s % 2 === 0 ? 'v1' : 'v2' }));
  }
  for (const s of virtualServiceIndexes(size)) {
    const namespace = namespaceOf(size, s);
    const host = hostOf(size, s);
    config.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: `svc-${s}`, namespace, labels },
      spec: {
        host,
        trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } },
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
    } as KubernetesObject);
    config.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: `svc-${s}`, namespace, labels },
      spec: {
        hosts: [host],
        http: [
          {
            route: [
              { destination: { host, subset: 'v1' }, weight: 90 },
              { destination: { host, subset: 'v2' }, weight: 10 },
            ],
            timeout: '5s',
          },
        ],
      },
    } as KubernetesObject);
  }
  const perNamespace = Math.ceil(size.authorizationPolicies / size.namespaces);
  for (let s = 0, made = 0; s < size.services && made < size.authorizationPolicies; s++) {
    if (rankOf(size, s) >= perNamespace) continue;
    made++;
    const namespace = namespaceOf(size, s);
    config.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: `allow-svc-${s}`, namespace, labels },
      spec: {
        selector: { matchLabels: { app: `svc-${s}` } },
        action: 'ALLOW',
        rules: [
          {
            from: [{ source: { principals: [`cluster.local/ns/${namespace}/sa/default`] } }],
            to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }],
          },
        ],
      },
    } as KubernetesObject);
  }
  for (let n = 0; n < size.namespaces; n += 2) {
    config.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'default', namespace: `mesh-${n}`, labels },
      spec: { mtls: { mode: 'STRICT' } },
    } as KubernetesObject);
  }
  const clientsPerNamespace = Math.ceil(size.grpcClients / size.namespaces);
  for (let n = 0, made = 0; n < size.namespaces && made < size.grpcClients; n++) {
    const replicas = Math.min(clientsPerNamespace, size.grpcClients - made);
    made += replicas;
    workloads.push(deployment('grpc-client', `mesh-${n}`, replicas, { app: 'grpc-client', version: 'v1' }));
  }
  return { namespaces, config, workloads };
}

/** Runs `work` over `items`, `concurrency` at a time, calling `progress` at most every 2 s. */
export async function inParallel<T>(
  items: T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
  progress: (done: number) => void = () => {},
): Promise<void> {
  let next = 0;
  let done = 0;
  let reported = Date.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await work(item);
        done++;
        if (Date.now() - reported >= 2_000) {
          reported = Date.now();
          progress(done);
        }
      }
    }),
  );
  progress(done);
}

async function createAll(api: KubernetesObjectApi, objects: KubernetesObject[], what: string, say: (line: string) => void): Promise<void> {
  await inParallel(
    objects,
    32,
    async (object) => {
      // A few attempts: fresh namespaces and CRDs may not be served everywhere yet.
      for (let attempt = 0; ; attempt++) {
        try {
          await api.create(object);
          return;
        } catch (error) {
          if ((error as { code?: number }).code === 409) return;
          if (attempt >= 5) throw error;
          await new Promise((resolve) => setTimeout(resolve, 500 * (attempt + 1)));
        }
      }
    },
    (done) => say(`created ${done}/${objects.length} ${what}`),
  );
}

const repositoryRoot = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url));

/**
 * Creates the mesh and waits until every pod runs with an IP and every Service's
 * endpoints are ready. Istio's CRDs are applied first, with the cluster's kubectl.
 */
export async function createMesh(
  config: KubeConfig,
  kubectl: string,
  kubeconfigPath: string,
  size: MeshSize,
  say: (line: string) => void,
): Promise<void> {
  const applied = spawnSync(
    kubectl,
    ['--kubeconfig', kubeconfigPath, 'apply', '--server-side', '-f', `${repositoryRoot}crds/istio/istio.io.yaml`],
    { encoding: 'utf8' },
  );
  if (applied.status !== 0) throw new Error(`applying Istio's CRDs failed: ${applied.stderr}`);
  const established = spawnSync(
    kubectl,
    ['--kubeconfig', kubeconfigPath, 'wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all'],
    { encoding: 'utf8' },
  );
  if (established.status !== 0) throw new Error(`Istio's CRDs were not established: ${established.stderr}`);

  const api = KubernetesObjectApi.makeApiClient(config);
  const { namespaces, config: meshConfig, workloads } = meshObjects(size);
  await createAll(api, [...namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system' } }], 'namespaces', say);
  await createAll(api, meshConfig, 'Services and Istio objects', say);
  await createAll(api, workloads, 'Deployments', say);

  const core = config.makeApiClient(CoreV1Api);
  const discovery = config.makeApiClient(DiscoveryV1Api);
  const pods = size.services * size.replicas + size.grpcClients;
  const endpoints = size.services * size.replicas;
  const started = Date.now();
  // The controllers create pods at their client's QPS (20/s by default): minutes for thousands.
  const deadline = started + Math.max(600_000, pods * 300);
  for (;;) {
    const running = (await listPods(core)).filter((pod) => pod.status?.phase === 'Running' && pod.status.podIP).length;
    const ready = (await discovery.listEndpointSliceForAllNamespaces()).items
      .filter((slice) => slice.metadata?.namespace?.startsWith('mesh-'))
      .flatMap((slice) => slice.endpoints ?? [])
      .filter((endpoint) => endpoint.conditions?.ready !== false).length;
    say(`pods running ${running}/${pods}, endpoints ready ${ready}/${endpoints} (${Math.round((Date.now() - started) / 1000)} s)`);
    if (running >= pods && ready >= endpoints) return;
    if (Date.now() > deadline) throw new Error(`the mesh did not come up in ${Math.round((deadline - started) / 1000)} s`);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
  }
}

/** Every benchmark pod, paged so that tens of thousands never come in one response. */
export async function listPods(core: CoreV1Api): Promise<V1Pod[]> {
  const out: V1Pod[] = [];
  let _continue: string | undefined;
  do {
    const page = await core.listPodForAllNamespaces({ labelSelector: benchLabel, limit: 5_000, ...(_continue ? { _continue } : {}) });
    out.push(...page.items);
    _continue = page.metadata?._continue;
  } while (_continue);
  return out;
}

/** Istio's agent's node metadata for a pod (the fields istiod reads; Weft reads a subset). */
function agentMetadata(pod: V1Pod, extra: Record<string, unknown>): Record<string, unknown> {
  const namespace = pod.metadata?.namespace ?? '';
  const labels = pod.metadata?.labels ?? {};
  const workload = labels['app'] ?? '';
  return {
    NAMESPACE: namespace,
    NAME: pod.metadata?.name,
    LABELS: labels,
    ANNOTATIONS: { 'kubectl.kubernetes.io/default-container': 'app' },
    ISTIO_VERSION: simulatedIstioVersion,
    CLUSTER_ID: 'Kubernetes',
    MESH_ID: 'cluster.local',
    SERVICE_ACCOUNT: 'default',
    WORKLOAD_NAME: workload,
    OWNER: `kubernetes://apis/apps/v1/namespaces/${namespace}/deployments/${workload}`,
    INSTANCE_IPS: pod.status?.podIP,
    NODE_NAME: pod.spec?.nodeName,
    PILOT_SAN: ['istiod.istio-system.svc'],
    ...extra,
  };
}

/**
 * One proxy per pod: Envoy sidecars for the Services' pods, proxyless gRPC for the
 * clients (each dials the first five Services of its namespace and one elsewhere);
 * every other proxy of each kind uses Delta ADS.
 */
export function proxiesOf(size: MeshSize, pods: V1Pod[]): ProxyDescription[] {
  const sorted = [...pods].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const sidecars: ProxyDescription[] = [];
  const grpc: ProxyDescription[] = [];
  for (const pod of sorted) {
    const namespace = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    const id = `sidecar~${pod.status?.podIP}~${name}.${namespace}~${namespace}.svc.cluster.local`;
    const cluster = `${pod.metadata?.labels?.['app']}.${namespace}`;
    if (pod.metadata?.labels?.['app'] === 'grpc-client') {
      const n = Number(namespace.slice('mesh-'.length));
      const targets = [0, 1, 2, 3, 4, 5]
        .map((rank) => (rank < 5 ? rank * size.namespaces + n : ((n + 1) % size.namespaces) + grpc.length * size.namespaces))
        .map((s) => s % size.services)
        .map((s) => `${hostOf(size, s)}:${servicePort}`);
      grpc.push({
        id,
        cluster,
        kind: 'grpc',
        delta: grpc.length % 2 === 1,
        metadata: agentMetadata(pod, { GENERATOR: 'grpc' }),
        listeners: [...new Set(targets)],
      });
    } else {
      sidecars.push({
        id,
        cluster,
        kind: 'sidecar',
        delta: sidecars.length % 2 === 1,
        metadata: agentMetadata(pod, {
          INTERCEPTION_MODE: 'REDIRECT',
          APP_CONTAINERS: 'app',
          POD_PORTS: JSON.stringify([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]),
          ENVOY_STATUS_PORT: 15021,
          ENVOY_PROMETHEUS_PORT: 15090,
          PROXY_CONFIG: { discoveryAddress: 'istiod.istio-system.svc:15012', statusPort: 15020, proxyMetadata: {} },
        }),
      });
    }
  }
  return [...sidecars, ...grpc];
}

/** The bench's own view of endpoints: each Service's ready endpoints, by pod, from an EndpointSlice informer. */
export class EndpointWatch {
  private waiters: Array<() => void> = [];

  private constructor(private readonly cache: Cache<V1EndpointSlice>) {}

  static async start(config: KubeConfig): Promise<EndpointWatch> {
    const discovery = config.makeApiClient(DiscoveryV1Api);
    // The informer's first events may come before the watch exists; they find no waiter anyway.
    const holder: { watch?: EndpointWatch } = {};
    const cache = await startInformer<V1EndpointSlice>(
      config,
      '/apis/discovery.k8s.io/v1/endpointslices',
      () => discovery.listEndpointSliceForAllNamespaces(),
      () => holder.watch?.notify(),
      componentLogger('bench-endpoints'),
    );
    holder.watch = new EndpointWatch(cache);
    return holder.watch;
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Ready endpoints of a Service: pod name to IP. */
  ready(namespace: string, service: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const slice of this.cache.list()) {
      if (slice.metadata?.namespace !== namespace || slice.metadata.labels?.['kubernetes.io/service-name'] !== service) continue;
      for (const endpoint of slice.endpoints ?? []) {
        if (endpoint.conditions?.ready === false) continue;
        const address = endpoint.addresses[0];
        if (address) out.set(endpoint.targetRef?.name ?? address, address);
      }
    }
    return out;
  }

  /** Resolves with the time (ms since the epoch) this watch saw `done` become true, or undefined after the timeout. */
  async until(done: () => boolean, timeoutMs: number): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (done()) return performance.timeOrigin + performance.now();
      const remaining = deadline - Date.now();
      if (remaining <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 1_000));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<void> {
    await this.cache.stop();
  }
}

/**
 * The benchmark's VirtualService change: moves the two route weights to values they
 * do not have now (read first, so a later run over the same mesh changes them too).
 */
export async function shiftWeights(config: KubeConfig, size: MeshSize, service: number): Promise<void> {
  const api = config.makeApiClient(CustomObjectsApi);
  const ref = {
    group: 'networking.istio.io',
    version: 'v1',
    namespace: namespaceOf(size, service),
    plural: 'virtualservices',
    name: `svc-${service}`,
  };
  const current = (await api.getNamespacedCustomObject(ref)) as { spec?: { http?: Array<{ route?: Array<{ weight?: number }> }> } };
  const weight = current.spec?.http?.[0]?.route?.[0]?.weight ?? 90;
  const v1 = 10 + ((weight - 10 + 7) % 80);
  await api.patchNamespacedCustomObject({
    ...ref,
    body: [
      { op: 'replace', path: '/spec/http/0/route/0/weight', value: v1 },
      { op: 'replace', path: '/spec/http/0/route/1/weight', value: 100 - v1 },
    ],
  });
}

/** JSON patch of a Deployment's replicas (the benchmark's endpoint change). */
export async function scaleDeployment(config: KubeConfig, namespace: string, name: string, replicas: number): Promise<void> {
  await config.makeApiClient(AppsV1Api).patchNamespacedDeployment({
    namespace,
    name,
    body: [{ op: 'replace', path: '/spec/replicas', value: replicas }],
  });
}
