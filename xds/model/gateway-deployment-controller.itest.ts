// The Gateway API's automated deployment against a real API server, kube-controller-manager and kwok: Istio's
// Gateway API task YAML applied unchanged gets its ServiceAccount, Deployment and Service (owned by the Gateway),
// a running gateway pod, and, with the task's ClusterIP annotation for clusters without load balancers, a
// Programmed Gateway; a manual scale is kept, an edited label restored, a user's own Deployment left alone,
// and deleting the Gateway garbage-collects what was made.
import { readFileSync } from 'node:fs';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { readGatewayApiCrds } from '../../api/crds.js';
import type { Condition, Gateway } from '../../gatewayapi/gateway-api-types.js';
import { isNotFound } from '../../kube/client.js';
import { componentLogger } from '../../lib/logger.js';
import { ensureClusterBinaries } from '../../testing/cluster/binaries.js';
import { describeWithCluster } from '../../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually, kubectl } from '../../testing/jest/kube-helpers.js';
import { installIstioCrds } from '../../testing/jest/xds-harness.js';
import { ProxyGroups } from '../cache/proxy-groups.js';
import { GatewayDeploymentController } from './gateway-deployment-controller.js';
import { KubeMeshModel } from './kube-mesh-model.js';

const log = componentLogger('gateway-deployment-test');
const group = 'gateway.networking.k8s.io';
const ns = 'istio-ingress';
const taskYaml = readFileSync(new URL('../../gatewayapi/testdata/istio-docs/gateway-api-task.yaml', import.meta.url), 'utf8');
const condition = (conditions: Condition[] | undefined, type: string) => conditions?.find((c) => c.type === type);
const absent = async (read: () => Promise<unknown>) => {
  try {
    await read();
    return undefined;
  } catch (error) {
    if (isNotFound(error)) return true;
    throw error;
  }
};

describeWithCluster('Gateway API automated deployment on a real cluster', (cluster) => {
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let model: KubeMeshModel;
  let controller: GatewayDeploymentController;
  let kubectlPath: string;
  const run = (args: string[], input?: string) => {
    const result = kubectl(cluster(), kubectlPath, args, input);
    if (result.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr}`);
    return result;
  };

  beforeAll(async () => {
    kc = cluster().kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    await installIstioCrds(cluster());
    ({ kubectl: kubectlPath } = await ensureClusterBinaries(undefined, { allowBuild: false }));
    const crds = readGatewayApiCrds();
    run(['apply', '--server-side', '-f', '-'], crds.map((crd) => stringify(crd)).join('---\n'));
    run([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      ...crds.map((crd) => `crd/${(crd['metadata'] as { name: string }).name}`),
    ]);
    // weftd's two parts: the model writes the Gateway's status, the controller deploys it.
    model = new KubeMeshModel(kc, new ProxyGroups(), log, 'cluster.local', 'istio-system', {
      writeStatus: true,
      trustDomain: 'cluster.local',
    });
    await model.start();
    controller = new GatewayDeploymentController(
      kc,
      {
        image: 'docker.io/istio/proxyv2:1.28.1',
        proxyLogLevel: 'warning',
        discoveryAddress: 'weftd.weft-system.svc:15012',
        trustDomain: 'cluster.local',
        revision: '',
        resources: {},
      },
      log,
    );
    expect(await controller.start()).toBe(true);
    await createNamespace(kc, ns);
  });

  afterAll(async () => {
    await controller?.stop();
    await model?.stop();
  });

  const gateway = (name = 'gateway') =>
    custom.getNamespacedCustomObject({ group, version: 'v1', plural: 'gateways', namespace: ns, name }) as Promise<
      Gateway & { metadata: { uid: string; generation: number } }
    >;
  const deployment = (name = 'gateway-istio') => apps.readNamespacedDeployment({ name, namespace: ns });

  it("deploys Istio's task Gateway: ServiceAccount, Deployment and Service owned by it, and a running gateway pod", async () => {
    run(['apply', '-f', '-'], taskYaml);
    const { uid } = (await gateway()).metadata;
    const owner = { apiVersion: `${group}/v1`, kind: 'Gateway', name: 'gateway', uid };
    const [account, made, service] = await eventually('the gateway objects', async () =>
      Promise.all([
        core.readNamespacedServiceAccount({ name: 'gateway-istio', namespace: ns }),
        deployment(),
        core.readNamespacedService({ name: 'gateway-istio', namespace: ns }),
      ]),
    );
    for (const object of [account, made, service]) {
      expect(object.metadata?.ownerReferences).toEqual([owner]);
      expect(object.metadata?.labels).toMatchObject({
        'gateway.networking.k8s.io/gateway-name': 'gateway',
        'gateway.istio.io/managed': 'istio.io-gateway-controller',
      });
    }
    expect(made.spec?.template.spec?.securityContext?.sysctls).toEqual([{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }]);
    expect(service.spec?.type).toBe('LoadBalancer');
    expect(service.spec?.ports?.map((p) => [p.name, p.port, p.appProtocol])).toEqual([
      ['status-port', 15021, 'tcp'],
      ['default', 80, 'http'],
    ]);
    const pod = await eventually('the gateway pod running', async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'gateway.networking.k8s.io/gateway-name=gateway' });
      return pods.items.find((p) => p.status?.phase === 'Running');
    });
    expect(pod.spec?.serviceAccountName).toBe('gateway-istio');
    expect(pod.spec?.containers[0]?.args?.slice(0, 2)).toEqual(['proxy', 'router']);
    // No load balancer in this cluster: the Service's address stays pending, so not yet Programmed.
    const pending = await eventually('Gateway Programmed=False, address pending', async () => {
      const found = condition((await gateway()).status?.conditions, 'Programmed');
      return found?.reason === 'AddressNotAssigned' ? found : undefined;
    });
    expect(pending).toMatchObject({ status: 'False' });
    expect(pending.message).toContain('address pending for hostname "gateway-istio.istio-ingress.svc.cluster.local"');
  });

  it("is Programmed once the task's ClusterIP annotation makes its Service ClusterIP", async () => {
    // Istio's task, for clusters without external load balancer support.
    run(['annotate', 'gateway', 'gateway', 'networking.istio.io/service-type=ClusterIP', `--namespace=${ns}`]);
    const gw = await eventually('Gateway Programmed', async () => {
      const object = await gateway();
      return condition(object.status?.conditions, 'Programmed')?.status === 'True' ? object : undefined;
    });
    expect((await core.readNamespacedService({ name: 'gateway-istio', namespace: ns })).spec?.type).toBe('ClusterIP');
    expect(gw.status?.addresses).toEqual([{ type: 'Hostname', value: 'gateway-istio.istio-ingress.svc.cluster.local' }]);
    expect(condition(gw.status?.conditions, 'Programmed')?.observedGeneration).toBe(gw.metadata.generation);
  });

  it('keeps a manual scale and restores a label it owns, as Istio', async () => {
    run(['scale', 'deployment', 'gateway-istio', '--replicas=2', `--namespace=${ns}`]);
    run(['label', 'deployment', 'gateway-istio', 'gateway.networking.k8s.io/gateway-class-name-', `--namespace=${ns}`]);
    const restored = await eventually('the removed label restored', async () => {
      const object = await deployment();
      return object.metadata?.labels?.['gateway.networking.k8s.io/gateway-class-name'] === 'istio' ? object : undefined;
    });
    expect(restored.spec?.replicas).toBe(2);
    // A Gateway change reconciles again: its annotation reaches the Deployment, the replicas stay the user's.
    run(['annotate', 'gateway', 'gateway', 'example.com/team=edge', `--namespace=${ns}`]);
    const annotated = await eventually('the Gateway annotation on the Deployment', async () => {
      const object = await deployment();
      return object.metadata?.annotations?.['example.com/team'] === 'edge' ? object : undefined;
    });
    expect(annotated.spec?.replicas).toBe(2);
  });

  it("never touches a user's own Deployment of the same name", async () => {
    const own: V1Deployment = {
      metadata: { name: 'manual-istio', namespace: ns, labels: { app: 'mine' } },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'mine' } },
        template: { metadata: { labels: { app: 'mine' } }, spec: { containers: [{ name: 'c', image: 'example.com/mine:1' }] } },
      },
    };
    await apps.createNamespacedDeployment({ namespace: ns, body: own });
    run(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: `${group}/v1`,
        kind: 'Gateway',
        metadata: { name: 'manual', namespace: ns },
        spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 8080, protocol: 'HTTP' }] },
      }),
    );
    // Objects are applied in order (ServiceAccount, Deployment, Service): the Service means the Deployment was passed.
    await eventually('Service manual-istio', () => core.readNamespacedService({ name: 'manual-istio', namespace: ns }));
    const kept = await deployment('manual-istio');
    expect(kept.metadata?.labels).toEqual({ app: 'mine' });
    expect(kept.metadata?.ownerReferences).toBeUndefined();
    expect(kept.spec?.template.spec?.containers.map((c) => c.image)).toEqual(['example.com/mine:1']);
  });

  it('leaves garbage collection of what it made to the owner reference when the Gateway is deleted', async () => {
    await custom.deleteNamespacedCustomObject({ group, version: 'v1', plural: 'gateways', namespace: ns, name: 'gateway' });
    await eventually(
      'the gateway objects garbage-collected',
      async () =>
        (await absent(() => deployment())) &&
        (await absent(() => core.readNamespacedService({ name: 'gateway-istio', namespace: ns }))) &&
        (await absent(() => core.readNamespacedServiceAccount({ name: 'gateway-istio', namespace: ns }))),
      100_000,
    );
  });
});
