// What one model change touches, from the previous model and the next: the hosts
// whose outbound config must be derived again, the hosts whose endpoints alone
// moved (the EDS fast path), the namespaces whose inbound config must be derived
// again, and whether any selector changed (so proxies may change groups). Objects
// equal by identity are unchanged without a look; others are compared by content,
// so a model rebuilt from scratch still costs only what really changed. Pure.
import type { ConfigObject, IstioConfig } from '../model/istio-config.js';
import { emptyIstioConfig } from '../model/istio-config.js';
import { serviceHost, type MeshModel, type MeshService } from '../model/mesh-model.js';
import { boundGateways, bindsToMesh } from '../traffic/gateway-servers.js';
import { hostMatches, resolveHost } from '../traffic/host-names.js';

export type Namespaces = Set<string> | 'all';

export interface ModelChange {
  /** Mesh-wide inputs changed (mesh config, trust domain, JWKS, domains): every group is derived again. */
  everything: boolean;
  /** Hosts whose service, VirtualService or DestinationRule changed. */
  hosts: Set<string>;
  /** Wildcard host patterns of changed VirtualServices and DestinationRules (they may name hosts no service has). */
  hostPatterns: Set<string>;
  /** Hosts whose endpoints alone changed: their clusters and ClusterLoadAssignments only. */
  endpointHosts: Set<string>;
  /** Namespaces whose outbound groups are derived again whole (Sidecar, Telemetry). */
  outboundNamespaces: Namespaces;
  /** Namespaces whose inbound groups are derived again (Services' ports and selectors, security policy, Telemetry). */
  inboundNamespaces: Namespaces;
  /** Some selector (Sidecar, DestinationRule, sourceLabels, Service, policy, Telemetry) changed: regroup proxies. */
  selectorsChanged: boolean;
  /** PeerAuthentication changed: auto mTLS of clusters, and proxyless servers' listeners. */
  peerAuthentication: boolean;
  /** AuthorizationPolicy changed: proxyless servers' listeners. */
  authorization: boolean;
  /** Services whose endpoints or shape changed, by key (proxyless servers' listeners follow their endpoints). */
  services: Set<string>;
  /** Gateways (`<namespace>/<name>`) added, removed or edited: the gateway groups serving them are derived again. */
  gateways: Set<string>;
  /** Gateways whose bound VirtualServices changed (bound before or after the change). */
  gatewayRoutes: Set<string>;
  /**
   * Hosts whose Service (or ServiceEntry) or DestinationRule changed: what a gateway's routes
   * read of their destinations. A VirtualService edit is not among them (it changes the
   * routes of its own hosts for sidecars, which gateways do not read).
   */
  destinationHosts: Set<string>;
  /** Wildcard hosts of changed DestinationRules (they may cover destinations no service has). */
  destinationPatterns: Set<string>;
}

export const serviceKey = (service: MeshService) => `${service.namespace}/${service.name}/${service.hostname ?? ''}`;

const contentOf = new WeakMap<object, string>();
function content(value: object): string {
  let json = contentOf.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    contentOf.set(value, json);
  }
  return json;
}
const same = (a: object | undefined, b: object | undefined) => a === b || (!!a && !!b && content(a) === content(b));

const shapeOf = new WeakMap<MeshService, string>();
function shape(service: MeshService): string {
  let json = shapeOf.get(service);
  if (json === undefined) {
    const { endpoints: _endpoints, ...rest } = service;
    json = JSON.stringify(rest);
    shapeOf.set(service, json);
  }
  return json;
}

const addAll = (target: Namespaces, namespaces: Iterable<string>): Namespaces =>
  target === 'all' ? 'all' : new Set([...target, ...namespaces]);

/** Changed objects of one kind: added, removed or edited, by namespace/name. */
function changedObjects<Spec>(before: ReadonlyArray<ConfigObject<Spec>>, after: ReadonlyArray<ConfigObject<Spec>>) {
  const key = (o: ConfigObject<Spec>) => `${o.namespace}/${o.name}`;
  const old = new Map(before.map((o) => [key(o), o]));
  const changed: Array<ConfigObject<Spec>> = [];
  for (const object of after) {
    const previous = old.get(key(object));
    old.delete(key(object));
    if (!previous || !same(previous, object)) changed.push(object, ...(previous ? [previous] : []));
  }
  changed.push(...old.values());
  return changed;
}

/**
 * Every change between two models (`before` undefined: everything is new). Models
 * are values: a change is a new object for what changed (the informers give new
 * objects); the same model object passed twice counts as everything changed.
 */
export function modelChange(before: MeshModel | undefined, after: MeshModel): ModelChange {
  const change: ModelChange = {
    everything: false,
    hosts: new Set(),
    hostPatterns: new Set(),
    endpointHosts: new Set(),
    outboundNamespaces: new Set(),
    inboundNamespaces: new Set(),
    selectorsChanged: false,
    peerAuthentication: false,
    authorization: false,
    services: new Set(),
    gateways: new Set(),
    gatewayRoutes: new Set(),
    destinationHosts: new Set(),
    destinationPatterns: new Set(),
  };
  if (
    !before ||
    // The same model object again was edited in place: nothing can be trusted to be unchanged.
    before === after ||
    before.clusterDomain !== after.clusterDomain ||
    before.rootNamespace !== after.rootNamespace ||
    before.trustDomain !== after.trustDomain ||
    !same(before.meshConfig ?? {}, after.meshConfig ?? {}) ||
    !same(before.jwks ?? {}, after.jwks ?? {})
  ) {
    return { ...change, everything: true, outboundNamespaces: 'all', inboundNamespaces: 'all', selectorsChanged: true };
  }
  const root = after.rootNamespace ?? 'istio-system';
  const domain = after.clusterDomain;
  const allHosts = () => new Set(after.services.map((s) => serviceHost(s, domain)));
  const hostsMatching = (pattern: string, patterns = change.hostPatterns) => {
    if (pattern !== '*' && !pattern.startsWith('*.')) return [pattern];
    patterns.add(pattern);
    return [...allHosts()].filter((h) => hostMatches(pattern, h));
  };

  // Services: shape (ports, selector, exportTo...) or endpoints alone.
  const oldServices = new Map(before.services.map((s) => [serviceKey(s), s]));
  for (const service of after.services) {
    const key = serviceKey(service);
    const previous = oldServices.get(key);
    oldServices.delete(key);
    if (previous === service) continue;
    const host = serviceHost(service, domain);
    if (!previous || shape(previous) !== shape(service)) {
      change.hosts.add(host);
      change.destinationHosts.add(host);
      change.services.add(key);
      change.inboundNamespaces = addAll(change.inboundNamespaces, [service.namespace]);
      if (!previous || JSON.stringify(previous.selector) !== JSON.stringify(service.selector)) change.selectorsChanged = true;
    } else if (!same(previous.endpoints, service.endpoints)) {
      change.endpointHosts.add(host);
      change.services.add(key);
    }
  }
  for (const [key, removed] of oldServices) {
    change.hosts.add(serviceHost(removed, domain));
    change.destinationHosts.add(serviceHost(removed, domain));
    change.services.add(key);
    change.inboundNamespaces = addAll(change.inboundNamespaces, [removed.namespace]);
    if (removed.selector) change.selectorsChanged = true;
  }

  const was: IstioConfig = before.istio ?? emptyIstioConfig();
  const is: IstioConfig = after.istio ?? emptyIstioConfig();
  for (const rule of changedObjects(was.virtualServices, is.virtualServices)) {
    // Its version before the change is in the list too: a rule moved between mesh and gateways touches both.
    if (bindsToMesh(rule))
      for (const host of rule.spec.hosts ?? [])
        for (const h of hostsMatching(resolveHost(host, rule.namespace, domain))) change.hosts.add(h);
    for (const gateway of boundGateways(rule)) if (gateway !== 'mesh') change.gatewayRoutes.add(gateway);
    const routes: Array<{ match?: Array<{ sourceLabels?: Record<string, string> }> }> = [
      ...(rule.spec.http ?? []),
      ...(rule.spec.tcp ?? []),
    ];
    if (routes.some((route) => (route.match ?? []).some((m) => Object.keys(m.sourceLabels ?? {}).length > 0)))
      change.selectorsChanged = true;
  }
  for (const rule of changedObjects(was.destinationRules, is.destinationRules)) {
    const host = resolveHost(rule.spec.host, rule.namespace, domain);
    for (const h of hostsMatching(host)) change.hosts.add(h);
    for (const h of hostsMatching(host, change.destinationPatterns)) change.destinationHosts.add(h);
    if (rule.spec.workloadSelector) change.selectorsChanged = true;
  }
  for (const gateway of changedObjects(was.gateways, is.gateways)) {
    change.gateways.add(`${gateway.namespace}/${gateway.name}`);
    // Which gateway proxies a Gateway selects is part of their group key.
    change.selectorsChanged = true;
  }
  for (const sidecar of changedObjects(was.sidecars, is.sidecars)) {
    change.outboundNamespaces = sidecar.namespace === root ? 'all' : addAll(change.outboundNamespaces, [sidecar.namespace]);
    change.selectorsChanged = true;
  }
  for (const telemetry of changedObjects(was.telemetries, is.telemetries)) {
    for (const side of ['outboundNamespaces', 'inboundNamespaces'] as const) {
      change[side] = telemetry.namespace === root ? 'all' : addAll(change[side], [telemetry.namespace]);
    }
    change.selectorsChanged = true;
  }
  for (const policy of changedObjects(was.peerAuthentications, is.peerAuthentications)) {
    change.peerAuthentication = true;
    change.inboundNamespaces = policy.namespace === root ? 'all' : addAll(change.inboundNamespaces, [policy.namespace]);
    // Auto mTLS to a service follows its servers' mode: its clusters change.
    for (const service of after.services)
      if (policy.namespace === root || service.namespace === policy.namespace) change.hosts.add(serviceHost(service, domain));
    change.selectorsChanged = true;
  }
  for (const kind of ['authorizationPolicies', 'requestAuthentications'] as const) {
    for (const policy of changedObjects<unknown>(was[kind], is[kind])) {
      if (kind === 'authorizationPolicies') change.authorization = true;
      change.inboundNamespaces = policy.namespace === root ? 'all' : addAll(change.inboundNamespaces, [policy.namespace]);
      change.selectorsChanged = true;
    }
  }
  return change;
}

/** Whether a namespace is among those a change names. */
export const includes = (namespaces: Namespaces, namespace: string) => namespaces === 'all' || namespaces.has(namespace);
