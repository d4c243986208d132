// Watches that never miss, on the real local cluster: the mesh model's informers
// and the trust bundle's ConfigMap watch run with a one-second timeoutSeconds, so
// the API server ends every watch each second, while Services and ConfigMaps are
// deleted. Every deletion must reach the proxy (its CDS, over ADS) and every
// deleted or edited trust-bundle ConfigMap be repaired, with no warning logged for
// the routine restarts. Then kube-apiserver is restarted: what is changed right
// after it comes back still arrives, and the resync drops nothing the proxy had
// right, not even for one push.
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { TrustBundleDistributor, trustBundleConfigMap, trustBundleKey } from '../ca/trust-bundle-distributor.js';
import { LogLevels } from '../lib/logger.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { installIstioCrds, startXdsHarness, type XdsHarness } from '../testing/jest/xds-harness.js';
import { aggregatedDiscoveryService, typeOf, typeUrls } from '../xds/protos.js';
import { isNotFound } from './client.js';
import { watchForever, type WatchEventType } from './watch.js';

interface LogLine {
  level: number;
  msg: string;
  component?: string;
  path?: string;
}

interface CdsPush {
  version: string;
  clusters: Set<string>;
}

/** A sidecar's ADS stream subscribed to every cluster, ACKing each push. */
function cdsSubscriber(port: number, namespace: string): { pushes: CdsPush[]; close(): void } {
  const Ads = grpc.makeGenericClientConstructor(aggregatedDiscoveryService(), 'ADS');
  const client = new Ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  type Response = { version_info: string; nonce: string; resources: Array<{ value: Buffer }> };
  const stream = (client as unknown as Record<string, () => grpc.ClientDuplexStream<object, Response>>)['StreamAggregatedResources']?.();
  if (!stream) throw new Error('no ADS stream');
  const pushes: CdsPush[] = [];
  const clusterType = typeOf(typeUrls.cluster);
  stream.on('data', (response: Response) => {
    const clusters = new Set(response.resources.map((any) => (clusterType.decode(any.value) as unknown as { name: string }).name));
    pushes.push({ version: response.version_info, clusters });
    stream.write({ type_url: typeUrls.cluster, version_info: response.version_info, response_nonce: response.nonce });
  });
  stream.on('error', () => undefined);
  stream.write({
    node: { id: `sidecar~10.244.9.20~watcher.${namespace}~${namespace}.svc.cluster.local`, metadata: { NAMESPACE: namespace } },
    type_url: typeUrls.cluster,
    resource_names: [],
  });
  return {
    pushes,
    close: () => {
      stream.end();
      client.close();
    },
  };
}

const cluster = (name: string, namespace: string) => `outbound|80||${name}.${namespace}.svc.cluster.local`;
const bundle = '-----BEGIN CERTIFICATE-----\nd2F0Y2ggaXRlc3Q=\n-----END CERTIFICATE-----\n';
const services = 30;
const bundleNamespaces = Array.from({ length: 12 }, (_, i) => `watch-${i}`);
/** ConfigMaps a plain watchForever consumer follows, each of which must be seen ADDED once and DELETED once. */
const configMaps = 60;

describeWithCluster('watches that never miss', (cluster_) => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  let xds: XdsHarness;
  let distributor: TrustBundleDistributor;
  let proxy: ReturnType<typeof cdsSubscriber>;
  let stopWatch: (() => void) | undefined;
  const seen = new Map<string, WatchEventType[]>();
  const lines: LogLine[] = [];
  const levels = new LogLevels('debug', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });

  const bundleHeld = async (namespace: string): Promise<boolean> => {
    const cm = await core.readNamespacedConfigMap({ name: trustBundleConfigMap, namespace }).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
    return cm?.data?.[trustBundleKey] === bundle && Object.keys(cm.data).length === 1;
  };
  const allBundlesHeld = async () => ((await Promise.all(bundleNamespaces.map(bundleHeld))).every(Boolean) ? true : undefined);
  const latest = () => proxy.pushes.at(-1)?.clusters ?? new Set<string>();

  beforeAll(async () => {
    kc = cluster_().kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await installIstioCrds(cluster_());
    await createNamespace(kc, 'churn');
    await createNamespace(kc, 'watched');
    for (const namespace of bundleNamespaces) await core.createNamespace({ body: { metadata: { name: namespace } } });
    for (let i = 0; i < configMaps; i++)
      await core.createNamespacedConfigMap({ namespace: 'watched', body: { metadata: { name: `cm-${i}` }, data: { i: String(i) } } });
    for (let i = 0; i < services; i++)
      await core.createNamespacedService({
        namespace: 'churn',
        body: { metadata: { name: `svc-${i}` }, spec: { selector: { app: `svc-${i}` }, ports: [{ name: 'http', port: 80 }] } },
      });
    // The API server ends each watch after one second: watches restart all the time.
    const tuning = { timeoutSeconds: 1 };
    xds = await startXdsHarness(kc, levels.root.child({ component: 'xds-model' }), { watch: tuning });
    // No periodic resync: only the watches can repair what is deleted or edited.
    distributor = new TrustBundleDistributor(kc, bundle, levels.root.child({ component: 'trust-bundle' }), 3_600_000, tuning);
    distributor.start();
    stopWatch = watchForever<V1ConfigMap>(
      kc,
      '/api/v1/namespaces/watched/configmaps',
      { labelSelector: '!ignored' },
      (type, cm) => {
        const name = cm.metadata?.name ?? '';
        if (name.startsWith('cm-')) seen.set(name, [...(seen.get(name) ?? []), type]);
      },
      levels.root.child({ component: 'configmap-watch' }),
      { tuning },
    );
    proxy = cdsSubscriber(xds.port, 'churn');
    await eventually('every Service in the proxy CDS', async () =>
      Array.from({ length: services }, (_, i) => cluster(`svc-${i}`, 'churn')).every((name) => latest().has(name)) ? true : undefined,
    );
    await eventually('the trust bundle in every namespace', allBundlesHeld);
    await eventually('every ConfigMap seen by the watch', async () => (seen.size === configMaps ? true : undefined));
  });

  afterAll(async () => {
    proxy?.close();
    stopWatch?.();
    distributor?.stop();
    await xds?.stop();
  });

  it('brings every deletion to the proxy and the trust bundle back while the API server ends watches every second, with no warning', async () => {
    const mark = lines.length;
    const started = Date.now();
    // Deletions spread over about six seconds: several watch restarts of every kind.
    for (let i = 0; i < services; i++) {
      await Promise.all([
        core.deleteNamespacedService({ name: `svc-${i}`, namespace: 'churn' }),
        core.deleteNamespacedConfigMap({ name: `cm-${2 * i}`, namespace: 'watched' }),
        core.deleteNamespacedConfigMap({ name: `cm-${2 * i + 1}`, namespace: 'watched' }),
      ]);
      const namespace = i % 2 === 0 ? bundleNamespaces[i / 2] : undefined;
      if (namespace) await core.deleteNamespacedConfigMap({ name: trustBundleConfigMap, namespace });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // Each ConfigMap was seen once when it existed and once when it went: nothing missed, nothing replayed.
    await eventually(
      'every ConfigMap deletion seen by the watch',
      async () => ([...seen.values()].every((types) => types.includes('DELETED')) ? true : undefined),
      15_000,
    ).catch(() => undefined);
    expect(Object.fromEntries([...seen].filter(([, types]) => types.join() !== 'ADDED,DELETED'))).toEqual({});
    await eventually('no deleted Service left in the proxy CDS', async () =>
      [...latest()].some((name) => name.endsWith('.churn.svc.cluster.local')) ? undefined : true,
    );
    await eventually('every deleted trust bundle recreated', allBundlesHeld);
    const window = lines.slice(mark);
    const resumed = (path: string) => window.filter((l) => l.msg === 'watch ended; resuming' && l.path === path).length;
    const seconds = (Date.now() - started) / 1000;
    process.stderr.write(
      `watch itest: ${services} Service, ${configMaps} ConfigMap and ${bundleNamespaces.length} trust bundle deletions in ${seconds.toFixed(1)} s; ` +
        `services watch resumed ${resumed('/api/v1/services')} times, configmaps ${resumed('/api/v1/configmaps')} times\n`,
    );
    expect(resumed('/api/v1/services')).toBeGreaterThanOrEqual(4);
    expect(resumed('/api/v1/configmaps')).toBeGreaterThanOrEqual(4);
    // Routine restarts: resumed from the last resourceVersion, never relisted, never a warning.
    expect(window.filter((l) => l.msg.includes('410 Gone'))).toEqual([]);
    expect(window.filter((l) => l.level >= 40)).toEqual([]);
  });

  it('after a kube-apiserver restart, changes made at once arrive, and the resync drops nothing that was right', async () => {
    // The proxy holds the Services left from the first test, plus these.
    for (const name of ['keep-a', 'keep-b'])
      await core.createNamespacedService({
        namespace: 'churn',
        body: { metadata: { name }, spec: { selector: { app: name }, ports: [{ name: 'http', port: 80 }] } },
      });
    await eventually('the kept Services in the proxy CDS', async () =>
      latest().has(cluster('keep-a', 'churn')) && latest().has(cluster('keep-b', 'churn')) ? true : undefined,
    );
    const before = latest();
    const pushesBefore = proxy.pushes.length;
    const mark = lines.length;

    const downMs = await cluster_().restart('kube-apiserver');
    // At once, while the watches are still backing off: deleted and edited trust bundles.
    for (const [i, namespace] of bundleNamespaces.entries()) {
      if (i % 2 === 0) await core.deleteNamespacedConfigMap({ name: trustBundleConfigMap, namespace });
      else
        await core.patchNamespacedConfigMap({
          name: trustBundleConfigMap,
          namespace,
          body: [{ op: 'replace', path: `/data/${trustBundleKey}`, value: 'tampered' }],
        });
    }
    await eventually('every trust bundle repaired after the restart', allBundlesHeld, 45_000);

    // Every watch that failed during the outage is back...
    const failedPaths = () =>
      new Set(
        lines
          .slice(mark)
          .filter((l) => l.msg.endsWith('failed; retrying with backoff'))
          .map((l) => l.path),
      );
    const recoveredPaths = () =>
      new Set(
        lines
          .slice(mark)
          .filter((l) => l.msg === 'watch recovered')
          .map((l) => l.path),
      );
    await eventually(
      'every failed watch to recover',
      async () => ([...failedPaths()].every((path) => recoveredPaths().has(path)) ? true : undefined),
      45_000,
    );
    // ...and a Service created now reaches the proxy: after it, nothing of the restart is still in flight.
    await core.createNamespacedService({
      namespace: 'churn',
      body: { metadata: { name: 'after-restart' }, spec: { selector: { app: 'x' }, ports: [{ name: 'http', port: 80 }] } },
    });
    await eventually('the Service created after the restart in the proxy CDS', async () =>
      latest().has(cluster('after-restart', 'churn')) ? true : undefined,
    );
    const since = proxy.pushes.slice(pushesBefore);
    const window = lines.slice(mark);
    process.stderr.write(
      `watch itest: API down ${downMs} ms; ${failedPaths().size} watches failed and recovered; ` +
        `${window.filter((l) => l.msg.includes('410 Gone')).length} relists; CDS pushes since: ${since.length}\n`,
    );
    // No push lost a cluster the proxy had right, even for a moment; the one push is the new Service.
    for (const push of since) expect([...before].filter((name) => !push.clusters.has(name))).toEqual([]);
    expect(since).toHaveLength(1);
    // Warnings only for the outage itself: one per watch, never one per retry.
    const warnings = window.filter((l) => l.level >= 40);
    expect(warnings.every((l) => l.msg.endsWith('failed; retrying with backoff'))).toBe(true);
    const perPath = new Map<string, number>();
    for (const l of warnings) perPath.set(`${l.component} ${l.path}`, (perPath.get(`${l.component} ${l.path}`) ?? 0) + 1);
    expect([...perPath].filter(([, count]) => count > 1)).toEqual([]);
    expect(failedPaths().has('/api/v1/services')).toBe(true);
  });
});
