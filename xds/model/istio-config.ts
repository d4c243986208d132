// The Istio configuration xDS generation reads (networking.istio.io and
// security.istio.io), as plain
// values typed by @kubernetes-models/istio (generated from Istio's own CRDs).
import type { IDestinationRule } from '@kubernetes-models/istio/networking.istio.io/v1/DestinationRule';
import type { IGateway } from '@kubernetes-models/istio/networking.istio.io/v1/Gateway';
import type { IServiceEntry } from '@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry';
import type { ISidecar } from '@kubernetes-models/istio/networking.istio.io/v1/Sidecar';
import type { IVirtualService } from '@kubernetes-models/istio/networking.istio.io/v1/VirtualService';
import type { IWorkloadEntry } from '@kubernetes-models/istio/networking.istio.io/v1/WorkloadEntry';
import type { IWorkloadGroup } from '@kubernetes-models/istio/networking.istio.io/v1/WorkloadGroup';
import type { IAuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import type { IPeerAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication';
import type { IRequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';
import type { ITelemetry } from '@kubernetes-models/istio/telemetry.istio.io/v1/Telemetry';

export type VirtualServiceSpec = NonNullable<IVirtualService['spec']>;
export type HttpRoute = NonNullable<VirtualServiceSpec['http']>[number];
export type HttpMatch = NonNullable<HttpRoute['match']>[number];
export type HttpDestination = NonNullable<HttpRoute['route']>[number];
export type DestinationRuleSpec = NonNullable<IDestinationRule['spec']>;
export type TrafficPolicy = NonNullable<DestinationRuleSpec['trafficPolicy']>;
export type Subset = NonNullable<DestinationRuleSpec['subsets']>[number];
export type ServiceEntrySpec = IServiceEntry['spec'];
export type WorkloadEntrySpec = IWorkloadEntry['spec'];
export type SidecarSpec = NonNullable<ISidecar['spec']>;
export type PeerAuthenticationSpec = NonNullable<IPeerAuthentication['spec']>;
export type AuthorizationPolicySpec = NonNullable<IAuthorizationPolicy['spec']>;
export type RequestAuthenticationSpec = NonNullable<IRequestAuthentication['spec']>;
export type TelemetrySpec = NonNullable<ITelemetry['spec']>;
export type GatewaySpec = NonNullable<IGateway['spec']>;
export type WorkloadGroupSpec = IWorkloadGroup['spec'];

/** One Istio object: identity, the age that breaks ties as in Istio, and its spec. */
export interface ConfigObject<Spec> {
  kind: string;
  name: string;
  namespace: string;
  /** RFC 3339; older objects win conflicts, as in Istio. */
  creationTimestamp?: string;
  generation?: number;
  /** Annotations that change how the object applies (Istio's `istio.io/dry-run`). */
  annotations?: Record<string, string>;
  spec: Spec;
}

/** An object left out of the config because it is invalid (written before the webhook could refuse it). */
export interface RejectedObject {
  kind: string;
  namespace: string;
  name: string;
  generation?: number;
  message: string;
}

export interface IstioConfig {
  /** Objects that failed validation: not used, reported on their status. */
  rejected?: RejectedObject[];
  virtualServices: ConfigObject<VirtualServiceSpec>[];
  destinationRules: ConfigObject<DestinationRuleSpec>[];
  serviceEntries: ConfigObject<ServiceEntrySpec>[];
  workloadEntries: ConfigObject<WorkloadEntrySpec>[];
  sidecars: ConfigObject<SidecarSpec>[];
  peerAuthentications: ConfigObject<PeerAuthenticationSpec>[];
  authorizationPolicies: ConfigObject<AuthorizationPolicySpec>[];
  requestAuthentications: ConfigObject<RequestAuthenticationSpec>[];
  telemetries: ConfigObject<TelemetrySpec>[];
  /** Served to the gateway proxies (`router`) they select: traffic/gateway-servers.ts, generate/envoy-gateway.ts. */
  gateways: ConfigObject<GatewaySpec>[];
  /** Read only to report on: Weft does not auto-register workloads from a WorkloadGroup. */
  workloadGroups: ConfigObject<WorkloadGroupSpec>[];
}

export const emptyIstioConfig = (): IstioConfig => ({
  virtualServices: [],
  destinationRules: [],
  serviceEntries: [],
  workloadEntries: [],
  sidecars: [],
  peerAuthentications: [],
  authorizationPolicies: [],
  requestAuthentications: [],
  telemetries: [],
  gateways: [],
  workloadGroups: [],
});

/** Istio's conflict order: oldest first, then by namespace/name. */
export function byAge<T extends { creationTimestamp?: string; namespace: string; name: string }>(a: T, b: T): number {
  const age = (a.creationTimestamp ?? '').localeCompare(b.creationTimestamp ?? '');
  return age !== 0 ? age : `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`);
}
