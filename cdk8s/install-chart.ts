// install.yaml: Weft's CRDs, the operator and its RBAC. What `kubectl apply -f` installs.
import { ApiObject } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { labels, ports } from '../api/labels.js';
import { defaultImageRepository } from './control-plane-chart.js';
import { operatorClusterRules } from './rbac.js';
import { synthesize, type Manifest } from './synth.js';

export const operatorNamespace = 'weft-operator';

export interface InstallInput {
  version: string;
  image?: string;
  crds: Array<Record<string, unknown>>;
  /**
   * The Kubernetes Gateway API's CRDs (api/crds.ts readGatewayApiCrds), after Weft's and Istio's. Left
   * out (`weft manifests --no-gateway-api-crds`) when the cluster already has them: server-side apply
   * would otherwise take their fields from whoever installed them, or replace a newer release.
   */
  gatewayApiCrds?: Array<Record<string, unknown>>;
}

export function installManifests(input: InstallInput): Manifest[] {
  return synthesize((chart) => {
    const common = { [labels.partOf]: 'weft', [labels.name]: 'weft-operator', [labels.version]: input.version };
    [...input.crds, ...(input.gatewayApiCrds ?? [])].forEach((crd, index) => {
      const { apiVersion, kind, ...rest } = crd as { apiVersion: string; kind: string };
      new ApiObject(chart, `crd-${index}`, { apiVersion, kind, ...rest });
    });
    new k8s.KubeNamespace(chart, 'namespace', { metadata: { name: operatorNamespace, labels: common } });
    new k8s.KubeServiceAccount(chart, 'service-account', {
      metadata: { name: 'weft-operator', namespace: operatorNamespace, labels: common },
    });
    new k8s.KubeClusterRole(chart, 'cluster-role', { metadata: { name: 'weft-operator', labels: common }, rules: operatorClusterRules });
    new k8s.KubeClusterRoleBinding(chart, 'cluster-role-binding', {
      metadata: { name: 'weft-operator', labels: common },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'weft-operator' },
      subjects: [{ kind: 'ServiceAccount', name: 'weft-operator', namespace: operatorNamespace }],
    });
    const selector = { [labels.name]: 'weft-operator' };
    new k8s.KubeDeployment(chart, 'deployment', {
      metadata: { name: 'weft-operator', namespace: operatorNamespace, labels: common },
      spec: {
        // Two replicas with leader election: a standby takes over within seconds.
        replicas: 2,
        selector: { matchLabels: selector },
        template: {
          metadata: {
            labels: { ...common, ...selector, 'sidecar.istio.io/inject': 'false' },
            // Scraped without a ServiceMonitor, as istiod's pods are.
            annotations: {
              'prometheus.io/scrape': 'true',
              'prometheus.io/port': String(ports.monitoring),
              'prometheus.io/path': '/metrics',
            },
          },
          spec: {
            serviceAccountName: 'weft-operator',
            securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'operator',
                image: input.image ?? `${defaultImageRepository}:${input.version}`,
                args: ['operator'],
                env: [
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                ],
                ports: [{ name: 'http-monitoring', containerPort: ports.monitoring }],
                readinessProbe: { httpGet: { path: '/healthz', port: k8s.IntOrString.fromNumber(ports.monitoring) } },
                livenessProbe: { httpGet: { path: '/healthz', port: k8s.IntOrString.fromNumber(ports.monitoring) } },
                resources: { requests: { cpu: k8s.Quantity.fromString('50m'), memory: k8s.Quantity.fromString('128Mi') } },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  runAsNonRoot: true,
                  capabilities: { drop: ['ALL'] },
                },
              },
            ],
          },
        },
      },
    });
  }, 'weft-install');
}
