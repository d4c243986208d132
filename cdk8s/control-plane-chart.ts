// The control plane of one MeshInstallation, as a pure function of its spec.
import { ApiObject, type Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { stringify } from 'yaml';
import { labels, ports, webhookProbe } from '../api/labels.js';
import { injectorWebhooks } from '../istio/injection/injection-policy.js';
import type { MeshInstallation } from '../api/mesh-installation.js';
import { desiredGateways, gatewayManifests } from './gateway-chart.js';
import { controlPlaneNames } from './names.js';
import { profileDefaults } from './profiles.js';
import { istioResources, weftdClusterRules, weftdNamespaceRules } from './rbac.js';
import { synthesize, type Manifest } from './synth.js';

export const defaultImageRepository = 'ghcr.io/weft-mesh/weft';

export interface ControlPlaneInput {
  installation: MeshInstallation;
  /** The operator's own version: the image tag when the spec names none. */
  operatorVersion: string;
  /** OpenTelemetry exporter settings (OTEL_*) the operator runs with: weftd exports its traces to the same place. */
  tracingEnv?: Record<string, string>;
}

// The Istio kinds weftd validates (webhooks/admission-review.ts), in every version Istio serves.
const validatedIstioKinds = [
  {
    group: 'networking.istio.io',
    versions: ['v1', 'v1beta1', 'v1alpha3'],
    resources: istioResources['networking.istio.io'],
  },
  { group: 'security.istio.io', versions: ['v1', 'v1beta1'], resources: istioResources['security.istio.io'] },
] as const;

export function controlPlaneManifests(input: ControlPlaneInput): Manifest[] {
  return synthesize((chart) => buildControlPlane(chart, input), 'weft-control-plane');
}

function buildControlPlane(chart: Chart, { installation, operatorVersion, tracingEnv = {} }: ControlPlaneInput): void {
  const { spec } = installation;
  const names = controlPlaneNames(installation);
  const profile = profileDefaults(spec.profile);
  const version = spec.version || operatorVersion;
  const replicas = spec.controlPlane.replicas ?? profile.replicas;
  const common = {
    [labels.partOf]: 'weft',
    [labels.managedBy]: 'weft-operator',
    [labels.installation]: installation.metadata.name,
    [labels.version]: version,
  };
  const ownerReferences = installation.metadata.uid
    ? [
        {
          apiVersion: installation.apiVersion,
          kind: installation.kind,
          name: installation.metadata.name,
          uid: installation.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]
    : undefined;
  const meta = (name: string, namespaced: boolean, extra: Record<string, string> = {}) => ({
    name,
    ...(namespaced ? { namespace: names.namespace } : {}),
    labels: { ...common, ...extra },
    ...(ownerReferences ? { ownerReferences } : {}),
  });
  const selector = { [labels.name]: 'weftd', [labels.installation]: installation.metadata.name };
  const revisionLabels: Record<string, string> = { [labels.revision]: spec.revision || 'default' };

  new k8s.KubeNamespace(chart, 'namespace', { metadata: meta(names.namespace, false) });
  new k8s.KubeServiceAccount(chart, 'service-account', { metadata: meta(names.weftd, true) });

  new k8s.KubeClusterRole(chart, 'cluster-role', { metadata: meta(names.clusterRole, false), rules: weftdClusterRules });
  new k8s.KubeClusterRoleBinding(chart, 'cluster-role-binding', {
    metadata: meta(names.clusterRole, false),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: names.clusterRole },
    subjects: [{ kind: 'ServiceAccount', name: names.weftd, namespace: names.namespace }],
  });
  new k8s.KubeRole(chart, 'role', { metadata: meta(names.weftd, true), rules: weftdNamespaceRules });
  new k8s.KubeRoleBinding(chart, 'role-binding', {
    metadata: meta(names.weftd, true),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: names.weftd },
    subjects: [{ kind: 'ServiceAccount', name: names.weftd, namespace: names.namespace }],
  });

  new k8s.KubeConfigMap(chart, 'mesh-config', {
    metadata: meta(names.meshConfigMap, true, revisionLabels),
    data: { mesh: stringify(meshConfig(installation, profile.accessLogging, profile.tracingSampling)) },
  });
  new k8s.KubeConfigMap(chart, 'injector-config', {
    metadata: meta(names.injectorConfigMap, true, revisionLabels),
    data: {
      values: JSON.stringify(
        {
          revision: spec.revision,
          trustDomain: spec.meshConfig.trustDomain,
          discoveryAddress: `${names.weftd}.${names.namespace}.svc:${ports.xdsTls}`,
          proxy: { image: spec.proxy.image, logLevel: spec.proxy.logLevel, resources: spec.proxy.resources ?? {} },
          honorIstioLabels: spec.injection.honorIstioLabels,
          namespaceLabel: spec.injection.namespaceLabel,
          cni: spec.injection.cni,
          // Istio's injector settings (sidecarInjectorWebhook values): the decision weftd makes per pod.
          ...(spec.injection.policy ? { policy: spec.injection.policy } : {}),
          ...(spec.injection.revisionTags?.length ? { revisionTags: spec.injection.revisionTags } : {}),
          ...(spec.injection.neverInjectSelector?.length ? { neverInjectSelector: spec.injection.neverInjectSelector } : {}),
          ...(spec.injection.alwaysInjectSelector?.length ? { alwaysInjectSelector: spec.injection.alwaysInjectSelector } : {}),
        },
        null,
        2,
      ),
    },
  });

  const resources = {
    requests: { ...profile.resources.requests, ...spec.controlPlane.resources?.requests },
    ...(spec.controlPlane.resources?.limits ? { limits: spec.controlPlane.resources.limits } : {}),
  };
  new k8s.KubeDeployment(chart, 'weftd', {
    metadata: meta(names.weftd, true, { ...selector, ...revisionLabels }),
    spec: {
      replicas,
      selector: { matchLabels: selector },
      strategy: {
        type: 'RollingUpdate',
        rollingUpdate: { maxUnavailable: k8s.IntOrString.fromNumber(0), maxSurge: k8s.IntOrString.fromString('100%') },
      },
      template: {
        metadata: {
          labels: { ...common, ...selector, ...revisionLabels, 'sidecar.istio.io/inject': 'false' },
          annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(ports.monitoring), 'prometheus.io/path': '/metrics' },
        },
        spec: {
          serviceAccountName: names.weftd,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'weftd',
              image: spec.controlPlane.image ?? `${defaultImageRepository}:${version}`,
              args: ['control-plane'],
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                { name: 'WEFT_INSTALLATION', value: installation.metadata.name },
                { name: 'WEFT_SERVICE', value: names.weftd },
                // Read through the API rather than mounted, so changes apply without kubelet sync delays.
                { name: 'WEFT_MESH_CONFIGMAP', value: names.meshConfigMap },
                { name: 'WEFT_INJECTOR_CONFIGMAP', value: names.injectorConfigMap },
                { name: 'WEFT_REVISION', value: spec.revision },
                { name: 'WEFT_MUTATING_WEBHOOK', value: names.mutatingWebhook },
                { name: 'WEFT_VALIDATING_WEBHOOK', value: names.validatingWebhook },
                { name: 'WEFT_CA_MODE', value: spec.ca.mode },
                ...(spec.ca.pluggedSecretName ? [{ name: 'WEFT_CA_SECRET', value: spec.ca.pluggedSecretName }] : []),
                { name: 'WEFT_WORKLOAD_CERT_TTL', value: spec.ca.workloadCertTTL },
                // The dashboard's second traffic source (dashboard/prometheus-source.ts): Istio's metrics in Prometheus.
                ...(spec.dashboard?.prometheus?.url ? [{ name: 'WEFT_PROMETHEUS_URL', value: spec.dashboard.prometheus.url }] : []),
                ...Object.keys(tracingEnv)
                  .sort()
                  .map((name) => ({ name, value: tracingEnv[name] ?? '' })),
              ],
              ports: [
                { name: 'grpc-xds', containerPort: ports.xdsPlaintext },
                { name: 'grpc-xds-tls', containerPort: ports.xdsTls },
                { name: 'http-monitoring', containerPort: ports.monitoring },
                { name: 'https-webhook', containerPort: ports.webhook },
              ],
              readinessProbe: { httpGet: { path: '/ready', port: k8s.IntOrString.fromNumber(ports.monitoring) }, periodSeconds: 3 },
              livenessProbe: { httpGet: { path: '/healthz', port: k8s.IntOrString.fromNumber(ports.monitoring) }, periodSeconds: 10 },
              resources: {
                requests: Object.fromEntries(Object.entries(resources.requests).map(([k, v]) => [k, k8s.Quantity.fromString(v)])),
                ...(resources.limits
                  ? {
                      limits: Object.fromEntries(
                        Object.entries(resources.limits).map(([k, v]) => [k, k8s.Quantity.fromString(v as string)]),
                      ),
                    }
                  : {}),
              },
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

  // A one-replica PDB would block every node drain, so it exists only with more replicas.
  if (replicas > 1) {
    new k8s.KubePodDisruptionBudget(chart, 'pdb', {
      metadata: meta(names.weftd, true),
      spec: { minAvailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selector } },
    });
  }

  new k8s.KubeService(chart, 'service', {
    metadata: meta(names.weftd, true, { ...selector, ...revisionLabels }),
    spec: {
      selector,
      ports: [
        { name: 'grpc-xds', port: ports.xdsPlaintext, targetPort: k8s.IntOrString.fromNumber(ports.xdsPlaintext) },
        { name: 'grpc-xds-tls', port: ports.xdsTls, targetPort: k8s.IntOrString.fromNumber(ports.xdsTls) },
        { name: 'http-monitoring', port: ports.monitoring, targetPort: k8s.IntOrString.fromNumber(ports.monitoring) },
        { name: 'https-webhook', port: ports.webhookService, targetPort: k8s.IntOrString.fromNumber(ports.webhook) },
      ],
    },
  });

  const clientConfig = (path: string) => ({ service: { name: names.weftd, namespace: names.namespace, path, port: ports.webhookService } });
  // Istio's selectors, per revision: the same table weftd's webhook, `weft inject` and `weft analyze` evaluate.
  const injectorHooks = injectorWebhooks({
    revision: spec.revision,
    namespaceLabel: spec.injection.namespaceLabel,
    honorIstioLabels: spec.injection.honorIstioLabels,
    excludedNamespaces: [names.namespace],
    ...(spec.injection.revisionTags?.length ? { revisionTags: spec.injection.revisionTags } : {}),
  });
  // weftd's readiness probe (webhooks/webhook-probe.ts): only ConfigMaps labelled for it, only in weftd's
  // namespace, so no user object ever reaches it; Ignore, since a probe weftd cannot answer just stays unproven.
  const probeWebhook = (name: string, path: string) => ({
    name,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Ignore',
    matchPolicy: 'Equivalent',
    timeoutSeconds: 5,
    clientConfig: clientConfig(path),
    namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [names.namespace] }] },
    objectSelector: { matchExpressions: [{ key: webhookProbe.label, operator: 'Exists' }] },
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'], scope: 'Namespaced' }],
  });
  // caBundle is left out on purpose: weftd owns that field and keeps it current.
  new k8s.KubeMutatingWebhookConfiguration(chart, 'mutating-webhook', {
    metadata: meta(names.mutatingWebhook, false, revisionLabels),
    webhooks: [
      ...injectorHooks.map((hook) => ({
        name: hook.name,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: spec.injection.failurePolicy,
        reinvocationPolicy: 'IfNeeded',
        matchPolicy: 'Equivalent',
        timeoutSeconds: 10,
        clientConfig: clientConfig('/inject'),
        namespaceSelector: hook.namespaceSelector,
        objectSelector: hook.objectSelector,
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
      })),
      probeWebhook('probe.weft.dev', webhookProbe.mutatePath),
    ],
  });
  new k8s.KubeValidatingWebhookConfiguration(chart, 'validating-webhook', {
    metadata: meta(names.validatingWebhook, false, revisionLabels),
    webhooks: [
      {
        name: 'validation.weft.dev',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        // Fail closed, as istiod's validator ends up once it is ready. istiod installs with Ignore and
        // flips to Fail itself; here the operator owns failurePolicy (weftd owns only caBundle), so a
        // flip would fight server-side apply. Only CREATE/UPDATE of Istio config wait for weftd.
        failurePolicy: 'Fail',
        matchPolicy: 'Equivalent',
        timeoutSeconds: 10,
        clientConfig: clientConfig('/validate'),
        rules: validatedIstioKinds.map(({ group, versions, resources }) => ({
          operations: ['CREATE', 'UPDATE'],
          apiGroups: [group],
          apiVersions: [...versions],
          resources: [...resources],
          scope: 'Namespaced',
        })),
      },
      probeWebhook('probe.validation.weft.dev', webhookProbe.validatePath),
    ],
  });

  // Gateways last: weftd's Deployment stays the chart's first.
  for (const gateway of desiredGateways(installation)) {
    for (const manifest of gatewayManifests(gateway, {
      installation,
      commonLabels: common,
      ...(ownerReferences ? { ownerReferences } : {}),
    })) {
      new ApiObject(chart, `gateway-${gateway.namespace}-${gateway.name}-${manifest.kind.toLowerCase()}`, manifest);
    }
  }
}

/** Istio's MeshConfig fields (so its docs apply), plus Weft's own under `weft`. */
function meshConfig(installation: MeshInstallation, profileAccessLogging: boolean, profileSampling: number | undefined) {
  const { meshConfig: mesh, proxy, ca } = installation.spec;
  const accessLogging = mesh.accessLogging.enabled ?? profileAccessLogging;
  return {
    trustDomain: mesh.trustDomain,
    rootNamespace: installation.spec.namespace,
    outboundTrafficPolicy: { mode: mesh.outboundTrafficPolicy.mode },
    accessLogFile: accessLogging ? '/dev/stdout' : '',
    accessLogEncoding: mesh.accessLogging.encoding,
    accessLogFormat: mesh.accessLogging.format,
    ...(mesh.extensionProviders?.length ? { extensionProviders: mesh.extensionProviders } : {}),
    ...(mesh.defaultProviders ? { defaultProviders: mesh.defaultProviders } : {}),
    defaultConfig: {
      discoveryAddress: `${controlPlaneNames(installation).weftd}.${installation.spec.namespace}.svc:${ports.xdsTls}`,
      proxyMetadata: {},
      tracing: { sampling: mesh.tracing.sampling ?? profileSampling },
    },
    weft: { mtlsMode: mesh.mtls.mode, workloadCertTTL: ca.workloadCertTTL, caMode: ca.mode, proxyLogLevel: proxy.logLevel },
  };
}
