// Kubernetes and Istio objects to the MeshModel: Services with their ready
// endpoints (and the pods' labels), ServiceEntry hosts with their endpoints or
// selected WorkloadEntries and pods, and the networking config as read. Pure.
import type { V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import { labelsMatch } from '../traffic/host-names.js';
import { Derivations } from '../collections/derivations.js';
import { KeyedMemo } from '../collections/keyed-memo.js';
import { errorsOf, refusalMessage, validateIstioObject } from '../../istio/validation/validate-istio-object.js';
import {
  emptyIstioConfig,
  type ConfigObject,
  type IstioConfig,
  type RejectedObject,
  type ServiceEntrySpec,
  type WorkloadEntrySpec,
} from './istio-config.js';
import type { MeshModel, MeshService, ServiceEndpoint } from './mesh-model.js';

export interface IstioObject {
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    creationTimestamp?: string | Date;
    generation?: number;
    annotations?: Record<string, string>;
  };
  spec?: unknown;
}

export const networkingKinds = [
  { group: 'networking.istio.io', plural: 'virtualservices', field: 'virtualServices', kind: 'VirtualService' },
  { group: 'networking.istio.io', plural: 'destinationrules', field: 'destinationRules', kind: 'DestinationRule' },
  { group: 'networking.istio.io', plural: 'serviceentries', field: 'serviceEntries', kind: 'ServiceEntry' },
  { group: 'networking.istio.io', plural: 'workloadentries', field: 'workloadEntries', kind: 'WorkloadEntry' },
  { group: 'networking.istio.io', plural: 'sidecars', field: 'sidecars', kind: 'Sidecar' },
  // Read for their status and `weft analyze` only: no generator applies them (config-analysis.ts says so on each).
  { group: 'networking.istio.io', plural: 'gateways', field: 'gateways', kind: 'Gateway' },
  { group: 'networking.istio.io', plural: 'workloadgroups', field: 'workloadGroups', kind: 'WorkloadGroup' },
] as const;

export const securityKinds = [
  { group: 'security.istio.io', plural: 'peerauthentications', field: 'peerAuthentications', kind: 'PeerAuthentication' },
  { group: 'security.istio.io', plural: 'authorizationpolicies', field: 'authorizationPolicies', kind: 'AuthorizationPolicy' },
  { group: 'security.istio.io', plural: 'requestauthentications', field: 'requestAuthentications', kind: 'RequestAuthentication' },
] as const;

export const telemetryKinds = [{ group: 'telemetry.istio.io', plural: 'telemetries', field: 'telemetries', kind: 'Telemetry' }] as const;

/** Every Istio kind the model reads. */
export const istioKinds = [...networkingKinds, ...securityKinds, ...telemetryKinds];

/** Istio objects by plural, as listed, to the typed config (objects without a spec are skipped). */
export function istioConfigOf(byPlural: Record<string, ReadonlyArray<IstioObject>>): IstioConfig {
  const config = emptyIstioConfig();
  const rejected: RejectedObject[] = [];
  for (const { group, plural, field, kind } of istioKinds) {
    const objects = (byPlural[plural] ?? []).flatMap((object): Array<ConfigObject<never>> => {
      // Each object is read (and validated) once: an unchanged object keeps its ConfigObject, whose identity tells
      // the incremental xDS derivation that nothing about it changed.
      const known = readObjects.get(object);
      if (known?.kind === kind) {
        if (known.rejected) rejected.push(known.rejected);
        return known.config ? [known.config as ConfigObject<never>] : [];
      }
      const read = readObject(group, kind, object);
      readObjects.set(object, { kind, ...read });
      if (read.rejected) rejected.push(read.rejected);
      return read.config ? [read.config as ConfigObject<never>] : [];
    });
    (config[field] as ConfigObject<unknown>[]) = objects;
  }
  return rejected.length > 0 ? { ...config, rejected } : config;
}

/** Istio's annotation that keeps an AuthorizationPolicy in shadow (logged, not enforced) rules. */
const dryRunAnnotation = 'istio.io/dry-run';

const readObjects = new WeakMap<IstioObject, { kind: string; config?: ConfigObject<unknown>; rejected?: RejectedObject }>();

/** One Istio object as config, or why it is left out. */
function readObject(group: string, kind: string, object: IstioObject): { config?: ConfigObject<unknown>; rejected?: RejectedObject } {
  const { name, namespace, creationTimestamp, generation, annotations } = object.metadata ?? {};
  if (!name || !namespace) return {};
  // No spec is an empty spec (for an AuthorizationPolicy: allow nothing), never "no policy".
  const spec = object.spec && typeof object.spec === 'object' ? object.spec : {};
  // Objects that got in without the webhook (written before weftd ran) are checked here, as
  // istiod does: an invalid one is left out and reported, so it cannot break everyone's config.
  const problem = invalidReason(`${group}/v1`, kind, spec);
  if (problem) {
    return { rejected: { kind, namespace, name, ...(generation !== undefined ? { generation } : {}), message: problem } };
  }
  const created = creationTimestamp instanceof Date ? creationTimestamp.toISOString() : creationTimestamp;
  return {
    config: {
      kind,
      name,
      namespace,
      ...(created ? { creationTimestamp: created } : {}),
      ...(generation !== undefined ? { generation } : {}),
      ...(annotations?.[dryRunAnnotation] !== undefined ? { annotations: { [dryRunAnnotation]: annotations[dryRunAnnotation] } } : {}),
      spec,
    },
  };
}

function invalidReason(apiVersion: string, kind: string, spec: unknown): string | undefined {
  try {
    const issues = validateIstioObject({ apiVersion, kind, spec });
    return errorsOf(issues).length > 0 ? refusalMessage(issues) : undefined;
  } catch (error) {
    return `could not be validated: ${error instanceof Error ? error.message : String(error)}`;
  }
}

const exportToAnnotation = 'networking.istio.io/exportTo';

export function meshModelOf(
  services: ReadonlyArray<V1Service>,
  slices: ReadonlyArray<V1EndpointSlice>,
  clusterDomain: string,
  pods: ReadonlyArray<V1Pod> = [],
  istio: IstioConfig = emptyIstioConfig(),
  rootNamespace = 'istio-system',
  trustDomain = 'cluster.local',
  /** Keeps each service's MeshService across calls while its inputs are the same objects (weftd passes one). */
  memo?: MeshModelMemo,
): MeshModel {
  const podsByKey = new Map(pods.map((pod) => [`${pod.metadata?.namespace}/${pod.metadata?.name}`, pod]));
  const slicesByService = new Map<string, V1EndpointSlice[]>();
  for (const slice of slices) {
    const owner = slice.metadata?.labels?.['kubernetes.io/service-name'];
    if (!owner) continue;
    const key = `${slice.metadata?.namespace}/${owner}`;
    slicesByService.set(key, [...(slicesByService.get(key) ?? []), slice]);
  }
  const kubernetesServices: MeshService[] = services
    .filter((service) => service.metadata?.name && service.metadata.namespace && service.spec?.type !== 'ExternalName')
    .map((service) => {
      const key = `${service.metadata?.namespace}/${service.metadata?.name}`;
      const ownSlices = slicesByService.get(key) ?? [];
      if (!memo) return kubernetesService(service, ownSlices, podsByKey);
      // Its inputs: the Service, its EndpointSlices and the pods they name (labels, ServiceAccount).
      const namedPods = ownSlices.flatMap((slice) =>
        (slice.endpoints ?? []).map((endpoint) =>
          endpoint.targetRef?.kind === 'Pod'
            ? podsByKey.get(`${endpoint.targetRef.namespace ?? slice.metadata?.namespace}/${endpoint.targetRef.name}`)
            : undefined,
        ),
      );
      return memo.services.get(key, [service, ...ownSlices, ...namedPods], () => kubernetesService(service, ownSlices, podsByKey));
    });
  const podsByNamespace = new Map<string, V1Pod[]>();
  for (const pod of pods) {
    const namespace = pod.metadata?.namespace ?? '';
    podsByNamespace.set(namespace, [...(podsByNamespace.get(namespace) ?? []), pod]);
  }
  const entryServices = istio.serviceEntries.flatMap((entry) => {
    const derive = () => serviceEntryServices(entry, istio.workloadEntries, pods);
    if (!memo) return derive();
    // A workloadSelector reads the WorkloadEntries and pods of the entry's namespace.
    const inputs = entry.spec.workloadSelector
      ? [...istio.workloadEntries.filter((we) => we.namespace === entry.namespace), ...(podsByNamespace.get(entry.namespace) ?? [])]
      : [];
    return memo.serviceEntries.get(`${entry.namespace}/${entry.name}`, [entry, ...inputs], derive);
  });
  return { clusterDomain, rootNamespace, trustDomain, services: [...kubernetesServices, ...entryServices], istio };
}

/** The per-service values meshModelOf keeps between calls (krt-style: recomputed only when their inputs change). */
export class MeshModelMemo {
  readonly derivations = new Derivations();
  readonly services = new KeyedMemo<string, MeshService>('mesh-service', this.derivations, 1);
  readonly serviceEntries = new KeyedMemo<string, MeshService[]>('service-entry', this.derivations, 1);

  /** Call after each model: values for deleted inputs go. */
  endRound(): void {
    this.services.endRound();
    this.serviceEntries.endRound();
  }
}

/** One Kubernetes Service with the ready endpoints of its EndpointSlices. */
function kubernetesService(
  service: V1Service,
  ownSlices: ReadonlyArray<V1EndpointSlice>,
  podsByKey: ReadonlyMap<string, V1Pod>,
): MeshService {
  const endpoints = ownSlices.flatMap((slice) => {
    const ports = Object.fromEntries((slice.ports ?? []).filter((p) => p.port !== undefined).map((p) => [p.name ?? '', p.port as number]));
    return (slice.endpoints ?? [])
      .filter((endpoint) => endpoint.conditions?.ready !== false && endpoint.conditions?.terminating !== true)
      .flatMap((endpoint) => {
        const pod =
          endpoint.targetRef?.kind === 'Pod'
            ? podsByKey.get(`${endpoint.targetRef.namespace ?? slice.metadata?.namespace}/${endpoint.targetRef.name}`)
            : undefined;
        return endpoint.addresses.map((address) => endpointOf(address, ports, pod?.metadata?.labels, pod?.spec?.serviceAccountName));
      });
  });
  const exportTo = service.metadata?.annotations?.[exportToAnnotation];
  return {
    name: service.metadata?.name as string,
    namespace: service.metadata?.namespace as string,
    ports: (service.spec?.ports ?? []).map((p) => {
      // A named targetPort is resolved through the endpoints, which carry the number.
      const target =
        typeof p.targetPort === 'number'
          ? p.targetPort
          : p.targetPort === undefined
            ? p.port
            : endpoints.find((e) => e.ports[p.name ?? ''] !== undefined)?.ports[p.name ?? ''];
      // The protocol is decided from appProtocol and the name where it is read (traffic/port-protocol.ts).
      const appProtocol = p.appProtocol;
      return {
        name: p.name ?? '',
        port: p.port,
        protocol: p.protocol ?? 'TCP',
        ...(target !== undefined ? { targetPort: Number(target) } : {}),
        ...(appProtocol ? { appProtocol } : {}),
      };
    }),
    endpoints,
    ...(service.spec?.selector && Object.keys(service.spec.selector).length > 0 ? { selector: service.spec.selector } : {}),
    ...(exportTo ? { exportTo: exportTo.split(',').map((entry) => entry.trim()) } : {}),
    ...clusterAddresses(service),
  };
}

/** A Service's cluster IPs (`clusterIPs`, else `clusterIP`), or that it is headless. */
function clusterAddresses(service: V1Service): Pick<MeshService, 'addresses' | 'headless'> {
  const ips = service.spec?.clusterIPs ?? (service.spec?.clusterIP ? [service.spec.clusterIP] : []);
  if (ips.includes('None')) return { headless: true };
  return ips.length > 0 ? { addresses: ips } : {};
}

function endpointOf(
  address: string,
  ports: Record<string, number>,
  labels: Record<string, string> | undefined,
  serviceAccount?: string,
): ServiceEndpoint {
  const tlsMode = labels?.['security.istio.io/tlsMode'];
  return { address, ports, ...(labels ? { labels } : {}), ...(tlsMode ? { tlsMode } : {}), ...(serviceAccount ? { serviceAccount } : {}) };
}

/**
 * One MeshService per ServiceEntry host. Endpoints are the entry's own, or the
 * WorkloadEntries and pods its workloadSelector picks in its namespace; a port's
 * target is the endpoint's named port, else the entry port's targetPort, else the port.
 */
function serviceEntryServices(
  entry: ConfigObject<ServiceEntrySpec>,
  workloadEntries: ReadonlyArray<ConfigObject<WorkloadEntrySpec>>,
  pods: ReadonlyArray<V1Pod>,
): MeshService[] {
  const spec = entry.spec;
  // The protocol as declared: Istio parses it (traffic/port-protocol.ts); none declared is detected.
  const ports = (spec.ports ?? []).map((p) => ({ name: p.name, port: p.number, protocol: p.protocol ?? '', targetPort: p.targetPort }));
  const portMap = (named: Record<string, number> | undefined) =>
    Object.fromEntries(ports.map((p) => [p.name, named?.[p.name] ?? p.targetPort ?? p.port]));
  type Workload = { address?: string; ports?: Record<string, number>; labels?: Record<string, string>; serviceAccount?: string };
  let workloads: Workload[];
  if (spec.workloadSelector) {
    const selector = spec.workloadSelector.labels as Record<string, string> | undefined;
    workloads = [
      ...workloadEntries
        .filter((we) => we.namespace === entry.namespace && labelsMatch(selector, (we.spec.labels ?? {}) as Record<string, string>))
        .map((we) => ({
          ...(we.spec.address ? { address: we.spec.address } : {}),
          ...(we.spec.ports ? { ports: we.spec.ports as Record<string, number> } : {}),
          labels: (we.spec.labels ?? {}) as Record<string, string>,
          ...(we.spec.serviceAccount ? { serviceAccount: we.spec.serviceAccount } : {}),
        })),
      ...pods
        .filter(
          (pod) => pod.metadata?.namespace === entry.namespace && pod.status?.podIP && labelsMatch(selector, pod.metadata?.labels ?? {}),
        )
        .map((pod) => ({
          address: pod.status?.podIP as string,
          labels: pod.metadata?.labels ?? {},
          ...(pod.spec?.serviceAccountName ? { serviceAccount: pod.spec.serviceAccountName } : {}),
        })),
    ];
  } else {
    workloads = (spec.endpoints ?? []).map((endpoint) => ({
      ...(endpoint.address ? { address: endpoint.address } : {}),
      ...(endpoint.ports ? { ports: endpoint.ports as Record<string, number> } : {}),
      ...(endpoint.labels ? { labels: endpoint.labels as Record<string, string> } : {}),
    }));
  }
  const endpoints = workloads
    .filter((w): w is Workload & { address: string } => !!w.address && !w.address.startsWith('unix://'))
    .map((w) => endpointOf(w.address, portMap(w.ports), w.labels, w.serviceAccount));
  const resolution = spec.resolution === 'DYNAMIC_DNS' ? 'DNS' : (spec.resolution ?? 'NONE');
  return spec.hosts.map((host) => ({
    name: host,
    namespace: entry.namespace,
    hostname: host,
    ports: ports.map(({ name, port, protocol, targetPort }) => ({
      name,
      port,
      protocol,
      ...(targetPort !== undefined ? { targetPort } : {}),
    })),
    endpoints,
    resolution,
    ...(spec.exportTo ? { exportTo: spec.exportTo } : {}),
    ...(spec.location !== 'MESH_INTERNAL' ? { meshExternal: true } : {}),
    ...(spec.addresses?.length ? { addresses: spec.addresses } : {}),
  }));
}
