// Istio's object analyzers over Kubernetes objects (Namespaces, Services, Pods,
// Deployments), each a pure function returning istioctl's messages
// (pkg/config/analysis/msg/messages.yaml): IST0123 (injection labels), IST0118 (port
// names), IST0108/IST0107 (unknown or misplaced `*.istio.io` annotations).
import { multipleInjectionLabels } from '../istio/injection/injection-policy.js';

/** One finding before it is tied to its object: code, name, level, text. */
export interface ObjectFinding {
  code: string;
  name: string;
  level: 'Error' | 'Warning' | 'Info';
  message: string;
}

interface ObjectMeta {
  name?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/**
 * Every annotation Istio defines and the kinds it belongs on (istio.io/api annotation/annotations.gen.go,
 * at the version Weft pins); `Any` belongs anywhere.
 */
export const istioAnnotations: Readonly<Record<string, readonly string[]>> = {
  'alpha.istio.io/canonical-serviceaccounts': ['Service'],
  'alpha.istio.io/kubernetes-serviceaccounts': ['Service'],
  'ambient.istio.io/bypass-inbound-capture': ['Pod'],
  'ambient.istio.io/dns-capture': ['Pod'],
  'ambient.istio.io/redirection': ['Pod'],
  'ambient.istio.io/waypoint-inbound-binding': ['GatewayClass', 'Gateway'],
  'galley.istio.io/analyze-suppress': ['Any'],
  'gateway.istio.io/controller-version': ['Any'],
  'gateway.istio.io/name-override': ['Gateway'],
  'gateway.istio.io/service-account': ['Gateway'],
  'inject.istio.io/templates': ['Pod'],
  'istio.io/autoRegistrationGroup': ['WorkloadEntry'],
  'istio.io/connectedAt': ['WorkloadEntry'],
  'istio.io/disconnectedAt': ['WorkloadEntry'],
  'istio.io/dry-run': ['AuthorizationPolicy'],
  'istio.io/reroute-virtual-interfaces': ['Pod'],
  'istio.io/rev': ['Pod'],
  'istio.io/use-waypoint-canary-weight': ['Service', 'ServiceEntry', 'Namespace'],
  'istio.io/workloadController': ['WorkloadEntry'],
  'kubernetes.io/ingress.class': ['Ingress'],
  'networking.istio.io/exportTo': ['Service'],
  'networking.istio.io/service-type': ['Gateway'],
  'networking.istio.io/traffic-distribution': ['Namespace', 'Service', 'ServiceEntry'],
  'prometheus.istio.io/merge-metrics': ['Pod'],
  'proxy.istio.io/config': ['Pod'],
  'proxy.istio.io/overrides': ['Pod'],
  'readiness.status.sidecar.istio.io/applicationPorts': ['Pod'],
  'readiness.status.sidecar.istio.io/failureThreshold': ['Pod'],
  'readiness.status.sidecar.istio.io/initialDelaySeconds': ['Pod'],
  'readiness.status.sidecar.istio.io/periodSeconds': ['Pod'],
  'sidecar.istio.io/agentLogLevel': ['Pod'],
  'sidecar.istio.io/bootstrapOverride': ['Pod'],
  'sidecar.istio.io/componentLogLevel': ['Pod'],
  'sidecar.istio.io/discoveryAddress': ['Pod'],
  'sidecar.istio.io/extraStatTags': ['Pod'],
  'sidecar.istio.io/inject': ['Pod'],
  'sidecar.istio.io/interceptionMode': ['Pod'],
  'sidecar.istio.io/logLevel': ['Pod'],
  'sidecar.istio.io/nativeSidecar': ['Pod'],
  'sidecar.istio.io/proxyCPU': ['Pod'],
  'sidecar.istio.io/proxyCPULimit': ['Pod'],
  'sidecar.istio.io/proxyImage': ['Pod'],
  'sidecar.istio.io/proxyImageType': ['Pod'],
  'sidecar.istio.io/proxyMemory': ['Pod'],
  'sidecar.istio.io/proxyMemoryLimit': ['Pod'],
  'sidecar.istio.io/rewriteAppHTTPProbers': ['Pod'],
  'sidecar.istio.io/statsCompression': ['Pod'],
  'sidecar.istio.io/statsEvictionInterval': ['Pod'],
  'sidecar.istio.io/statsFlushInterval': ['Pod'],
  'sidecar.istio.io/statsHistogramBins': ['Pod'],
  'sidecar.istio.io/statsHistogramBuckets': ['Pod'],
  'sidecar.istio.io/statsInclusionPrefixes': ['Pod'],
  'sidecar.istio.io/statsInclusionRegexps': ['Pod'],
  'sidecar.istio.io/statsInclusionSuffixes': ['Pod'],
  'sidecar.istio.io/status': ['Pod'],
  'sidecar.istio.io/userVolume': ['Pod'],
  'sidecar.istio.io/userVolumeMount': ['Pod'],
  'status.sidecar.istio.io/port': ['Pod'],
  'topology.istio.io/controlPlaneClusters': ['Namespace'],
  'traffic.istio.io/nodeSelector': ['Service'],
  'traffic.sidecar.istio.io/excludeInboundPorts': ['Pod'],
  'traffic.sidecar.istio.io/excludeInterfaces': ['Pod'],
  'traffic.sidecar.istio.io/excludeOutboundIPRanges': ['Pod'],
  'traffic.sidecar.istio.io/excludeOutboundPorts': ['Pod'],
  'traffic.sidecar.istio.io/includeInboundPorts': ['Pod'],
  'traffic.sidecar.istio.io/includeOutboundIPRanges': ['Pod'],
  'traffic.sidecar.istio.io/includeOutboundPorts': ['Pod'],
  'traffic.sidecar.istio.io/kubevirtInterfaces': ['Pod'],
};

/** Annotations istiod or Kubernetes set themselves: never reported (Istio's maturity.AlwaysIgnoredAnnotations). */
const alwaysIgnored = new Set(['sidecar.istio.io/status', 'gateway.istio.io/controller-version', 'istio.io/rev']);

/** Istio's istioAnnotation: the key's prefix ends in istio.io (and the Kubernetes ingress class Istio documents). */
const isIstioAnnotation = (key: string) => key === 'kubernetes.io/ingress.class' || (key.split('/')[0] ?? '').endsWith('istio.io');

/**
 * The label a Gateway deployment controller (Istio's, `istio.io-gateway-controller` and its mesh and
 * east-west kin, or Weft's, `weft.dev-gateway-controller`) puts on the Service, Deployment and pods it
 * makes from a Gateway, copying the Gateway's annotations onto them.
 */
const gatewayManagedLabel = 'gateway.istio.io/managed';

/**
 * IST0108 UnknownAnnotation for each `*.istio.io` annotation Istio does not define, and IST0107
 * MisplacedAnnotation for one on a kind it does not belong to (annotations.K8sAnalyzer: run on
 * Namespaces, Services, Pods and Deployments, on the object's own metadata).
 *
 * One deliberate difference: on an object a Gateway deployment controller made (label
 * `gateway.istio.io/managed`), an annotation that belongs on a Gateway (`networking.istio.io/service-type`,
 * `ambient.istio.io/waypoint-inbound-binding`...) is not misplaced: the controller copied it from the
 * Gateway, where the user put it (Istio's `kube-gateway` template and cdk8s/gateway-api-deployment.ts
 * copy every annotation but four). Istio's K8sAnalyzer reports it on each copy; its PortNameAnalyzer
 * skips such objects as "not created by users", which is the rule followed here.
 */
export function annotationFindings(kind: string, metadata: ObjectMeta | undefined): ObjectFinding[] {
  const findings: ObjectFinding[] = [];
  const copiedFromGateway = metadata?.labels?.[gatewayManagedLabel] !== undefined;
  for (const key of Object.keys(metadata?.annotations ?? {}).sort()) {
    if (!isIstioAnnotation(key) || alwaysIgnored.has(key)) continue;
    const kinds = istioAnnotations[key];
    if (!kinds) {
      findings.push({ code: 'IST0108', name: 'UnknownAnnotation', level: 'Warning', message: `Unknown annotation: ${key}` });
      continue;
    }
    if (copiedFromGateway && kinds.includes('Gateway')) continue;
    if (!kinds.includes('Any') && !kinds.includes(kind))
      findings.push({
        code: 'IST0107',
        name: 'MisplacedAnnotation',
        level: 'Warning',
        message: `Misplaced annotation: ${key} can only be applied to ${kinds.join(', ')}`,
      });
  }
  return findings;
}

/** The kinds annotations.K8sAnalyzer looks at. */
export const annotatedKinds: ReadonlySet<string> = new Set(['Namespace', 'Service', 'Pod', 'Deployment']);

/** IST0123 NamespaceMultipleInjectionLabels for a namespace (injection.Analyzer), Weft's label counting as `istio-injection`. */
export function injectionLabelFindings(metadata: ObjectMeta | undefined, weftLabel: string): ObjectFinding[] {
  const labels = multipleInjectionLabels(metadata?.labels ?? {}, weftLabel);
  if (labels.length === 0) return [];
  return [
    {
      code: 'IST0123',
      name: 'NamespaceMultipleInjectionLabels',
      level: 'Warning',
      message: `The namespace has more than one type of injection labels [${labels.join(' ')}], which may lead to undefined behavior. Make sure only one injection label exists.`,
    },
  ];
}

/** The protocols a port name (or its prefix before `-`) or appProtocol can name (Istio's protocol.Parse). */
const protocols = new Set(['tcp', 'udp', 'grpc', 'grpc-web', 'http', 'http_proxy', 'http2', 'https', 'tls', 'mongo', 'redis', 'mysql']);
/** Kubernetes' standard appProtocol values Istio understands. */
const kubernetesAppProtocols = new Set(['kubernetes.io/h2c', 'kubernetes.io/ws', 'kubernetes.io/wss']);
/** Ports that are TCP without a name (Istio's wellKnownPorts: SMTP, DNS, MySQL, MongoDB). */
const wellKnownPorts = new Set([25, 53, 3306, 27017]);

interface ServicePort {
  name?: string;
  port?: number;
  protocol?: string;
  appProtocol?: string;
  targetPort?: number | string;
}

/** Whether Istio can tell a Service port's protocol without sniffing (kube.ConvertProtocol is not Unsupported). */
export function portProtocolKnown(port: ServicePort): boolean {
  if (port.protocol === 'UDP') return true;
  const name = port.appProtocol ?? port.name ?? '';
  if (port.appProtocol !== undefined && kubernetesAppProtocols.has(name)) return true;
  if (name.toLowerCase().startsWith('grpc-web')) return true;
  const prefix = name.includes('-') ? name.slice(0, name.indexOf('-')) : name;
  return protocols.has(prefix.toLowerCase()) || wellKnownPorts.has(port.port ?? 0);
}

/** The `gateway.istio.io/managed` values of Services a gateway deployment controller made: Istio's three, and Weft's. */
const gatewayManagedControllers = new Set([
  'istio.io-gateway-controller',
  'istio.io-mesh-controller',
  'istio.io-eastwest-controller',
  'weft.dev-gateway-controller',
]);

/**
 * IST0118 PortNameIsNotUnderNamingConvention for each port of a Service whose name (or
 * appProtocol) names no protocol, so Istio falls back to protocol sniffing (service.PortNameAnalyzer).
 * Istio's own control plane Services (label `istio`, or `release=istio`), ExternalName Services and
 * Services a gateway deployment controller made (named after the Gateway's listeners) are not checked.
 */
export function portNameFindings(
  metadata: ObjectMeta | undefined,
  spec: { type?: string; ports?: ServicePort[] } | undefined,
): ObjectFinding[] {
  const labels = metadata?.labels ?? {};
  if ('istio' in labels || labels['release'] === 'istio' || spec?.type === 'ExternalName') return [];
  if (gatewayManagedControllers.has(labels[gatewayManagedLabel] ?? '')) return [];
  return (spec?.ports ?? [])
    .filter((port) => !portProtocolKnown(port))
    .map((port) => ({
      code: 'IST0118',
      name: 'PortNameIsNotUnderNamingConvention',
      level: 'Info' as const,
      message: `Port name ${port.name ?? ''} (port: ${port.port ?? 0}, targetPort: ${port.targetPort ?? 0}) doesn't follow the naming convention of Istio port.`,
    }));
}
