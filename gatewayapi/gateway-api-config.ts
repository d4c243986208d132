// The Kubernetes Gateway API as Istio config, and the status of every Gateway API object Weft serves:
// istiod's pilot/pkg/config/kube/gateway controller in one pure function. weftd (xds/model) feeds the
// generated Gateways and VirtualServices into the mesh model beside the user's own, so the gateway
// (router) generator serves Gateway-bound routes and the sidecar and proxyless generators serve GAMMA
// (Service-bound) routes; the statuses go to the API server through xds/model/config-status-writer.ts.
import {
  controllerOfClass,
  convertGateway,
  gatewayClassStatus,
  weftGatewayController,
  weftMeshController,
  type ListenerParent,
} from './gateways.js';
import type { ClusterView, GeneratedObject, IstioGatewaySpec, VirtualServiceSpec } from './gateway-api-input.js';
import { backendTlsPolicies, type GeneratedDestinationRule } from './backend-tls-policies.js';
import type {
  BackendTlsPolicy,
  Gateway,
  GatewayClass,
  GrpcRoute,
  HttpRoute,
  ReferenceGrant,
  RouteKind,
  TcpRoute,
  TlsRoute,
} from './gateway-api-types.js';
import { ReferenceGrants } from './reference-grants.js';
import { convertRoute, sortHttpRoutes } from './routes.js';

export interface GatewayApiObjects {
  gatewayClasses: ReadonlyArray<GatewayClass>;
  gateways: ReadonlyArray<Gateway>;
  httpRoutes: ReadonlyArray<HttpRoute>;
  grpcRoutes: ReadonlyArray<GrpcRoute>;
  tcpRoutes: ReadonlyArray<TcpRoute>;
  tlsRoutes: ReadonlyArray<TlsRoute>;
  referenceGrants: ReadonlyArray<ReferenceGrant>;
  /** Absent where the BackendTLSPolicy CRD is not installed. */
  backendTlsPolicies?: ReadonlyArray<BackendTlsPolicy>;
}

/** The Gateway API kinds weftd watches: plural, kind and the version it reads. */
export const gatewayApiKinds = [
  { plural: 'gatewayclasses', kind: 'GatewayClass', field: 'gatewayClasses', version: 'v1', namespaced: false },
  { plural: 'gateways', kind: 'Gateway', field: 'gateways', version: 'v1', namespaced: true },
  { plural: 'httproutes', kind: 'HTTPRoute', field: 'httpRoutes', version: 'v1', namespaced: true },
  { plural: 'grpcroutes', kind: 'GRPCRoute', field: 'grpcRoutes', version: 'v1', namespaced: true },
  { plural: 'tcproutes', kind: 'TCPRoute', field: 'tcpRoutes', version: 'v1', namespaced: true },
  { plural: 'tlsroutes', kind: 'TLSRoute', field: 'tlsRoutes', version: 'v1', namespaced: true },
  // v1beta1: the version its CRD stores (v1 is served too, but older CRDs serve only v1beta1).
  { plural: 'referencegrants', kind: 'ReferenceGrant', field: 'referenceGrants', version: 'v1beta1', namespaced: true },
  { plural: 'backendtlspolicies', kind: 'BackendTLSPolicy', field: 'backendTlsPolicies', version: 'v1', namespaced: true },
] as const;

/** A status to write: the whole status subresource of one object, as computed (conditions keep their transition times). */
export interface GatewayApiStatus {
  kind: string;
  plural: string;
  version: string;
  namespace?: string;
  name: string;
  status: Record<string, unknown>;
}

export interface GatewayApiConfig {
  gateways: Array<GeneratedObject<IstioGatewaySpec>>;
  virtualServices: Array<GeneratedObject<VirtualServiceSpec>>;
  /** TLS origination from BackendTLSPolicies. */
  destinationRules: GeneratedDestinationRule[];
  statuses: GatewayApiStatus[];
}

const byCreation = (a: { creationTimestamp?: string; namespace: string; name: string }, b: typeof a) =>
  (a.creationTimestamp ?? '').localeCompare(b.creationTimestamp ?? '') ||
  a.namespace.localeCompare(b.namespace) ||
  a.name.localeCompare(b.name);

/**
 * Every Gateway API object as Istio Gateways and VirtualServices, with the status each object should have.
 * `view` is the cluster as the conversion reads it (its ReferenceGrants are built from `objects`);
 * `now` is an RFC 3339 time for condition transitions. Objects of classes Weft does not serve are left alone.
 */
export function gatewayApiConfigOf(objects: GatewayApiObjects, view: Omit<ClusterView, 'grants'>, now: string): GatewayApiConfig {
  const cluster: ClusterView = { ...view, grants: new ReferenceGrants(objects.referenceGrants) };
  const statuses: GatewayApiStatus[] = [];
  for (const gatewayClass of objects.gatewayClasses) {
    const status = gatewayClassStatus(gatewayClass, now);
    if (status && gatewayClass.metadata?.name)
      statuses.push({ kind: 'GatewayClass', plural: 'gatewayclasses', version: 'v1', name: gatewayClass.metadata.name, status });
  }

  const gateways: Array<GeneratedObject<IstioGatewaySpec>> = [];
  const listenersByGateway = new Map<string, ListenerParent[]>();
  const controllerByGateway = new Map<string, string>();
  const gatewayStatuses = new Map<string, { gateway: Gateway; status: NonNullable<Gateway['status']> }>();
  for (const gateway of objects.gateways) {
    const { name, namespace } = gateway.metadata ?? {};
    if (!name || !namespace) continue;
    const controller = controllerOfClass(gateway.spec?.gatewayClassName, objects.gatewayClasses);
    if (!controller) continue;
    const converted = convertGateway(gateway, controller, cluster, now);
    gateways.push(...converted.istioGateways);
    listenersByGateway.set(`${namespace}/${name}`, converted.parents);
    controllerByGateway.set(`${namespace}/${name}`, controller);
    gatewayStatuses.set(`${namespace}/${name}`, { gateway, status: converted.status });
  }

  const controllerOf = (gateway: string | undefined) => (gateway ? controllerByGateway.get(gateway) : undefined) ?? weftGatewayController;
  const keyed = new Map<string, Array<GeneratedObject<VirtualServiceSpec>>>();
  const unkeyed: Array<GeneratedObject<VirtualServiceSpec>> = [];
  const attached = new Map<string, number>();
  const routeSets: Array<{ kind: RouteKind; plural: string; routes: ReadonlyArray<HttpRoute | GrpcRoute | TcpRoute | TlsRoute> }> = [
    { kind: 'HTTPRoute', plural: 'httproutes', routes: objects.httpRoutes },
    { kind: 'GRPCRoute', plural: 'grpcroutes', routes: objects.grpcRoutes },
    { kind: 'TCPRoute', plural: 'tcproutes', routes: objects.tcpRoutes },
    { kind: 'TLSRoute', plural: 'tlsroutes', routes: objects.tlsRoutes },
  ];
  for (const { kind, plural, routes } of routeSets) {
    for (const route of routes) {
      const { name, namespace } = route.metadata ?? {};
      if (!name || !namespace) continue;
      const converted = convertRoute(route as never, kind, listenersByGateway, cluster, controllerOf, now);
      for (const { key, object } of converted.virtualServices) {
        if (key === undefined) unkeyed.push(object);
        else keyed.set(key, [...(keyed.get(key) ?? []), object]);
      }
      for (const { gateway, listener } of converted.attachments)
        attached.set(`${gateway}/${listener}`, (attached.get(`${gateway}/${listener}`) ?? 0) + 1);
      // A route whose parents are all another implementation's gets no status from Weft.
      if (converted.status.parents.length > 0 || (route.status?.parents ?? []).length > 0)
        statuses.push({ kind, plural, version: 'v1', namespace, name, status: { ...route.status, ...converted.status } });
    }
  }

  for (const [key, { gateway, status }] of gatewayStatuses) {
    const listeners = status.listeners?.map((l) => ({ ...l, attachedRoutes: attached.get(`${key}/${l.name}`) ?? 0 }));
    statuses.push({
      kind: 'Gateway',
      plural: 'gateways',
      version: 'v1',
      namespace: gateway.metadata?.namespace as string,
      name: gateway.metadata?.name as string,
      status: { ...status, ...(listeners ? { listeners } : {}) },
    });
  }

  // BackendTLSPolicy: its Gateway ancestors are the Gateways whose routes name the target as a backend.
  const gatewaysByBackend = new Map<string, Array<{ gateway: string; controller: string }>>();
  for (const { routes } of routeSets)
    for (const route of routes) {
      const namespace = route.metadata?.namespace as string;
      const parents = (route.spec?.parentRefs ?? [])
        .filter((p) => (p.group ?? 'gateway.networking.k8s.io') === 'gateway.networking.k8s.io' && (p.kind ?? 'Gateway') === 'Gateway')
        .map((p) => `${p.namespace ?? namespace}/${p.name}`)
        .filter((g) => controllerByGateway.has(g));
      for (const rule of route.spec?.rules ?? [])
        for (const backend of (rule as { backendRefs?: Array<{ group?: string; kind?: string; name: string; namespace?: string }> })
          .backendRefs ?? []) {
          if ((backend.group ?? '') !== '' || (backend.kind ?? 'Service') !== 'Service') continue;
          const key = `${backend.namespace ?? namespace}/${backend.name}`;
          const known = gatewaysByBackend.get(key) ?? [];
          for (const gateway of parents)
            if (!known.some((k) => k.gateway === gateway)) known.push({ gateway, controller: controllerByGateway.get(gateway) as string });
          gatewaysByBackend.set(key, known);
        }
    }
  const backendTls = backendTlsPolicies(objects.backendTlsPolicies ?? [], cluster, gatewaysByBackend, weftMeshController, now);
  for (const { policy, status } of backendTls.statuses)
    statuses.push({
      kind: 'BackendTLSPolicy',
      plural: 'backendtlspolicies',
      version: 'v1',
      namespace: policy.metadata?.namespace as string,
      name: policy.metadata?.name as string,
      status,
    });

  return {
    gateways: gateways.sort(byCreation),
    virtualServices: [...mergeByKey(keyed), ...unkeyed].sort(byCreation),
    destinationRules: backendTls.destinationRules,
    statuses,
  };
}

/**
 * HTTPRoute and GRPCRoute VirtualServices sharing a key become one (mergeHTTPRoutes): named by the key with
 * `/` as `~`, the oldest route's metadata, every route's rules in the spec's match order, parents joined.
 */
function mergeByKey(keyed: ReadonlyMap<string, Array<GeneratedObject<VirtualServiceSpec>>>): Array<GeneratedObject<VirtualServiceSpec>> {
  return [...keyed.entries()].map(([key, objects]) => {
    const sorted = [...objects].sort(byCreation);
    const base = sorted[0] as GeneratedObject<VirtualServiceSpec>;
    const name = key.replaceAll('/', '~');
    if (sorted.length === 1) return { ...base, name };
    return {
      ...base,
      name,
      annotations: {
        ...base.annotations,
        'internal.istio.io/parents': sorted.map((o) => o.annotations['internal.istio.io/parents']).join(','),
      },
      spec: { ...base.spec, http: sortHttpRoutes(sorted.flatMap((o) => o.spec.http ?? [])) },
    };
  });
}
