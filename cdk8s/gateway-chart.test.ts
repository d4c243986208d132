import { join } from 'node:path';
import { stringify } from 'yaml';
import { labels } from '../api/labels.js';
import type { GatewaySpec } from '../api/mesh-installation.js';
import { expectMatchesGolden } from '../testing/jest/golden.js';
import { meshInstallation } from '../testing/fixtures/mesh-installation.js';
import { controlPlaneManifests } from './control-plane-chart.js';
import { desiredGateways, gatewayPodTemplate } from './gateway-chart.js';
import type { Manifest } from './synth.js';

const testdata = join(import.meta.dirname, 'testdata');
type Spec = Parameters<typeof meshInstallation>[1];
const synth = (spec: Spec) => controlPlaneManifests({ installation: meshInstallation('mesh', spec), operatorVersion: '0.1.0' });
const gatewayObjects = (manifests: Manifest[]) => manifests.filter((m) => m.metadata.labels?.[labels.component] === 'gateway');
const named = (manifests: Manifest[], kind: string, name: string): Manifest & Record<string, any> => {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found as Manifest & Record<string, any>;
};
// The fixture defaults objects, not list items: a gateway is written as the user would, its defaults left to the chart.
const gw = (gateway: Record<string, unknown>) => gateway as unknown as GatewaySpec;
const gatewayNames = (spec: Spec) => desiredGateways(meshInstallation('mesh', spec)).map((g) => `${g.kind}:${g.name}`);

describe('gateway deployments', () => {
  it('synthesizes an ingress with its own ports and PDB, and an autoscaled egress, exactly as reviewed', () => {
    const manifests = synth({
      profile: 'minimal',
      gateways: {
        ingress: [
          gw({
            name: 'public-gateway',
            namespace: 'edge',
            labels: { istio: 'public' },
            replicas: 3,
            service: {
              type: 'NodePort',
              externalTrafficPolicy: 'Local',
              annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb' },
              ports: [
                { name: 'status-port', port: 15021, targetPort: 15021 },
                { name: 'https', port: 443, targetPort: 8443, nodePort: 30443 },
              ],
            },
            podDisruptionBudget: { maxUnavailable: 1 },
          }),
        ],
        egress: [
          gw({
            name: 'istio-egressgateway',
            resources: { requests: { cpu: '500m' } },
            autoscaling: { minReplicas: 2, maxReplicas: 6, targetCPUUtilizationPercentage: 60 },
            podDisruptionBudget: {},
          }),
        ],
      },
    });
    expectMatchesGolden(
      join(testdata, 'gateways.yaml'),
      gatewayObjects(manifests)
        .map((m) => stringify(m))
        .join('---\n'),
    );
  });

  it("installs the gateways of Istio's profiles unless the spec lists its own", () => {
    expect(gatewayNames({})).toEqual(['Ingress:istio-ingressgateway']);
    expect(gatewayNames({ profile: 'demo' })).toEqual(['Ingress:istio-ingressgateway', 'Egress:istio-egressgateway']);
    expect(gatewayNames({ profile: 'minimal' })).toEqual([]);
    // A revision's gateways would share the default revision's names: none come from its profile.
    expect(gatewayNames({ profile: 'demo', revision: 'canary' })).toEqual([]);
    // A list set replaces the profile's, as IstioOperator lists do; enabled: false leaves a gateway out.
    expect(gatewayNames({ profile: 'demo', gateways: { egress: [] } })).toEqual(['Ingress:istio-ingressgateway']);
    expect(
      gatewayNames({ gateways: { ingress: [gw({ name: 'istio-ingressgateway', enabled: false }), gw({ name: 'internal' })] } }),
    ).toEqual(['Ingress:internal']);
  });

  it("defaults as Istio's charts: labels, Service type and ports per kind, resources, one replica, the control-plane namespace", () => {
    const [ingress, egress] = desiredGateways(meshInstallation('mesh', { profile: 'demo', namespace: 'mesh-system' }));
    expect(ingress).toMatchObject({
      namespace: 'mesh-system',
      labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
      replicas: 1,
      service: {
        type: 'LoadBalancer',
        ports: [
          { port: 15021, targetPort: 15021 },
          { port: 80, targetPort: 8080 },
          { port: 443, targetPort: 8443 },
        ],
      },
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2000m', memory: '1024Mi' } },
      serviceAccountName: 'istio-ingressgateway-service-account',
    });
    expect(egress).toMatchObject({
      labels: { app: 'istio-egressgateway', istio: 'egressgateway' },
      service: {
        type: 'ClusterIP',
        ports: [
          { port: 80, targetPort: 8080 },
          { port: 443, targetPort: 8443 },
        ],
      },
    });
    expect(ingress?.autoscaling).toBeUndefined();
    expect(ingress?.podDisruptionBudget).toBeUndefined();
  });

  it('leaves the replicas to the autoscaler when there is one, so server-side apply never takes them back', () => {
    const manifests = synth({ profile: 'minimal', gateways: { ingress: [gw({ name: 'gw', autoscaling: { maxReplicas: 4 } })] } });
    expect(named(manifests, 'Deployment', 'gw').spec.replicas).toBeUndefined();
    expect(named(manifests, 'HorizontalPodAutoscaler', 'gw').spec).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'gw' },
      minReplicas: 1,
      maxReplicas: 4,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }],
    });
    expect(manifests.some((m) => m.kind === 'PodDisruptionBudget' && m.metadata.name === 'gw')).toBe(false);
    expect(named(synth({ profile: 'minimal', gateways: { ingress: [gw({ name: 'gw' })] } }), 'Deployment', 'gw').spec.replicas).toBe(1);
  });

  it('labels every gateway object with its installation (pruning selects on it), but not the pods, which follow their Deployment', () => {
    const objects = gatewayObjects(synth({ profile: 'demo' }));
    expect(objects.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual(
      [
        'Deployment/istio-egressgateway',
        'Deployment/istio-ingressgateway',
        'Role/istio-egressgateway-sds',
        'Role/istio-ingressgateway-sds',
        'RoleBinding/istio-egressgateway-sds',
        'RoleBinding/istio-ingressgateway-sds',
        'Service/istio-egressgateway',
        'Service/istio-ingressgateway',
        'ServiceAccount/istio-egressgateway-service-account',
        'ServiceAccount/istio-ingressgateway-service-account',
      ].sort(),
    );
    for (const object of objects) expect(object.metadata.labels?.[labels.installation]).toBe('mesh');
    const deployment = named(objects, 'Deployment', 'istio-ingressgateway');
    const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
    expect(podLabels[labels.installation]).toBeUndefined();
    expect(podLabels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(podLabels).toMatchObject(named(objects, 'Service', 'istio-ingressgateway').spec.selector);
  });

  it("gives each gateway's ServiceAccount Istio's -sds Role: get, watch and list Secrets in its own namespace only", () => {
    const manifests = synth({ profile: 'minimal', gateways: { ingress: [gw({ name: 'gw', namespace: 'edge' })] } });
    expect(named(manifests, 'Role', 'gw-sds')).toMatchObject({
      metadata: { namespace: 'edge' },
      rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'watch', 'list'] }],
    });
    expect(named(manifests, 'RoleBinding', 'gw-sds')).toMatchObject({
      metadata: { namespace: 'edge' },
      roleRef: { kind: 'Role', name: 'gw-sds' },
      subjects: [{ kind: 'ServiceAccount', name: 'gw-service-account' }],
    });
    expect(manifests.some((m) => m.kind === 'ClusterRoleBinding' && JSON.stringify(m).includes('gw-service-account'))).toBe(false);
  });

  it("builds the proxy pod as Istio's gateway: proxyv2 in router mode, pointed at weftd's 15012 for certificates and config", () => {
    const template = gatewayPodTemplate({
      name: 'gw',
      deploymentName: 'gw',
      namespace: 'edge',
      labels: { istio: 'ingressgateway' },
      serviceAccountName: 'gw-sa',
      image: 'docker.io/istio/proxyv2:1.28.1',
      proxyLogLevel: 'info',
      discoveryAddress: 'weftd-canary.weft-system.svc:15012',
      trustDomain: 'example.org',
      revision: 'canary',
      resources: { requests: { cpu: '100m' }, limits: {} },
      containerPorts: [
        { containerPort: 8080, protocol: 'TCP' },
        { containerPort: 8080, protocol: 'TCP' },
      ],
    });
    const container = template.spec!.containers[0]!;
    const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(container.args?.slice(0, 2)).toEqual(['proxy', 'router']);
    expect(env['CA_ADDR']).toBe('weftd-canary.weft-system.svc:15012');
    expect(JSON.parse(env['PROXY_CONFIG'] as string)).toEqual({ discoveryAddress: 'weftd-canary.weft-system.svc:15012' });
    expect(env['ISTIO_META_OWNER']).toBe('kubernetes://apis/apps/v1/namespaces/edge/deployments/gw');
    expect(env['TRUST_DOMAIN']).toBe('example.org');
    expect(container.readinessProbe?.httpGet).toMatchObject({ path: '/healthz/ready', port: 15021 });
    expect(container.ports?.map((p) => p.containerPort)).toEqual([8080, 15090]);
    expect(container.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1337, readOnlyRootFilesystem: true });
    expect(template.metadata?.labels).toMatchObject({
      'sidecar.istio.io/inject': 'false',
      'istio.io/rev': 'canary',
      istio: 'ingressgateway',
    });
    const token = template.spec!.volumes!.find((v) => v.name === 'istio-token');
    expect(token?.projected?.sources?.[0]?.serviceAccountToken).toMatchObject({ audience: 'istio-ca', path: 'istio-token' });
    expect(template.spec!.volumes!.find((v) => v.name === 'istiod-ca-cert')?.configMap?.name).toBe('istio-ca-root-cert');
    const mounted = new Set(container.volumeMounts?.map((m) => m.name));
    expect(template.spec!.volumes!.every((v) => mounted.has(v.name))).toBe(true);
  });

  it("keeps weftd's Deployment the chart's first, before any gateway's", () => {
    const deployments = synth({ profile: 'demo' }).filter((m) => m.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata.name)).toEqual(['weftd', 'istio-ingressgateway', 'istio-egressgateway']);
  });
});
