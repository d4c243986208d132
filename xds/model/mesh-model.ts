// The part of the cluster xDS generation reads: Services and their ready
// endpoints, ServiceEntry hosts, and Istio's networking config. A plain value,
// so generators stay pure functions of it.
import type { IstioConfig } from './istio-config.js';

export interface ServicePort {
  name: string;
  port: number;
  protocol: string;
  /** The port the workloads listen on, when known as a number. */
  targetPort?: number;
  /** Kubernetes `appProtocol`, as written (traffic/port-protocol.ts reads it, then the port name). */
  appProtocol?: string;
}

export interface ServiceEndpoint {
  address: string;
  /** The workload's labels (pod or WorkloadEntry): DestinationRule subsets select on them. */
  labels?: Record<string, string>;
  /** The workload's ServiceAccount: its identity, spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>. */
  serviceAccount?: string;
  /** The pod's security.istio.io/tlsMode label: 'istio' when it runs the sidecar (absent: unknown, plaintext). */
  tlsMode?: string;
  /** Port name (as in the Service) to the port the pod listens on. */
  ports: Record<string, number>;
}

export interface MeshService {
  name: string;
  namespace: string;
  /** Set for ServiceEntry hosts; Kubernetes Services are `<name>.<namespace>.svc.<domain>`. */
  hostname?: string;
  /** Istio's `networking.istio.io/exportTo` annotation, or a ServiceEntry's exportTo. */
  exportTo?: string[];
  /** The pod selector of a Kubernetes Service: which workloads serve it (inbound config). */
  selector?: Record<string, string>;
  /** ServiceEntry resolution; Kubernetes Services are STATIC (EDS). */
  resolution?: 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'NONE';
  /** MESH_EXTERNAL ServiceEntries: no mTLS is assumed. */
  meshExternal?: boolean;
  /** A Kubernetes Service's cluster IPs, or a ServiceEntry's `addresses`: callers may address it by them (virtual host domains). */
  addresses?: string[];
  /** A Kubernetes Service with `clusterIP: None` (Istio's Passthrough resolution). */
  headless?: boolean;
  ports: ServicePort[];
  endpoints: ServiceEndpoint[];
}

/** The MeshInstallation's meshConfig defaults that shape proxies' config. */
export interface MeshDefaults {
  /** Mesh-wide PeerAuthentication default, overridden by any PeerAuthentication. */
  mtlsMode?: 'STRICT' | 'PERMISSIVE';
  /** Where traffic to hosts outside the registry goes, unless a Sidecar says otherwise. */
  outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** MeshConfig's telemetry defaults (Istio's field names). */
  telemetry?: MeshTelemetry;
}

export interface ExtensionProvider {
  name: string;
  opentelemetry?: { service: string; port: number };
  zipkin?: { service: string; port: number; path?: string };
  envoyFileAccessLog?: { path?: string; logFormat?: { text?: string; labels?: Record<string, string> } };
}

export interface MeshTelemetry {
  /** Istio's legacy switch: access logs to this file when no Telemetry says otherwise ('' is off). */
  accessLogFile?: string;
  accessLogEncoding?: 'TEXT' | 'JSON';
  accessLogFormat?: string;
  /** Percentage of requests traced when a tracing provider applies. */
  tracingSampling?: number;
  extensionProviders?: ExtensionProvider[];
  defaultProviders?: { tracing?: string[]; accessLogging?: string[] };
}

export interface MeshModel {
  clusterDomain: string;
  /** Where mesh-wide Istio config lives (Istio's root namespace): the control plane's namespace. */
  rootNamespace?: string;
  /** The SPIFFE trust domain workload identities are issued in. */
  trustDomain?: string;
  services: MeshService[];
  istio?: IstioConfig;
  meshConfig?: MeshDefaults;
  /** JWKS documents fetched by the control plane for RequestAuthentication, by jwksUri (or issuer). */
  jwks?: Record<string, string>;
}

export const serviceHost = (service: Pick<MeshService, 'name' | 'namespace' | 'hostname'>, clusterDomain: string) =>
  service.hostname ?? `${service.name}.${service.namespace}.svc.${clusterDomain}`;
