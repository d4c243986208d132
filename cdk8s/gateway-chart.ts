// Gateway deployments of one MeshInstallation (spec.gateways, or the profile's): Istio's proxyv2 in
// router mode, laid out as Istio's gateway charts (manifests/charts/gateways/istio-ingress and
// istio-egress, whose IstioOperator components.ingressGateways/egressGateways this mirrors). Pure.
import type { V1PodTemplateSpec, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { labels as weftLabels, ports, trustBundle } from '../api/labels.js';
import type { GatewayKind, GatewaySpec, MeshInstallation } from '../api/mesh-installation.js';
import { controlPlaneNames } from './names.js';
import { profileDefaults } from './profiles.js';
import type { Manifest } from './synth.js';

/** Istio's ports on a gateway pod: pilot-agent's status (readiness, `/healthz/ready`) and Envoy's Prometheus stats. */
export const gatewayPorts = { status: 15021, agentMetrics: 15020, envoyPrometheus: 15090 } as const;

export interface GatewayServicePort {
  name: string;
  port: number;
  /** The container port Envoy listens on (1024 or above: the gateway runs as non-root). */
  targetPort: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  nodePort?: number;
}

/** A gateway with every default resolved: what the chart writes. */
export interface ResolvedGateway {
  kind: GatewayKind;
  name: string;
  namespace: string;
  /** Pod labels: what Istio Gateway selectors match and the Service and Deployment select. */
  labels: Record<string, string>;
  /** Unset when a HorizontalPodAutoscaler owns the replicas. */
  replicas: number | undefined;
  service: {
    type: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
    externalTrafficPolicy?: 'Cluster' | 'Local';
    annotations: Record<string, string>;
    ports: GatewayServicePort[];
  };
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  autoscaling?: { minReplicas: number; maxReplicas: number; targetCPUUtilizationPercentage: number };
  podDisruptionBudget?: { minAvailable: number | string } | { maxUnavailable: number | string };
  serviceAccountName: string;
}

// Istio's values.yaml of the istio-ingress and istio-egress charts.
const kindDefaults: Record<
  GatewayKind,
  { istioLabel: string; serviceType: ResolvedGateway['service']['type']; ports: GatewayServicePort[] }
> = {
  Ingress: {
    istioLabel: 'ingressgateway',
    serviceType: 'LoadBalancer',
    ports: [
      { name: 'status-port', port: 15021, targetPort: 15021, protocol: 'TCP' },
      { name: 'http2', port: 80, targetPort: 8080, protocol: 'TCP' },
      { name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' },
    ],
  },
  Egress: {
    istioLabel: 'egressgateway',
    serviceType: 'ClusterIP',
    ports: [
      { name: 'http2', port: 80, targetPort: 8080, protocol: 'TCP' },
      { name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' },
    ],
  },
};

/** Istio's gateway resources (values.yaml of istio-ingress/istio-egress). */
export const defaultGatewayResources = { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2000m', memory: '1024Mi' } };

/**
 * The gateways an installation runs, defaults resolved, in spec order (ingress, then egress).
 * A list the spec leaves unset takes the profile's (Istio's profiles: default has
 * istio-ingressgateway, demo also istio-egressgateway, minimal none); a revisioned installation
 * takes none from its profile, since the default revision's gateways have the same names and two
 * operators would fight over one Deployment. Entries with `enabled: false` are left out, so
 * pruning removes them. Default labels: `app: <name>` and `istio: ingressgateway` (or
 * `egressgateway`), so `istio-ingressgateway` carries Istio's own pair.
 */
export function desiredGateways(installation: MeshInstallation): ResolvedGateway[] {
  const { spec } = installation;
  const profile = spec.revision ? { ingress: [], egress: [] } : profileDefaults(spec.profile).gateways;
  const lists: Array<[GatewayKind, GatewaySpec[]]> = [
    ['Ingress', spec.gateways.ingress ?? profile.ingress],
    ['Egress', spec.gateways.egress ?? profile.egress],
  ];
  return lists.flatMap(([kind, gateways]) =>
    gateways.filter((g) => g.enabled !== false).map((g) => resolveGateway(kind, g, spec.namespace)),
  );
}

function resolveGateway(kind: GatewayKind, gateway: GatewaySpec, controlPlaneNamespace: string): ResolvedGateway {
  const defaults = kindDefaults[kind];
  const autoscaling = gateway.autoscaling
    ? {
        minReplicas: gateway.autoscaling.minReplicas ?? 1,
        maxReplicas: gateway.autoscaling.maxReplicas,
        targetCPUUtilizationPercentage: gateway.autoscaling.targetCPUUtilizationPercentage ?? 80,
      }
    : undefined;
  const pdb = gateway.podDisruptionBudget;
  return {
    kind,
    name: gateway.name,
    namespace: gateway.namespace || controlPlaneNamespace,
    labels: gateway.labels ?? { app: gateway.name, istio: defaults.istioLabel },
    replicas: autoscaling ? undefined : (gateway.replicas ?? 1),
    service: {
      type: gateway.service?.type ?? defaults.serviceType,
      ...(gateway.service?.externalTrafficPolicy ? { externalTrafficPolicy: gateway.service.externalTrafficPolicy } : {}),
      annotations: gateway.service?.annotations ?? {},
      ports: gateway.service?.ports
        ? gateway.service.ports.map((p) => ({
            name: p.name,
            port: p.port,
            targetPort: p.targetPort ?? p.port,
            protocol: p.protocol ?? 'TCP',
            ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}),
          }))
        : defaults.ports,
    },
    resources: {
      requests: { ...defaultGatewayResources.requests, ...gateway.resources?.requests },
      limits: { ...defaultGatewayResources.limits, ...gateway.resources?.limits },
    },
    ...(autoscaling ? { autoscaling } : {}),
    ...(pdb
      ? {
          podDisruptionBudget:
            pdb.maxUnavailable !== undefined ? { maxUnavailable: pdb.maxUnavailable } : { minAvailable: pdb.minAvailable ?? 1 },
        }
      : {}),
    serviceAccountName: `${gateway.name}-service-account`,
  };
}

export interface GatewayPodInput {
  /** The workload's name (ISTIO_META_WORKLOAD_NAME, canonical service name). */
  name: string;
  /** The Deployment that owns the pods (ISTIO_META_OWNER). */
  deploymentName: string;
  namespace: string;
  /** Selector labels; the template adds Istio's fixed ones (no injection, canonical name, revision). */
  labels: Record<string, string>;
  serviceAccountName: string;
  /** Istio's proxyv2 image. */
  image: string;
  /** Envoy's log level (`--proxyLogLevel`): trace, debug, info, warning, error, critical, off. */
  proxyLogLevel: string;
  /** weftd's xDS and CA address, `<service>.<namespace>.svc:15012`. */
  discoveryAddress: string;
  trustDomain: string;
  /** The control-plane revision (`istio.io/rev`); empty for the default one. */
  revision: string;
  /** Container resources, as quantity strings (`100m`, `128Mi`). */
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  /** Ports Envoy listens on (the Services' target ports). */
  containerPorts: Array<{ containerPort: number; protocol: 'TCP' | 'UDP' | 'SCTP' }>;
}

/**
 * The pod template of a gateway proxy: Istio's proxyv2 running `pilot-agent proxy router`, with the
 * env, volumes, readiness (15021 `/healthz/ready`) and security context of Istio's gateway charts,
 * its CA and discovery address pointing at weftd's 15012. Shared by `spec.gateways` and the
 * Gateway API's automated deployment. Pure; returns a plain object (client-node's types).
 */
export function gatewayPodTemplate(input: GatewayPodInput): V1PodTemplateSpec {
  const field = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } });
  const revision = input.revision || 'default';
  const mount = (name: string, mountPath: string, readOnly?: boolean): V1VolumeMount => ({
    name,
    mountPath,
    ...(readOnly ? { readOnly } : {}),
  });
  const volumes: V1Volume[] = [
    { name: 'workload-socket', emptyDir: {} },
    { name: 'credential-socket', emptyDir: {} },
    { name: 'workload-certs', emptyDir: {} },
    { name: 'istiod-ca-cert', configMap: { name: trustBundle.configMap } },
    {
      name: 'podinfo',
      downwardAPI: {
        items: [
          { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
        ],
      },
    },
    { name: 'istio-envoy', emptyDir: {} },
    { name: 'istio-data', emptyDir: {} },
    // pilot-agent authenticates to the CA (weftd, as istiod) with this token.
    {
      name: 'istio-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43_200, path: 'istio-token' } }] },
    },
  ];
  const containerPorts = [...new Map(input.containerPorts.map((p) => [`${p.containerPort}/${p.protocol}`, p])).values()];
  return {
    metadata: {
      labels: {
        ...input.labels,
        'sidecar.istio.io/inject': 'false',
        'service.istio.io/canonical-name': input.name,
        'service.istio.io/canonical-revision': 'latest',
        [weftLabels.revision]: revision,
        // As Istio's gateway charts: gateways stay out of the ambient data plane.
        'istio.io/dataplane-mode': 'none',
      },
      annotations: {
        'prometheus.io/port': String(gatewayPorts.agentMetrics),
        'prometheus.io/scrape': 'true',
        'prometheus.io/path': '/stats/prometheus',
        'sidecar.istio.io/inject': 'false',
        [weftLabels.revision]: revision,
      },
    },
    spec: {
      serviceAccountName: input.serviceAccountName,
      securityContext: { runAsUser: 1337, runAsGroup: 1337, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'istio-proxy',
          image: input.image,
          args: [
            'proxy',
            'router',
            '--domain',
            '$(POD_NAMESPACE).svc.cluster.local',
            `--proxyLogLevel=${input.proxyLogLevel}`,
            '--proxyComponentLogLevel=misc:error',
            '--log_output_level=default:info',
          ],
          ports: [
            ...containerPorts.map((p) => ({ containerPort: p.containerPort, protocol: p.protocol })),
            { containerPort: gatewayPorts.envoyPrometheus, protocol: 'TCP', name: 'http-envoy-prom' },
          ],
          env: [
            { name: 'PILOT_CERT_PROVIDER', value: 'istiod' },
            { name: 'CA_ADDR', value: input.discoveryAddress },
            field('NODE_NAME', 'spec.nodeName'),
            field('POD_NAME', 'metadata.name'),
            field('POD_NAMESPACE', 'metadata.namespace'),
            field('INSTANCE_IP', 'status.podIP'),
            field('HOST_IP', 'status.hostIP'),
            { name: 'ISTIO_CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } } },
            field('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
            // No mesh config is mounted: the discovery address comes with the proxy config, as the injector gives it.
            { name: 'PROXY_CONFIG', value: JSON.stringify({ discoveryAddress: input.discoveryAddress }) },
            { name: 'ISTIO_META_WORKLOAD_NAME', value: input.name },
            {
              name: 'ISTIO_META_OWNER',
              value: `kubernetes://apis/apps/v1/namespaces/${input.namespace}/deployments/${input.deploymentName}`,
            },
            { name: 'ISTIO_META_MESH_ID', value: input.trustDomain },
            { name: 'TRUST_DOMAIN', value: input.trustDomain },
            { name: 'ISTIO_META_UNPRIVILEGED_POD', value: 'true' },
            // Istio's default router mode, stated: no sni-dnat clusters.
            { name: 'ISTIO_META_ROUTER_MODE', value: 'standard' },
            { name: 'ISTIO_META_CLUSTER_ID', value: 'Kubernetes' },
            field('ISTIO_META_NODE_NAME', 'spec.nodeName'),
          ],
          readinessProbe: {
            httpGet: { path: '/healthz/ready', port: gatewayPorts.status, scheme: 'HTTP' },
            initialDelaySeconds: 1,
            periodSeconds: 2,
            timeoutSeconds: 1,
            successThreshold: 1,
            failureThreshold: 30,
          },
          resources: { requests: { ...input.resources.requests }, limits: { ...input.resources.limits } },
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
            privileged: false,
            readOnlyRootFilesystem: true,
            runAsUser: 1337,
            runAsGroup: 1337,
            runAsNonRoot: true,
          },
          volumeMounts: [
            mount('workload-socket', '/var/run/secrets/workload-spiffe-uds'),
            mount('credential-socket', '/var/run/secrets/credential-uds'),
            mount('workload-certs', '/var/run/secrets/workload-spiffe-credentials'),
            mount('istio-envoy', '/etc/istio/proxy'),
            mount('istiod-ca-cert', '/var/run/secrets/istio'),
            mount('istio-token', '/var/run/secrets/tokens', true),
            mount('istio-data', '/var/lib/istio/data'),
            mount('podinfo', '/etc/istio/pod'),
          ],
        },
      ],
      volumes,
    },
  };
}

export interface GatewayManifestContext {
  installation: MeshInstallation;
  /** Labels every object of the installation carries (part-of, managed-by, the installation, version). */
  commonLabels: Record<string, string>;
  ownerReferences?: Array<Record<string, unknown>>;
}

/**
 * Every object of one gateway, as plain manifests: ServiceAccount, Role and RoleBinding `<name>-sds`
 * (get/watch/list Secrets in the gateway's namespace, for `credentialName`, as Istio's chart), the
 * Deployment, the Service, and the HorizontalPodAutoscaler (autoscaling/v2) and PodDisruptionBudget
 * when asked. Every object carries `mesh.weft.dev/installation`, so the operator prunes a gateway
 * taken out of the spec; the pods do not (they follow their Deployment).
 */
export function gatewayManifests(gateway: ResolvedGateway, context: GatewayManifestContext): Manifest[] {
  const { installation, commonLabels, ownerReferences } = context;
  const { spec } = installation;
  const names = controlPlaneNames(installation);
  const revision = spec.revision || 'default';
  const metadata = (name: string, extra: Record<string, string> = {}) => ({
    name,
    namespace: gateway.namespace,
    labels: { ...commonLabels, ...extra, [weftLabels.component]: 'gateway', [weftLabels.revision]: revision },
    ...(ownerReferences ? { ownerReferences } : {}),
  });
  const sds = `${gateway.name}-sds`;
  const manifests: Manifest[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: metadata(gateway.serviceAccountName, gateway.labels) },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: metadata(sds),
      rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'watch', 'list'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: metadata(sds),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sds },
      subjects: [{ kind: 'ServiceAccount', name: gateway.serviceAccountName }],
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: metadata(gateway.name, gateway.labels),
      spec: {
        // With an autoscaler the replicas are its own: server-side apply would otherwise take them back.
        ...(gateway.replicas !== undefined ? { replicas: gateway.replicas } : {}),
        selector: { matchLabels: gateway.labels },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '100%', maxUnavailable: '25%' } },
        template: gatewayPodTemplate({
          name: gateway.name,
          deploymentName: gateway.name,
          namespace: gateway.namespace,
          labels: gateway.labels,
          serviceAccountName: gateway.serviceAccountName,
          image: spec.proxy.image,
          proxyLogLevel: spec.proxy.logLevel,
          discoveryAddress: `${names.weftd}.${names.namespace}.svc:${ports.xdsTls}`,
          trustDomain: spec.meshConfig.trustDomain,
          revision: spec.revision,
          resources: gateway.resources,
          containerPorts: gateway.service.ports.map((p) => ({ containerPort: p.targetPort, protocol: p.protocol })),
        }),
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        ...metadata(gateway.name, gateway.labels),
        ...(Object.keys(gateway.service.annotations).length ? { annotations: gateway.service.annotations } : {}),
      },
      spec: {
        type: gateway.service.type,
        selector: gateway.labels,
        ...(gateway.service.externalTrafficPolicy ? { externalTrafficPolicy: gateway.service.externalTrafficPolicy } : {}),
        ports: gateway.service.ports.map((p) => ({ ...p })),
      },
    },
  ];
  if (gateway.autoscaling) {
    manifests.push({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: metadata(gateway.name, gateway.labels),
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: gateway.name },
        minReplicas: gateway.autoscaling.minReplicas,
        maxReplicas: gateway.autoscaling.maxReplicas,
        metrics: [
          {
            type: 'Resource',
            resource: {
              name: 'cpu',
              target: { type: 'Utilization', averageUtilization: gateway.autoscaling.targetCPUUtilizationPercentage },
            },
          },
        ],
      },
    });
  }
  if (gateway.podDisruptionBudget) {
    manifests.push({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: metadata(gateway.name, gateway.labels),
      spec: { ...gateway.podDisruptionBudget, selector: { matchLabels: gateway.labels } },
    });
  }
  return manifests;
}
