// The Gateway API's automated deployment: for a Gateway of a class Weft serves, the ServiceAccount,
// Deployment and Service istiod's deployment controller renders from its `kube-gateway` template
// (pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go, manifests/charts/istio-control/
// istio-discovery/files/kube-gateway.yaml), with Weft's gateway pod (`gatewayPodTemplate`). Pure.
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import type { Gateway } from '../gatewayapi/gateway-api-types.js';
import { gatewayNameLabel } from '../gatewayapi/gateway-api-input.js';
import { isManaged } from '../gatewayapi/gateways.js';
import { gatewayPodTemplate, gatewayPorts } from './gateway-chart.js';
import type { Manifest } from './synth.js';

/** Istio's labels and annotations read or written by the deployment controller. */
export const gatewayDeploymentKeys = {
  /** On every object the controller made: `<controller with / as ->`. An object without it is the user's, never touched. */
  managed: 'gateway.istio.io/managed',
  className: 'gateway.networking.k8s.io/gateway-class-name',
  serviceType: 'networking.istio.io/service-type',
  nameOverride: 'gateway.istio.io/name-override',
  serviceAccount: 'gateway.istio.io/service-account',
  controllerVersion: 'gateway.istio.io/controller-version',
} as const;

/** Istio's deployment controller version (ControllerVersion): a Gateway annotated with a higher one is a newer controller's. */
export const gatewayControllerVersion = 5;

const serviceTypes = new Set(['ClusterIP', 'NodePort', 'LoadBalancer']);
// Never copied from the Gateway to what is made for it (the template's `omit`).
const omittedAnnotations = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  gatewayDeploymentKeys.nameOverride,
  gatewayDeploymentKeys.serviceAccount,
  gatewayDeploymentKeys.controllerVersion,
]);

/** What weftd's injector config supplies: the same proxy, CA and discovery address as sidecars get. */
export interface GatewayDeploymentContext {
  /** The controller serving the Gateway's class (`istio.io/gateway-controller`, `weft.dev/gateway-controller`). */
  controller: string;
  /** Istio's proxyv2 image. */
  image: string;
  proxyLogLevel: string;
  /** weftd's xDS and CA address, `<service>.<namespace>.svc:15012`. */
  discoveryAddress: string;
  trustDomain: string;
  /** The control-plane revision; empty for the default one. */
  revision: string;
  /** The proxy's container resources, as quantity strings. */
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
}

export interface ServicePort {
  name: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  appProtocol: string;
}

/** The outcome for one Gateway: the objects to apply, or why there are none (not an error: a manual deployment). */
export type GatewayDeployment = { objects: Manifest[]; deploymentName: string } | { skipped: string } | { error: string };

/** Istio's sanitizeListenerNameForPort: a listener name (periods, 253 characters) as a Service port name. */
const sanitizePortName = (name: string) => name.replaceAll('.', '-').slice(0, 63);

/** Istio's uniquePortName: truncated to 63 characters, then `-<port>` (and `x`s) until unused. */
function uniquePortName(name: string, port: number, used: Set<string>): string {
  const base = name.slice(0, 63);
  let candidate = base;
  for (let suffix = `-${port}`; used.has(candidate); suffix += 'x')
    candidate = (base.length + suffix.length > 63 ? base.slice(0, 63 - suffix.length) : base) + suffix;
  used.add(candidate);
  return candidate;
}

/**
 * The Service ports of a managed gateway (Istio's extractServicePorts): `status-port` 15021, then one
 * per distinct listener port, named after its first listener, TCP, `appProtocol` the listener's
 * protocol in lower case. Envoy listens on the listener port itself (no targetPort).
 */
export function gatewayServicePorts(gateway: Gateway): ServicePort[] {
  const ports: ServicePort[] = [{ name: 'status-port', port: gatewayPorts.status, protocol: 'TCP', appProtocol: 'tcp' }];
  const seen = new Set<number>();
  const used = new Set(['status-port']);
  (gateway.spec?.listeners ?? []).forEach((listener, index) => {
    if (seen.has(listener.port)) return;
    seen.add(listener.port);
    const name = sanitizePortName(listener.name) || `${listener.protocol.toLowerCase()}-${index}`;
    ports.push({
      name: uniquePortName(name, listener.port, used),
      port: listener.port,
      protocol: 'TCP',
      appProtocol: listener.protocol.toLowerCase(),
    });
  });
  return ports;
}

/**
 * Labels or annotations for what is made (Istio's extractInfrastructureMetadata): `spec.infrastructure`'s
 * when set, without keys under `gateway.networking.k8s.io/`; else the Gateway's own, copied.
 */
function infrastructure(gateway: Gateway, which: 'labels' | 'annotations'): Record<string, string> {
  const declared = gateway.spec?.infrastructure?.[which];
  if (declared) return Object.fromEntries(Object.entries(declared).filter(([key]) => !key.startsWith('gateway.networking.k8s.io/')));
  return { ...(gateway.metadata?.[which] ?? {}) };
}

/**
 * Whether Weft's controller may manage this Gateway (Istio's ManagedGatewayControllerVersion): no
 * `gateway.istio.io/controller-version` annotation, or a number at most 5. A higher or unparsable one
 * belongs to a newer controller.
 */
function controllerVersionProblem(gateway: Gateway): string | undefined {
  const version = gateway.metadata?.annotations?.[gatewayDeploymentKeys.controllerVersion];
  if (version === undefined) return undefined;
  const number = Number(version);
  if (!/^-?\d+$/.test(version.trim()) || number > gatewayControllerVersion)
    return `annotation ${gatewayDeploymentKeys.controllerVersion}=${version}: managed by a newer controller`;
  return undefined;
}

/**
 * The ServiceAccount, Deployment and Service for one Gateway whose class `context.controller` serves,
 * as istiod's deployment controller renders them: named `<gateway>-<class>` (or the
 * `gateway.istio.io/name-override` and `gateway.istio.io/service-account` annotations), in the Gateway's
 * namespace, owned by the Gateway (so Kubernetes' garbage collector removes them with it), labelled
 * `gateway.networking.k8s.io/gateway-name`, `.../gateway-class-name` and `gateway.istio.io/managed`, with
 * the infrastructure labels and annotations. The Deployment sets no `replicas` (a user or an
 * autoscaler owns them, as in Istio) and its pods allow binding ports below 1024
 * (`net.ipv4.ip_unprivileged_port_start=0`). The Service's type is LoadBalancer unless the
 * `networking.istio.io/service-type` annotation says otherwise, with `loadBalancerIP` from an IPAddress
 * in `spec.addresses`.
 *
 * Returns `{ skipped }` for a Gateway that is not Weft's to deploy (addresses naming an existing
 * Service, a newer controller's version), `{ error }` naming the field for input Istio would render
 * into an object the API server refuses (an unknown service type).
 */
export function gatewayDeployment(
  gateway: Gateway & { metadata?: { uid?: string } },
  context: GatewayDeploymentContext,
): GatewayDeployment {
  const name = gateway.metadata?.name;
  const namespace = gateway.metadata?.namespace;
  const className = gateway.spec?.gatewayClassName;
  if (!name || !namespace || !className) return { error: 'metadata.name, metadata.namespace and spec.gatewayClassName are required' };
  if (!isManaged(gateway)) return { skipped: 'spec.addresses names an existing deployment (not one IP address)' };
  const versionProblem = controllerVersionProblem(gateway);
  if (versionProblem) return { skipped: versionProblem };
  const gatewayAnnotations = gateway.metadata?.annotations ?? {};
  const serviceType = gatewayAnnotations[gatewayDeploymentKeys.serviceType] ?? 'LoadBalancer';
  if (!serviceTypes.has(serviceType))
    return {
      error: `metadata.annotations["${gatewayDeploymentKeys.serviceType}"]: "${serviceType}" is not one of ClusterIP, NodePort, LoadBalancer`,
    };

  const defaultName = `${name}-${className}`;
  const deploymentName = gatewayAnnotations[gatewayDeploymentKeys.nameOverride] || defaultName;
  const serviceAccountName = gatewayAnnotations[gatewayDeploymentKeys.serviceAccount] || defaultName;
  const infraLabels = infrastructure(gateway, 'labels');
  // As istiod with ambient support: gateways stay out of the ambient data plane unless labelled otherwise.
  if (!('istio.io/dataplane-mode' in infraLabels) && !('istio.io/dataplane-mode' in (gateway.metadata?.labels ?? {})))
    infraLabels['istio.io/dataplane-mode'] = 'none';
  const infraAnnotations = Object.fromEntries(
    Object.entries(infrastructure(gateway, 'annotations')).filter(([key]) => !omittedAnnotations.has(key)),
  );
  const labels = {
    ...infraLabels,
    [gatewayNameLabel]: name,
    [gatewayDeploymentKeys.className]: className,
    [gatewayDeploymentKeys.managed]: context.controller.replaceAll('/', '-'),
  };
  const metadata = (objectName: string) => ({
    name: objectName,
    namespace,
    labels: { ...labels },
    ...(Object.keys(infraAnnotations).length > 0 ? { annotations: { ...infraAnnotations } } : {}),
    ownerReferences: [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name, uid: gateway.metadata?.uid ?? '' }],
  });

  const pod = gatewayPodTemplate({
    name: deploymentName,
    deploymentName,
    namespace,
    labels,
    serviceAccountName,
    image: context.image,
    proxyLogLevel: context.proxyLogLevel,
    discoveryAddress: context.discoveryAddress,
    trustDomain: context.trustDomain,
    revision: context.revision,
    resources: { requests: { ...context.resources.requests }, limits: { ...context.resources.limits } },
    // Envoy binds the listener ports itself; Istio's template declares only its own ports.
    containerPorts: [],
  });
  const template: V1PodTemplateSpec = {
    metadata: {
      labels: pod.metadata?.labels ?? {},
      annotations: { ...infraAnnotations, ...pod.metadata?.annotations },
    },
    spec: {
      ...(pod.spec ?? { containers: [] }),
      // The gateway runs as non-root yet listens on the Gateway's ports (80, 443): Istio's template sysctl.
      securityContext: {
        ...pod.spec?.securityContext,
        sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
      },
    },
  };

  const addresses = gateway.spec?.addresses ?? [];
  const objects: Manifest[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: metadata(serviceAccountName) },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: metadata(deploymentName),
      spec: { selector: { matchLabels: { [gatewayNameLabel]: name } }, template },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: metadata(deploymentName),
      spec: {
        ipFamilyPolicy: 'PreferDualStack',
        ports: gatewayServicePorts(gateway),
        selector: { [gatewayNameLabel]: name },
        ...(addresses.length > 0 && serviceType === 'LoadBalancer' ? { loadBalancerIP: addresses[0]?.value } : {}),
        type: serviceType,
      },
    },
  ];
  return { objects, deploymentName };
}
