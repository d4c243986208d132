// What `weft dashboard` draws, derived from what weftd already holds: the mesh model
// (services and the workloads behind them, by version), the data plane's load reports
// (edges with live request and error rates), each edge's transport (Istio mTLS or
// plaintext, as the caller's cluster says) and the routing rule that shapes it, and
// every connected proxy's sync state per type. Pure: the same inputs, the same graph.
import { syncState, type SyncState } from '../cli/sync-status.js';
import { serviceHost, type MeshModel } from '../xds/model/mesh-model.js';
import type { LoadEdge } from '../xds/load/load-store.js';
import type { ProxySyncStatus } from '../xds/server/discovery-types.js';
import { grpcClientUsesMtls } from '../xds/security/grpc-tls.js';
import { labelsMatch, resolveHost } from '../xds/traffic/host-names.js';
import { MeshIndex } from '../xds/traffic/mesh-index.js';
import { ProxyView } from '../xds/traffic/proxy-view.js';
import type { ConfigVerdict } from '../xds/traffic/config-analysis.js';
import { routeRules, type RouteRule } from './route-rules.js';

/** A workload: one app at one version in one namespace (Kubernetes' recommended `app`/`version` labels, as Kiali groups). */
export interface GraphWorkload {
  id: string;
  namespace: string;
  app: string;
  version: string;
  /** Services whose selector picks this workload's pods. */
  services: string[];
  pods: number;
}

export interface GraphService {
  /** The host, `<name>.<namespace>.svc.<domain>`. */
  id: string;
  name: string;
  namespace: string;
  /**
   * The VirtualService that routes it: `weights` are the shares (percent) by subset of its
   * catch-all route (the first without a match; else its first), `rules` every HTTP route in order.
   */
  route?: { virtualService: string; weights: Array<{ subset: string; weight: number }>; rules: RouteRule[] };
}

export interface GraphEdge {
  /** Caller workload id. */
  source: string;
  /** Destination service host. */
  target: string;
  /** The destination subset the caller's cluster names (`outbound|<port>|<subset>|<host>`), '' for none. */
  subset: string;
  requestsPerSecond: number;
  errorsPerSecond: number;
  /** Calls in flight at the last report. */
  inProgress: number;
  /** Istio mutual TLS on this edge (the caller's cluster carries the mesh certificate), else plaintext. */
  mtls: boolean;
  /**
   * The routes of the target's VirtualService that send traffic down this edge (to its subset, or to the host
   * when it has none), each as `<match> → <weight>%`, with `; fault <fault>` when the route injects one.
   */
  rules: string[];
  /** Where the figures come from: the caller's own load reports (`lrs`), or Istio's metrics in Prometheus (prometheus-edges.ts). */
  reportedBy: 'lrs' | 'prometheus';
}

/** How far an Istio object's current generation has reached: its `Reconciled` condition (docs/analysis.md). */
export interface GraphPropagation {
  kind: string;
  namespace: string;
  name: string;
  /** True: every proxy it applies to has ACKed config holding its generation; Unknown: not counted. */
  status: 'True' | 'False' | 'Unknown';
  /** "N/M proxies up to date.", then the last NACK naming it, if any. */
  message: string;
}

/**
 * Each Istio object of `model` that `condition` knows (the `Reconciled` condition weftd writes), as the
 * dashboard lists it; objects without a condition (kinds not tracked, objects generated from the Gateway API) are left out.
 */
export function propagationOf(
  model: MeshModel | undefined,
  condition: (kind: string, namespace: string, name: string) => { status: GraphPropagation['status']; message: string } | undefined,
): GraphPropagation[] {
  const rows: GraphPropagation[] = [];
  for (const objects of Object.values(model?.istio ?? {}))
    for (const object of objects as ReadonlyArray<{
      kind: string;
      namespace: string;
      name: string;
      annotations?: Record<string, string>;
    }>) {
      // Config converted from the Gateway API is not an object anyone applied: its routes carry their own status.
      if (object.annotations?.['internal.istio.io/parents']) continue;
      const found = condition(object.kind, object.namespace, object.name);
      if (found)
        rows.push({ kind: object.kind, namespace: object.namespace, name: object.name, status: found.status, message: found.message });
    }
  return rows;
}

/** An analyzer message on an Istio object, as weftd writes it to the object's status and `weft analyze` prints it. */
export interface GraphFinding {
  kind: string;
  namespace: string;
  name: string;
  code: string;
  level: 'ERROR' | 'WARNING' | 'INFO';
  message: string;
}

export interface GraphProxy {
  nodeId: string;
  pod?: string;
  namespace?: string;
  /** Per xDS type (short name: LDS, RDS, CDS, EDS): SYNCED, STALE (sent, not yet acknowledged), NACK, or NOT SENT. */
  sync: Record<string, { state: SyncState; error?: string }>;
}

export interface MeshGraph {
  workloads: GraphWorkload[];
  services: GraphService[];
  edges: GraphEdge[];
  proxies: GraphProxy[];
  /** The analyzers' messages, errors first. */
  findings: GraphFinding[];
  /** Each Istio object's propagation, those not yet everywhere first. */
  propagation: GraphPropagation[];
}

const shortTypes: Record<string, string> = {
  'type.googleapis.com/envoy.config.listener.v3.Listener': 'LDS',
  'type.googleapis.com/envoy.config.route.v3.RouteConfiguration': 'RDS',
  'type.googleapis.com/envoy.config.cluster.v3.Cluster': 'CDS',
  'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment': 'EDS',
};

export const workloadId = (namespace: string, app: string, version: string) => `${namespace}/${app}/${version}`;

/**
 * The graph of the mesh as weftd sees it now. Shapes: rates per second over the load store's window.
 * Workloads come from the services' endpoints (their pods' `app`/`version` labels, falling back to the
 * service name and `unknown`) and from the callers that reported load.
 */
export function meshGraph(
  model: MeshModel,
  loads: ReadonlyArray<LoadEdge>,
  proxies: ReadonlyArray<ProxySyncStatus>,
  options: {
    hiddenNamespaces?: ReadonlyArray<string>;
    verdicts?: ReadonlyArray<ConfigVerdict>;
    propagation?: ReadonlyArray<GraphPropagation>;
  } = {},
): MeshGraph {
  const hidden = new Set(options.hiddenNamespaces ?? []);
  const index = MeshIndex.of(model);
  const workloads = new Map<string, GraphWorkload>();
  const workload = (namespace: string, labels: Record<string, string> | undefined, fallback: string) => {
    // Without an `app` label, a Deployment's pod is named after it: <deployment>-<replicaset hash>-<pod suffix>.
    const app = labels?.['app'] ?? fallback.replace(/-[a-z0-9]{6,10}-[a-z0-9]{5}$/, '');
    const version = labels?.['version'] ?? 'unknown';
    const id = workloadId(namespace, app, version);
    let found = workloads.get(id);
    if (!found) workloads.set(id, (found = { id, namespace, app, version, services: [], pods: 0 }));
    return found;
  };
  const services: GraphService[] = [];
  const called = new Set(loads.map((load) => load.cluster.split('|')[3]));
  for (const service of model.services) {
    // ServiceEntries are hosts outside the cluster's workloads; a Service with no pod behind it and no caller
    // (the API server's `kubernetes`) is not part of the mesh's traffic.
    if (service.hostname || hidden.has(service.namespace)) continue;
    if (!service.endpoints.some((e) => e.labels) && !called.has(serviceHost(service, model.clusterDomain))) continue;
    const host = serviceHost(service, model.clusterDomain);
    const seen = new Set<string>();
    for (const endpoint of service.endpoints) {
      const w = workload(service.namespace, endpoint.labels, service.name);
      if (!w.services.includes(host)) w.services.push(host);
      if (!seen.has(`${w.id}|${endpoint.address}`)) {
        seen.add(`${w.id}|${endpoint.address}`);
        w.pods++;
      }
    }
    const view = new ProxyView(model, { kind: 'grpc', namespace: service.namespace, labels: {} }, index);
    const rule = view.virtualServiceFor(host);
    const rules = routeRules(rule?.spec.http ?? []);
    const catchAll = rules.find((r) => r.match === 'any request') ?? rules[0];
    services.push({
      id: host,
      name: service.name,
      namespace: service.namespace,
      ...(rule
        ? {
            route: {
              virtualService: `${rule.namespace}/${rule.name}`,
              weights: (catchAll?.weights ?? []).map(({ subset, weight }) => ({ subset, weight })),
              rules,
            },
          }
        : {}),
    });
  }

  const edges: GraphEdge[] = [];
  const ruleCache = new Map<string, RouteRule[]>();
  for (const load of loads) {
    const [direction, port, subset, host] = load.cluster.split('|');
    if (direction !== 'outbound' || !host) continue;
    const source = workload(load.source.namespace, load.source.labels, load.source.pod || 'unknown');
    const service = index.byHost.get(host)?.at(-1);
    let mtls = false;
    if (service) {
      const view = new ProxyView(model, { kind: 'grpc', namespace: load.source.namespace, labels: load.source.labels }, index);
      const rule = view.destinationRuleFor(host);
      const subsetLabels = rule?.subsets.find((s) => s.name === subset)?.labels;
      const endpoints = subsetLabels ? service.endpoints.filter((e) => labelsMatch(subsetLabels, e.labels ?? {})) : service.endpoints;
      const servicePort = service.ports.find((p) => String(p.port) === port);
      mtls = !!servicePort && grpcClientUsesMtls(model, service, endpoints, servicePort.name ?? '', rule?.trafficPolicy?.tls);
    }
    edges.push({
      source: source.id,
      target: host,
      subset: subset ?? '',
      requestsPerSecond: load.requestsPerSecond,
      errorsPerSecond: load.errorsPerSecond,
      inProgress: load.inProgress,
      mtls,
      rules: edgeRules(ruleCache, model, index, load.source, host, subset ?? ''),
      reportedBy: 'lrs',
    });
  }

  return {
    workloads: [...workloads.values()].sort((a, b) => a.id.localeCompare(b.id)),
    services: services.sort((a, b) => a.id.localeCompare(b.id)),
    edges: edges.sort((a, b) => a.source.localeCompare(b.source) || a.target.localeCompare(b.target) || a.subset.localeCompare(b.subset)),
    proxies: proxies
      .filter((p) => p.nodeId)
      .map((p) => ({
        nodeId: p.nodeId,
        ...(p.pod ? { pod: p.pod.name, namespace: p.pod.namespace } : {}),
        sync: Object.fromEntries(
          p.types
            .filter((t) => shortTypes[t.typeUrl])
            .map((t) => [shortTypes[t.typeUrl] as string, { state: syncState(t), ...(t.lastNackError ? { error: t.lastNackError } : {}) }]),
        ),
      }))
      .sort((a, b) => a.nodeId.localeCompare(b.nodeId)),
    findings: (options.verdicts ?? [])
      .filter((v) => !hidden.has(v.namespace))
      .flatMap((v) =>
        v.messages.map((m) => ({ kind: v.kind, namespace: v.namespace, name: v.name, code: m.code, level: m.level, message: m.message })),
      )
      .sort(
        (a, b) =>
          levelOrder[a.level] - levelOrder[b.level] ||
          `${a.namespace}/${a.kind}/${a.name}`.localeCompare(`${b.namespace}/${b.kind}/${b.name}`) ||
          a.code.localeCompare(b.code),
      ),
    propagation: (options.propagation ?? [])
      .filter((p) => !hidden.has(p.namespace))
      .sort(
        (a, b) =>
          statusOrder[a.status] - statusOrder[b.status] ||
          `${a.namespace}/${a.kind}/${a.name}`.localeCompare(`${b.namespace}/${b.kind}/${b.name}`),
      ),
  };
}

const levelOrder = { ERROR: 0, WARNING: 1, INFO: 2 } as const;
const statusOrder = { False: 0, Unknown: 1, True: 2 } as const;

/**
 * The rules of `host`'s VirtualService, as the caller sees it, that route to `subset` (`<match> → <weight>%`),
 * cached per caller namespace and labels: many edges share a caller.
 */
export function edgeRules(
  cache: Map<string, RouteRule[]>,
  model: MeshModel,
  index: MeshIndex,
  caller: Pick<LoadEdge['source'], 'namespace' | 'labels'>,
  host: string,
  subset: string,
): string[] {
  const key = `${caller.namespace}|${JSON.stringify(caller.labels ?? {})}|${host}`;
  let rules = cache.get(key);
  if (!rules) {
    const view = new ProxyView(model, { kind: 'grpc', namespace: caller.namespace, labels: caller.labels }, index);
    const virtualService = view.virtualServiceFor(host);
    // Destinations' short names are the VirtualService's namespace's.
    rules = routeRules(virtualService?.spec.http ?? []).map((rule) => ({
      ...rule,
      weights: rule.weights.map((w) => ({ ...w, host: resolveHost(w.host, virtualService?.namespace ?? '', model.clusterDomain) })),
    }));
    cache.set(key, rules);
  }
  return rules.flatMap((rule) =>
    rule.weights
      .filter((w) => w.host === host && w.subset === subset && w.weight > 0)
      .map((w) => `${rule.match} → ${w.weight}%${rule.fault ? `; fault ${rule.fault}` : ''}`),
  );
}
