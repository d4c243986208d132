// The Gateway API against a real API server: the vendored standard-channel CRDs applied as install.yaml
// carries them, Istio's Gateway API task YAML applied unchanged with kubectl, and the conditions weftd's
// model writes read back: GatewayClass Accepted, Gateway Accepted/Programmed with its Service's address,
// per-listener conditions and attachedRoutes, the route's Accepted/ResolvedRefs, each with observedGeneration.
import { readFileSync } from 'node:fs';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { readGatewayApiCrds } from '../api/crds.js';
import { componentLogger } from '../lib/logger.js';
import { ensureClusterBinaries } from '../testing/cluster/binaries.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually, kubectl } from '../testing/jest/kube-helpers.js';
import { installIstioCrds } from '../testing/jest/xds-harness.js';
import { ProxyGroups } from '../xds/cache/proxy-groups.js';
import { KubeMeshModel } from '../xds/model/kube-mesh-model.js';
import type { Condition, Gateway, HttpRoute } from './gateway-api-types.js';

const log = componentLogger('gateway-api-status-test');
const group = 'gateway.networking.k8s.io';
const taskYaml = readFileSync(new URL('./testdata/istio-docs/gateway-api-task.yaml', import.meta.url), 'utf8');
const condition = (conditions: Condition[] | undefined, type: string) => conditions?.find((c) => c.type === type);

describeWithCluster('Gateway API status on a real API server', (cluster) => {
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let model: KubeMeshModel;
  let kubectlPath: string;

  beforeAll(async () => {
    kc = cluster().kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    await installIstioCrds(cluster());
    ({ kubectl: kubectlPath } = await ensureClusterBinaries(undefined, { allowBuild: false }));
    const crds = readGatewayApiCrds();
    const applied = kubectl(cluster(), kubectlPath, ['apply', '--server-side', '-f', '-'], crds.map((crd) => stringify(crd)).join('---\n'));
    if (applied.status !== 0) throw new Error(`applying the Gateway API CRDs failed: ${applied.stderr}`);
    const names = crds.map((crd) => `crd/${(crd['metadata'] as { name: string }).name}`);
    const waited = kubectl(cluster(), kubectlPath, ['wait', '--for=condition=Established', '--timeout=60s', ...names]);
    if (waited.status !== 0) throw new Error(`the Gateway API CRDs did not become Established: ${waited.stderr}`);

    model = new KubeMeshModel(kc, new ProxyGroups(), log, 'cluster.local', 'istio-system', {
      writeStatus: true,
      trustDomain: 'cluster.local',
    });
    await model.start();
    await createNamespace(kc, 'istio-ingress');
  });

  afterAll(async () => {
    await model?.stop();
  });

  const gatewayClass = (name: string) =>
    custom.getClusterCustomObject({ group, version: 'v1', plural: 'gatewayclasses', name }) as Promise<{
      metadata: { generation: number };
      spec: { controllerName: string };
      status?: { conditions?: Condition[] };
    }>;
  const gateway = () =>
    custom.getNamespacedCustomObject({ group, version: 'v1', plural: 'gateways', namespace: 'istio-ingress', name: 'gateway' }) as Promise<
      Gateway & { metadata: { generation: number } }
    >;
  const route = () =>
    custom.getNamespacedCustomObject({ group, version: 'v1', plural: 'httproutes', namespace: 'default', name: 'http' }) as Promise<
      HttpRoute & { metadata: { generation: number } }
    >;

  it('creates GatewayClasses weft and istio and accepts them', async () => {
    for (const [name, controller] of [
      ['weft', 'weft.dev/gateway-controller'],
      ['istio', 'istio.io/gateway-controller'],
    ]) {
      const accepted = await eventually(`GatewayClass ${name} Accepted`, async () => {
        const object = await gatewayClass(name as string);
        const found = condition(object.status?.conditions, 'Accepted');
        return found?.status === 'True' ? { object, found } : undefined;
      });
      expect(accepted.object.spec.controllerName).toBe(controller);
      expect(accepted.found).toMatchObject({ reason: 'Accepted', observedGeneration: accepted.object.metadata.generation });
    }
  });

  it("applies Istio's task YAML unchanged and reports the route Accepted with its references resolved", async () => {
    const applied = kubectl(cluster(), kubectlPath, ['apply', '-f', '-'], taskYaml);
    expect(applied.stderr).toBe('');
    expect(applied.status).toBe(0);
    const parent = await eventually('HTTPRoute http accepted by its Gateway', async () => {
      const object = await route();
      const status = object.status?.parents?.[0];
      return condition(status?.conditions, 'Accepted')?.status === 'True' ? { object, status } : undefined;
    });
    expect(parent.status?.controllerName).toBe('istio.io/gateway-controller');
    expect(parent.status?.parentRef).toEqual({ group, kind: 'Gateway', name: 'gateway', namespace: 'istio-ingress' });
    expect(condition(parent.status?.conditions, 'ResolvedRefs')).toMatchObject({
      status: 'True',
      reason: 'ResolvedRefs',
      observedGeneration: parent.object.metadata.generation,
    });

    const gw = await eventually('Gateway status with its listener', async () => {
      const object = await gateway();
      return object.status?.listeners?.[0]?.attachedRoutes === 1 ? object : undefined;
    });
    expect(condition(gw.status?.conditions, 'Accepted')).toMatchObject({ status: 'True', observedGeneration: gw.metadata.generation });
    // No Deployment or Service made for it yet: not Programmed, saying which Service is missing.
    expect(condition(gw.status?.conditions, 'Programmed')).toMatchObject({ status: 'False', reason: 'AddressNotUsable' });
    const listener = gw.status?.listeners?.[0];
    expect(listener?.supportedKinds).toEqual([
      { group, kind: 'HTTPRoute' },
      { group, kind: 'GRPCRoute' },
    ]);
    for (const [type, status] of [
      ['Accepted', 'True'],
      ['Programmed', 'True'],
      ['ResolvedRefs', 'True'],
      ['Conflicted', 'False'],
    ])
      expect(condition(listener?.conditions, type as string)).toMatchObject({ status, observedGeneration: gw.metadata.generation });

    // The generated config is in the model the generators read.
    const vs = model
      .current()
      ?.istio?.virtualServices.find((v) => v.name === 'istio-ingress~gateway~istio-autogenerated-k8s-gateway~default~httpbin.example.com');
    expect(vs?.spec.gateways).toEqual(['istio-ingress/gateway~istio-autogenerated-k8s-gateway~default']);
  });

  it("is Programmed with its Service's address once the gateway Service exists", async () => {
    await kc.makeApiClient(CoreV1Api).createNamespacedService({
      namespace: 'istio-ingress',
      body: {
        metadata: { name: 'gateway-istio' },
        spec: { selector: { 'gateway.networking.k8s.io/gateway-name': 'gateway' }, ports: [{ name: 'http', port: 80 }] },
      },
    });
    const gw = await eventually('Gateway Programmed', async () => {
      const object = await gateway();
      return condition(object.status?.conditions, 'Programmed')?.status === 'True' ? object : undefined;
    });
    expect(gw.status?.addresses).toEqual([{ type: 'Hostname', value: 'gateway-istio.istio-ingress.svc.cluster.local' }]);
  });

  it('turns a BackendTLSPolicy into TLS origination for its Service and reports it Accepted', async () => {
    const policy = [
      'apiVersion: gateway.networking.k8s.io/v1',
      'kind: BackendTLSPolicy',
      'metadata: { name: httpbin-tls, namespace: default }',
      'spec:',
      '  targetRefs: [{ group: "", kind: Service, name: httpbin }]',
      '  validation: { wellKnownCACertificates: System, hostname: httpbin.example.com }',
    ].join('\n');
    const applied = kubectl(cluster(), kubectlPath, ['apply', '-f', '-'], policy);
    expect(applied.stderr).toBe('');
    const ancestor = await eventually('BackendTLSPolicy Accepted', async () => {
      const object = (await custom.getNamespacedCustomObject({
        group,
        version: 'v1',
        plural: 'backendtlspolicies',
        namespace: 'default',
        name: 'httpbin-tls',
      })) as { metadata: { generation: number }; status?: { ancestors?: Array<{ controllerName: string; conditions: Condition[] }> } };
      const found = object.status?.ancestors?.find((a) => a.controllerName === 'weft.dev/mesh-controller');
      return condition(found?.conditions, 'Accepted')?.status === 'True' ? { object, found } : undefined;
    });
    expect(condition(ancestor.found?.conditions, 'ResolvedRefs')).toMatchObject({
      status: 'True',
      observedGeneration: ancestor.object.metadata.generation,
    });
    // The Gateway whose route reaches httpbin is an ancestor too, for its own controller.
    expect(ancestor.object.status?.ancestors?.map((a) => a.controllerName)).toContain('istio.io/gateway-controller');
    const rule = model.current()?.istio?.destinationRules.find((d) => d.name === 'httpbin~istio-autogenerated-k8s-gateway');
    expect(rule?.spec).toEqual({
      host: 'httpbin.default.svc.cluster.local',
      trafficPolicy: { tls: { mode: 'SIMPLE', sni: 'httpbin.example.com' } },
    });
  });

  it('reports a backend that does not exist as ResolvedRefs=False BackendNotFound, for the new generation', async () => {
    const edited = taskYaml.replace('- name: httpbin\n      port: 8000', '- name: does-not-exist\n      port: 8000');
    expect(edited).not.toBe(taskYaml);
    const applied = kubectl(cluster(), kubectlPath, ['apply', '-f', '-'], edited);
    expect(applied.status).toBe(0);
    const parent = await eventually('HTTPRoute ResolvedRefs False', async () => {
      const object = await route();
      const found = condition(object.status?.parents?.[0]?.conditions, 'ResolvedRefs');
      return found?.status === 'False' ? { object, found } : undefined;
    });
    expect(parent.found).toMatchObject({
      reason: 'BackendNotFound',
      message: 'backend(does-not-exist.default.svc.cluster.local) not found',
      observedGeneration: parent.object.metadata.generation,
    });
    expect(parent.object.metadata.generation).toBeGreaterThan(1);
  });

  it("writes an Istio Gateway's own status beside a Gateway API Gateway of the same namespace and name", async () => {
    // The two kinds share the name Gateway: the status writer must tell them apart by group.
    const istioGateway = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'gateway', namespace: 'istio-ingress' },
      spec: {
        selector: { istio: 'nothing-selects-this' },
        servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
      },
    };
    const applied = kubectl(cluster(), kubectlPath, ['apply', '-f', '-'], JSON.stringify(istioGateway));
    expect(applied.status).toBe(0);
    const status = await eventually('the Istio Gateway status', async () => {
      const object = (await custom.getNamespacedCustomObject({
        group: 'networking.istio.io',
        version: 'v1',
        plural: 'gateways',
        namespace: 'istio-ingress',
        name: 'gateway',
      })) as { status?: { conditions?: Condition[]; validationMessages?: Array<{ type: { code: string } }> } };
      return object.status?.conditions ? object.status : undefined;
    });
    // No workload has its selector's labels: Istio's IST0101, an error, so not Accepted.
    expect(condition(status.conditions, 'Accepted')).toMatchObject({ status: 'False' });
    expect(status.validationMessages?.map((m) => m.type.code)).toContain('IST0101');
    // The Gateway API Gateway keeps its own status.
    expect(condition((await gateway()).status?.conditions, 'Accepted')?.status).toBe('True');
  });
});
