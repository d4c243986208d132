// Injection through the real apiserver, with the webhook configuration the
// operator generates and weftd running as the process of its own kwok pod.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { aggregatedDiscoveryService, typeUrls } from '../xds/protos.js';
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { ensureClusterBinaries } from '../testing/cluster/binaries.js';
import { installMeshDemo } from '../testing/cluster/mesh-demo.js';
import type { PodProcessRunner } from '../testing/cluster/pod-processes.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually, kubectl } from '../testing/jest/kube-helpers.js';

const containerNames = (pod: V1Pod) => ({
  init: (pod.spec?.initContainers ?? []).map((c) => c.name),
  main: (pod.spec?.containers ?? []).map((c) => c.name),
});

describeWithCluster('sidecar injection webhook', (cluster) => {
  let kc: KubeConfig;
  let runner: PodProcessRunner;
  let kubectlPath: string;
  const core = () => kc.makeApiClient(CoreV1Api);

  beforeAll(async () => {
    const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
    kubectlPath = binaries.kubectl;
    kc = cluster().kubeConfig();
    runner = await installMeshDemo(cluster(), binaries, process.cwd(), () => {});
    await eventually('weftd to set the caBundle of its webhooks', async () => {
      const hook = await kc
        .makeApiClient(AdmissionregistrationV1Api)
        .readMutatingWebhookConfiguration({ name: 'weft-sidecar-injector-weft-system' });
      return hook.webhooks?.every((w) => w.clientConfig.caBundle) ? hook : undefined;
    });
  }, 120_000);

  afterAll(async () => {
    await runner?.stop();
  });

  async function deployAndGetPods(namespace: string, name: string, podLabels: Record<string, string> = {}): Promise<V1Pod[]> {
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name, ...podLabels } },
            spec: {
              containers: [
                {
                  name: 'app',
                  image: 'registry.example/app:1',
                  ports: [{ containerPort: 8080 }],
                  readinessProbe: { httpGet: { path: '/ready', port: 8080 } },
                },
              ],
            },
          },
        },
      },
    });
    return eventually(`pods of ${namespace}/${name}`, async () => {
      const pods = (await core().listNamespacedPod({ namespace, labelSelector: `app=${name}` })).items;
      return pods.length === 2 ? pods : undefined;
    });
  }

  it('stores the pods of a Deployment in a labelled namespace with the sidecar, and leaves other namespaces alone', async () => {
    await createNamespace(kc, 'shop', { 'weft-injection': 'enabled' });
    for (const pod of await deployAndGetPods('shop', 'web')) {
      expect(containerNames(pod)).toEqual({ init: ['istio-init', 'istio-proxy'], main: ['app'] });
      expect(pod.spec?.initContainers?.[1]?.restartPolicy).toBe('Always');
      expect(pod.metadata?.labels?.['security.istio.io/tlsMode']).toBe('istio');
      expect(JSON.parse(pod.metadata?.annotations?.['sidecar.istio.io/status'] ?? '{}').revision).toBe('default');
      const env = Object.fromEntries((pod.spec?.initContainers?.[1]?.env ?? []).map((e) => [e.name, e.value]));
      expect(env['CA_ADDR']).toBe('weftd.weft-system.svc:15012');
      expect(env['ISTIO_META_WORKLOAD_NAME']).toBe('web');
      expect(pod.spec?.containers[0]?.readinessProbe?.httpGet).toEqual({ path: '/app-health/app/readyz', port: 15020, scheme: 'HTTP' });
    }
    await createNamespace(kc, 'plain');
    for (const pod of await deployAndGetPods('plain', 'web')) expect(containerNames(pod)).toEqual({ init: [], main: ['app'] });
  });

  it('honours the pod opt-out in a labelled namespace and the opt-in in an unlabelled one', async () => {
    for (const pod of await deployAndGetPods('shop', 'batch', { 'sidecar.istio.io/inject': 'false' }))
      expect(containerNames(pod).init).toEqual([]);
    for (const pod of await deployAndGetPods('plain', 'chosen', { 'sidecar.istio.io/inject': 'true' })) {
      expect(containerNames(pod).init).toEqual(['istio-init', 'istio-proxy']);
    }
  });

  it("selects as Istio's webhooks do: istio-injection wins over istio.io/rev, a pod's istio.io/rev reaches its revision", async () => {
    const podBody = (name: string, labels: Record<string, string> = {}) => ({
      metadata: { name, labels },
      spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
    });
    await createNamespace(kc, 'both', { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' });
    const both = await core().createNamespacedPod({ namespace: 'both', body: podBody('web') });
    expect(containerNames(both).init).toEqual(['istio-init', 'istio-proxy']);
    // The default revision answers to istio.io/rev=default on a pod in an unlabelled namespace (rev.object webhook).
    const byRevision = await core().createNamespacedPod({
      namespace: 'plain',
      body: podBody('rev-default', { 'istio.io/rev': 'default' }),
    });
    expect(containerNames(byRevision).init).toEqual(['istio-init', 'istio-proxy']);
    const otherRevision = await core().createNamespacedPod({
      namespace: 'plain',
      body: podBody('rev-canary', { 'istio.io/rev': 'canary' }),
    });
    expect(containerNames(otherRevision).init).toEqual([]);
  });

  it("merges a pod's own istio-proxy (image: auto) into the injected one, and the API server accepts the pod", async () => {
    const pod = await core().createNamespacedPod({
      namespace: 'shop',
      body: {
        metadata: { name: 'own-proxy' },
        spec: {
          containers: [
            { name: 'app', image: 'registry.example/app:1', livenessProbe: { tcpSocket: { port: 8080 } } },
            {
              name: 'istio-proxy',
              image: 'auto',
              resources: { requests: { cpu: '300m' }, limits: { memory: '2Gi' } },
              lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
            },
          ],
        },
      },
    });
    expect(containerNames(pod)).toEqual({ init: ['istio-init', 'istio-proxy'], main: ['app'] });
    const proxy = pod.spec?.initContainers?.[1];
    expect(proxy?.image).not.toBe('auto');
    // The API server defaults the user's requests.memory from its limit before admission, so 2Gi arrives as the user's.
    expect(proxy?.resources).toEqual({ requests: { cpu: '300m', memory: '2Gi' }, limits: { cpu: '2', memory: '2Gi' } });
    expect(proxy?.lifecycle?.preStop?.exec?.command).toEqual(['sleep', '5']);
    expect(pod.spec?.containers[0]?.livenessProbe?.httpGet).toMatchObject({ path: '/app-health/app/livez', port: 15020 });
  });

  it('with the webhook down and failurePolicy Fail, refuses pods in labelled namespaces only', async () => {
    const run = (args: string[]) => kubectl(cluster(), kubectlPath, args);
    // A weftd image that nothing runs: the rollout replaces the serving pod with a silent one.
    expect(
      run([
        'patch',
        'meshinstallation',
        'default',
        '--type=merge',
        '-p',
        '{"spec":{"controlPlane":{"image":"registry.example/not-weft:1"}}}',
      ]).status,
    ).toBe(0);
    await eventually('the serving weftd to be gone', async () =>
      [...runner.processes().keys()].some((key) => key.startsWith('weft-system/')) ? undefined : true,
    );
    const podBody = (name: string) => ({ metadata: { name }, spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] } });
    const refused = await eventually('pod creation in the labelled namespace to be refused', async () =>
      core()
        .createNamespacedPod({ namespace: 'shop', body: podBody(`probe-${Date.now()}`) })
        .then(
          () => undefined,
          (error: Error) => error,
        ),
    );
    expect(refused.message).toContain('sidecar-injector.weft.dev');
    await core().createNamespacedPod({ namespace: 'plain', body: podBody('unaffected') });

    expect(
      run(['patch', 'meshinstallation', 'default', '--type=json', '-p', '[{"op":"remove","path":"/spec/controlPlane/image"}]']).status,
    ).toBe(0);
    const pod = await eventually('injection to work again', async () => {
      const created = await core()
        .createNamespacedPod({ namespace: 'shop', body: podBody(`again-${Date.now()}`) })
        .catch(() => undefined);
      return created && containerNames(created).init.includes('istio-proxy') ? created : undefined;
    });
    expect(containerNames(pod).main).toEqual(['app']);
  });

  it('weftd serves xDS on 15010 to a proxy and shows its sync state in /debug/syncz', async () => {
    const pods = await core().listNamespacedPod({ namespace: 'weft-system', labelSelector: 'app.kubernetes.io/name=weftd' });
    const podIp = pods.items.find((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp)?.status?.podIP;
    const Ads = grpc.makeGenericClientConstructor(aggregatedDiscoveryService(), 'ADS');
    const client = new Ads(`${podIp}:15010`, grpc.credentials.createInsecure());
    const stream = (
      client as unknown as Record<
        string,
        () => grpc.ClientDuplexStream<object, { nonce: string; version_info: string; resources: unknown[] }>
      >
    )['StreamAggregatedResources']?.();
    if (!stream) throw new Error('no stream');
    // Cancelled and closed also when an expectation fails: an open stream would keep jest from exiting.
    try {
      stream.on('error', () => undefined);
      const responses: Array<{ nonce: string; version_info: string; resources: unknown[] }> = [];
      stream.on('data', (r: { nonce: string; version_info: string; resources: unknown[] }) => responses.push(r));
      stream.write({ node: { id: 'sidecar~10.244.9.1~probe.shop~shop.svc.cluster.local' }, type_url: typeUrls.listener });
      const first = await eventually('an LDS response', async () => responses[0]);
      // The kubernetes Service at least is in every cluster.
      expect(first.resources.length).toBeGreaterThan(0);
      stream.write({ type_url: typeUrls.listener, version_info: first.version_info, response_nonce: first.nonce });
      const syncz = await eventually('the proxy in /debug/syncz', async () => {
        const body = (await (await fetch(`http://${podIp}:15014/debug/syncz`)).json()) as Array<{
          nodeId: string;
          types: Array<{ state: string }>;
        }>;
        const probe = body.find((p) => p.nodeId.includes('probe.shop'));
        return probe?.types[0]?.state === 'acked' ? probe : undefined;
      });
      expect(syncz.types[0]).toMatchObject({ state: 'acked', versionAcked: first.version_info });
      const dump = (await (await fetch(`http://${podIp}:15014/debug/config_dump?proxyID=probe.shop`)).json()) as {
        configs: Array<{ typeUrl: string; resources: Array<{ name: string }> }>;
      };
      expect(dump.configs[0]?.typeUrl).toBe(typeUrls.listener);
      // A node without GENERATOR=grpc is an Envoy sidecar: Istio's virtual listeners, and the kubernetes Service's
      // `https` port, which Istio treats as TCP (TLS passed through), on a listener of its own cluster IP.
      expect(dump.configs[0]?.resources.map((r) => r.name)).toEqual(
        expect.arrayContaining([expect.stringMatching(/^\d+\.\d+\.\d+\.\d+_443$/), 'virtualOutbound', 'virtualInbound']),
      );
    } finally {
      stream.cancel();
      client.close();
    }
  });

  it('prints the same injection offline with weft inject', async () => {
    const { spawnSync } = await import('node:child_process');
    const result = spawnSync(
      process.execPath,
      [
        join(process.cwd(), 'dist', 'cmd', 'weft.js'),
        'inject',
        '-f',
        join(process.cwd(), 'webhooks', 'injection', 'testdata', 'deployment-pod.yaml'),
      ],
      {
        encoding: 'utf8',
      },
    );
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('name: istio-proxy');
    expect(result.stdout).toContain('sidecar.istio.io/status');
  });
});
