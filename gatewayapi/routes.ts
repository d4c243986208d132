// Gateway API routes to VirtualServices and their parents' status, after istiod's
// route_collections.go (HTTPRouteCollection, GRPCRouteCollection, TCPRouteCollection, TLSRouteCollection,
// mergeHTTPRoutes), conversion.go (extractParentReferenceInfo, referenceAllowed) and conditions.go
// (createRouteStatus). Pure.
//
// A route bound to a Gateway listener becomes VirtualServices with `gateways: [<ns>/<istio gateway>]`,
// one per route hostname; one bound to a Service (GAMMA) becomes a mesh VirtualService for the Service's
// host (`gateways: [mesh]`), its matches narrowed to the parentRef's port when given. HTTPRoutes and
// GRPCRoutes with the same key (gateway listener and host, or namespace, port and host for the mesh)
// are merged into one VirtualService named by the key, `/` written `~`, their rules ordered as the spec
// orders matches. Each carries `internal.istio.io/route-semantics: gateway`.
import { setConditions, type WantedCondition } from './conditions.js';
import { builtinGatewayClasses, type ListenerParent } from './gateways.js';
import {
  annotations,
  creationTime,
  kubernetesGatewayName,
  type ClusterView,
  type GeneratedObject,
  type IstioHttpRoute,
  type IstioTcpRoute,
  type IstioTlsRoute,
  type VirtualServiceSpec,
} from './gateway-api-input.js';
import { hostIntersection, hostsMatch, hostSubsetOf } from './host-match.js';
import {
  gatewayApiGroup,
  type GatewayApiObject,
  type ParentReference,
  type RouteKind,
  type RouteParentStatus,
  type RouteSpec,
} from './gateway-api-types.js';
import { grpcRule, httpRule, tcpRule, tlsRule, type ConfigError, type RouteContext, type RuleResult } from './route-rules.js';

type AnyRoute = GatewayApiObject<RouteSpec<never>, { parents?: RouteParentStatus[] }>;

/** A parentRef resolved against one listener (or the mesh), with why it is refused if it is. */
interface ResolvedParent {
  original: ParentReference;
  /** The VirtualService's gateway: `<ns>/<istio gateway>`, or `mesh`. */
  internalName: string;
  /** `<namespace>/<name>` of the Gateway, for attachedRoutes. */
  gateway?: string;
  sectionName?: string;
  /** The listener's hostname ('' for none or the mesh). */
  hostname: string;
  /** Other listeners' hostnames on the same port and protocol: a more exact one takes the route's hosts it matches. */
  banned: Set<string>;
  denied?: ConfigError;
}

const meshKinds = ['HTTPRoute', 'GRPCRoute', 'TCPRoute', 'TLSRoute'];

/** The parentRef as Istio prints it, `<group>/<kind>/<name>/<section>/<port>.<namespace>`: the status order key. */
export function parentRefString(ref: ParentReference, namespace: string): string {
  return `${ref.group ?? gatewayApiGroup}/${ref.kind ?? 'Gateway'}/${ref.name}/${ref.sectionName ?? ''}/${ref.port ?? 0}.${ref.namespace ?? namespace}`;
}

/** Each parentRef resolved against every listener of its Gateway, or the mesh for a Service (extractParentReferenceInfo). */
function resolveParents(
  route: AnyRoute,
  kind: RouteKind,
  listenersByGateway: ReadonlyMap<string, ReadonlyArray<ListenerParent>>,
  view: ClusterView,
): ResolvedParent[] {
  const namespace = route.metadata?.namespace as string;
  const hostnames = route.spec?.hostnames?.length ? route.spec.hostnames : ['*'];
  const resolved: ResolvedParent[] = [];
  for (const ref of route.spec?.parentRefs ?? []) {
    const group = ref.group ?? gatewayApiGroup;
    const refKind = ref.kind ?? 'Gateway';
    const refNamespace = ref.namespace ?? namespace;
    if (group === '' && refKind === 'Service') {
      const exists = view.services.some((s) => !s.hostname && s.name === ref.name && s.namespace === refNamespace);
      resolved.push({
        original: ref,
        internalName: 'mesh',
        hostname: '',
        banned: new Set(),
        ...(exists ? {} : { denied: { reason: 'NoMatchingParent', message: `parent service: "${ref.name}" not found` } }),
        ...(meshKinds.includes(kind) ? {} : { denied: { reason: 'NotAllowedByListeners', message: `kind ${kind} is not allowed` } }),
      });
      continue;
    }
    if (group === 'networking.istio.io' && refKind === 'ServiceEntry') {
      const exists = view.serviceEntries?.has(`${refNamespace}/${ref.name}`) ?? false;
      resolved.push({
        original: ref,
        internalName: 'mesh',
        hostname: '',
        banned: new Set(),
        ...(exists ? {} : { denied: { reason: 'NoMatchingParent', message: `parent service entry: "${ref.name}" not found` } }),
      });
      continue;
    }
    // Other kinds (ListenerSet, another implementation's) are not Weft's: no status, as Istio.
    if (group !== gatewayApiGroup || refKind !== 'Gateway') continue;
    const listeners = listenersByGateway.get(`${refNamespace}/${ref.name}`) ?? [];
    for (const listener of listeners) {
      const banned = new Set(
        listeners
          .filter((other) => other !== listener && other.port === listener.port && other.protocol === listener.protocol)
          .map((other) => other.hostname),
      );
      banned.delete(listener.hostname);
      resolved.push({
        original: ref,
        internalName: listener.internalName,
        gateway: listener.gateway,
        sectionName: listener.sectionName,
        hostname: listener.hostname,
        banned,
        ...denial(ref, listener, kind, hostnames, namespace),
      });
    }
  }
  return resolved.sort((a, b) => parentRefString(a.original, namespace).localeCompare(parentRefString(b.original, namespace)));
}

/** Why a listener refuses the route (referenceAllowed): port, sectionName, hostnames and namespaces, kinds. */
function denial(
  ref: ParentReference,
  listener: ListenerParent,
  kind: RouteKind,
  hostnames: string[],
  namespace: string,
): { denied?: ConfigError } {
  if (ref.port !== undefined && ref.port !== listener.port)
    return { denied: { reason: 'NoMatchingParent', message: `port ${ref.port} not found` } };
  if (ref.sectionName && ref.sectionName !== listener.sectionName)
    return { denied: { reason: 'NoMatchingParent', message: `sectionName "${ref.sectionName}" not found` } };
  if (listener.hosts.length > 0) {
    let matched = false;
    let hostMatched = false;
    for (const routeHost of hostnames) {
      for (const entry of listener.hosts) {
        const slash = entry.indexOf('/');
        const [parentNamespace, parentHost] = slash >= 0 ? [entry.slice(0, slash), entry.slice(slash + 1)] : ['*', entry];
        const hostMatch = hostsMatch(parentHost, routeHost);
        hostMatched ||= hostMatch;
        if (hostMatch && (parentNamespace === '*' || parentNamespace === namespace)) matched = true;
      }
    }
    if (!matched) {
      if (hostMatched)
        return {
          denied: {
            reason: 'NotAllowedByListeners',
            message: `hostnames matched parent hostname "${listener.hostname}", but namespace "${namespace}" is not allowed by the parent`,
          },
        };
      return { denied: { reason: 'NoMatchingListenerHostname', message: `no hostnames matched parent hostname "${listener.hostname}"` } };
    }
  }
  if (!listener.allowedKinds.some((k) => k.kind === kind && (k.group ?? gatewayApiGroup) === gatewayApiGroup))
    return { denied: { reason: 'NotAllowedByListeners', message: `kind ${gatewayApiGroup}/v1/${kind} is not allowed` } };
  return {};
}

/** Whether a listener with a wildcard hostname keeps this route host (a more exact listener on its port takes it). */
function allowedByIsolation(parent: ResolvedParent, routeHost: string): boolean {
  const ours = parent.hostname;
  if (ours.length > 0 && !ours.startsWith('*')) return true;
  if (ours.length > 0 && !hostsMatch(routeHost, ours)) return false;
  for (const other of parent.banned) {
    if (ours.length > other.length) continue;
    if (hostSubsetOf(routeHost, other)) return false;
  }
  return true;
}

interface Conversion<R> {
  routes: R[];
  error?: ConfigError;
}

/** Every rule of the route, converted for gateway or mesh parents; a hard error drops all of them. */
function convertRules<R>(rules: Array<() => RuleResult<R>>): Conversion<R> {
  const result: Conversion<R> = { routes: [] };
  for (const rule of rules) {
    const { route, error } = rule();
    if (!route) return { routes: [], ...(error ? { error } : {}) };
    if (error) result.error = error;
    result.routes.push(route);
  }
  return result;
}

/** One route's output: VirtualServices (before merging), attachments to Gateway listeners, and its status. */
export interface ConvertedRoute {
  virtualServices: Array<{ key?: string; object: GeneratedObject<VirtualServiceSpec> }>;
  /** `<namespace>/<gateway>` and listener name, per accepted Gateway parent. */
  attachments: Array<{ gateway: string; listener: string }>;
  status: { parents: RouteParentStatus[] };
}

/**
 * One HTTPRoute, GRPCRoute, TCPRoute or TLSRoute of namespace/name as VirtualServices and its status.
 * `controllerOf` names the controller that reports on a parent: a Gateway's class's, or Weft's for the
 * mesh; `now` is the RFC 3339 time of any transition.
 */
export function convertRoute(
  route: AnyRoute,
  kind: RouteKind,
  listenersByGateway: ReadonlyMap<string, ReadonlyArray<ListenerParent>>,
  view: ClusterView,
  controllerOf: (gateway: string | undefined) => string,
  now: string,
): ConvertedRoute {
  const namespace = route.metadata?.namespace as string;
  const name = route.metadata?.name as string;
  const parents = resolveParents(route, kind, listenersByGateway, view);
  const accepted = parents
    .filter((p) => !p.denied)
    .sort((a, b) => (a.internalName < b.internalName ? -1 : a.internalName > b.internalName ? 1 : 0));
  const needMesh = parents.some((p) => p.internalName === 'mesh');
  const needGateway = parents.some((p) => p.internalName !== 'mesh');
  const context = (mesh: boolean): RouteContext => ({ view, kind, namespace, name, enforceRefGrant: !mesh });
  const rules = route.spec?.rules ?? [];
  const hostnames = route.spec?.hostnames;

  // Rules, once per kind of parent (mesh parents do not enforce ReferenceGrants).
  const convert = (mesh: boolean): Conversion<unknown> => {
    const ctx = context(mesh);
    if (kind === 'HTTPRoute' || kind === 'GRPCRoute') {
      const perMatch: Array<() => RuleResult<IstioHttpRoute>> = [];
      rules.forEach((rule, position) => {
        const matches: Array<unknown> = rule.matches && rule.matches.length > 0 ? rule.matches : [undefined];
        for (const match of matches) {
          const single = { ...rule, ...(match !== undefined ? { matches: [match] } : {}) } as never;
          perMatch.push(() => (kind === 'HTTPRoute' ? httpRule(ctx, single, position) : grpcRule(ctx, single, position)));
        }
      });
      return convertRules(perMatch);
    }
    if (kind === 'TCPRoute') return convertRules(rules.map((rule) => () => tcpRule(ctx, rule)));
    return convertRules(rules.map((rule) => () => tlsRule(ctx, rule, hostnames)));
  };
  const meshResult = needMesh ? convert(true) : { routes: [] };
  const gatewayResult = needGateway ? convert(false) : { routes: [] };

  const annotationsOf = () => ({ [annotations.parents]: `${kind}/${name}.${namespace}`, [annotations.routeSemantics]: 'gateway' });
  const created = creationTime(route.metadata?.creationTimestamp);
  const virtualServices: ConvertedRoute['virtualServices'] = [];
  let count = 0;
  for (const parent of accepted) {
    const mesh = parent.internalName === 'mesh';
    const serviceHost = () => {
      const refNamespace = parent.original.namespace ?? namespace;
      if ((parent.original.kind ?? 'Gateway') === 'ServiceEntry')
        return view.serviceEntries?.get(`${refNamespace}/${parent.original.name}`) ?? [];
      return [`${parent.original.name}.${refNamespace}.svc.${view.domainSuffix}`];
    };
    const port = parent.original.port;
    if (kind === 'HTTPRoute' || kind === 'GRPCRoute') {
      let routes = (mesh ? meshResult.routes : gatewayResult.routes) as IstioHttpRoute[];
      let hosts = hostnames?.length ? [...hostnames] : ['*'];
      let key = parent.internalName;
      if (mesh) {
        key = namespace;
        if (port !== undefined) {
          routes = routes.map((r) => ({ ...r, match: r.match?.length ? r.match.map((m) => ({ ...m, port })) : [{ port }] }));
          key += `/${port}`;
        }
        hosts = serviceHost();
      }
      if (routes.length === 0) continue;
      for (const host of hosts) {
        if (!allowedByIsolation(parent, host)) continue;
        virtualServices.push({
          key: `${key}/${host}`,
          object: {
            kind: 'VirtualService',
            name: `${name}~${count}~${kubernetesGatewayName}`,
            namespace,
            ...(created ? { creationTimestamp: created } : {}),
            annotations: annotationsOf(),
            spec: { hosts: [host], gateways: [parent.internalName], http: sortHttpRoutes(structuredClone(routes)) },
          },
        });
        count++;
      }
    } else if (kind === 'TCPRoute') {
      let routes = (mesh ? meshResult.routes : gatewayResult.routes) as IstioTcpRoute[];
      if (mesh && port !== undefined)
        routes = routes.map((r) => ({ ...r, match: r.match?.length ? r.match.map((m) => ({ ...m, port })) : [{ port }] }));
      for (const host of mesh ? serviceHost() : ['*']) {
        virtualServices.push({
          object: {
            kind: 'VirtualService',
            name: `${name}~tcp~${count}~${kubernetesGatewayName}`,
            namespace,
            ...(created ? { creationTimestamp: created } : {}),
            annotations: annotationsOf(),
            spec: { hosts: [host], gateways: [parent.internalName], tcp: routes },
          },
        });
        count++;
      }
    } else {
      let routes = (mesh ? meshResult.routes : gatewayResult.routes) as IstioTlsRoute[];
      let hosts = hostnames?.length ? [...hostnames] : ['*'];
      if (mesh) {
        hosts = serviceHost();
        routes = routes.map((r) => {
          const match = (r.match ?? []).map((m) => ({ ...m }));
          // Without route hostnames the mesh route matches the Service's own hosts by SNI.
          if (match.length === 1 && match[0]?.sniHosts.length === 1 && match[0].sniHosts[0] === '*') match[0].sniHosts = hosts;
          return { ...r, match: match.map((m) => (port !== undefined ? { ...m, port } : m)) } as IstioTlsRoute;
        });
      } else if (parent.hostname) {
        hosts = hostIntersection(hosts, [parent.hostname]);
        routes = routes.flatMap((r) => {
          const match = (r.match ?? []).map((m) => ({ ...m, sniHosts: hostIntersection(m.sniHosts, [parent.hostname]) }));
          return match.some((m) => m.sniHosts.length > 0) || match.length === 0 ? [{ ...r, match } as IstioTlsRoute] : [];
        });
      }
      for (const host of hosts) {
        const forHost = mesh
          ? routes.map((r) =>
              r.match?.length === 1 && (r.match[0]?.sniHosts.length ?? 0) > 1
                ? ({
                    ...r,
                    match: [{ ...r.match[0], sniHosts: (r.match[0]?.sniHosts ?? []).filter((h) => hostsMatch(host, h)) }],
                  } as IstioTlsRoute)
                : r,
            )
          : routes;
        virtualServices.push({
          object: {
            kind: 'VirtualService',
            name: `${name}~tls~${count}~${kubernetesGatewayName}`,
            namespace,
            ...(created ? { creationTimestamp: created } : {}),
            annotations: annotationsOf(),
            spec: { hosts: [host], gateways: [parent.internalName], tls: forHost },
          },
        });
        count++;
      }
    }
  }

  const attachments = accepted.filter((p) => p.gateway).map((p) => ({ gateway: p.gateway as string, listener: p.sectionName as string }));
  const status = routeStatus(route, parents, meshResult.error, gatewayResult.error, controllerOf, now);
  return { virtualServices, attachments, status };
}

/** Istio's rank of a parent's refusal: a parent accepted by one listener is accepted; else the mildest refusal is reported. */
function rank(parent: ResolvedParent): number {
  switch (parent.denied?.reason) {
    case undefined:
      return 0;
    case 'NotAllowedByListeners':
      return 1;
    case 'NoMatchingListenerHostname':
      return 2;
    case 'ParentRefConflict':
      return 3;
    default:
      return 4;
  }
}

/** status.parents (createRouteStatus): one entry per parentRef, Accepted and ResolvedRefs; other controllers' entries kept. */
function routeStatus(
  route: AnyRoute,
  parents: ResolvedParent[],
  meshError: ConfigError | undefined,
  gatewayError: ConfigError | undefined,
  controllerOf: (gateway: string | undefined) => string,
  now: string,
): { parents: RouteParentStatus[] } {
  const namespace = route.metadata?.namespace as string;
  const generation = route.metadata?.generation;
  const byRef = new Map<string, ResolvedParent[]>();
  for (const parent of parents) {
    const key = parentRefString(parent.original, namespace);
    byRef.set(key, [...(byRef.get(key) ?? []), parent]);
  }
  const existing = route.status?.parents ?? [];
  const result = [...existing];
  const reported = new Set<string>();
  const appended: RouteParentStatus[] = [];
  for (const [key, results] of byRef) {
    let chosen = { ...(results[0] as ResolvedParent) };
    let best = rank(chosen);
    const successes = results.filter((r) => !r.denied).length;
    for (const other of results.slice(1)) {
      const r = rank(other);
      if (r < best) {
        best = r;
        chosen = { ...other };
      } else if (r === best && other.denied) {
        chosen.denied = chosen.denied ? { ...chosen.denied, message: `${chosen.denied.message}; ${other.denied.message}` } : other.denied;
      }
    }
    const routeError = chosen.internalName === 'mesh' ? meshError : gatewayError;
    const wanted: Record<string, WantedCondition> = {
      Accepted: { reason: 'Accepted', message: successes > 1 ? `Route was valid, bound to ${successes} parents` : 'Route was valid' },
      ResolvedRefs: { reason: 'ResolvedRefs', message: 'All references resolved' },
    };
    if (routeError) (wanted['ResolvedRefs'] as WantedCondition).error = routeError;
    if (chosen.denied) (wanted['Accepted'] as WantedCondition).error = chosen.denied;
    const controller = controllerOf(chosen.gateway);
    const index = result.findIndex((p) => p.controllerName === controller && parentRefString(p.parentRef, namespace) === key);
    const entry: RouteParentStatus = {
      parentRef: chosen.original,
      controllerName: controller,
      conditions: setConditions(index >= 0 ? result[index]?.conditions : undefined, wanted, generation, now),
    };
    reported.add(`${controller} ${key}`);
    if (index >= 0) result[index] = entry;
    else appended.push(entry);
  }
  appended.sort((a, b) => -parentRefString(a.parentRef, namespace).localeCompare(parentRefString(b.parentRef, namespace)));
  // Entries Weft wrote for parentRefs the route no longer has (or that no longer resolve) go.
  const ours = new Set([...Object.values(builtinGatewayClasses), controllerOf(undefined)]);
  const kept = result.filter(
    (p) => !ours.has(p.controllerName) || reported.has(`${p.controllerName} ${parentRefString(p.parentRef, namespace)}`),
  );
  return { parents: [...kept, ...appended] };
}

const uriRank = (m: NonNullable<IstioHttpRoute['match']>[number] | undefined) => {
  const uri = m?.uri as { exact?: string; prefix?: string; regex?: string } | undefined;
  if (uri?.exact !== undefined) return [3, uri.exact.length];
  if (uri?.prefix !== undefined) return [2, uri.prefix.length];
  if (uri?.regex !== undefined) return [1, uri.regex.length];
  return [-1, 0];
};

/** The spec's match precedence (sortHTTPRoutes): exact > prefix > regex, longer paths, method, more headers, more query params; no match last. */
export function sortHttpRoutes(routes: IstioHttpRoute[]): IstioHttpRoute[] {
  const keyed = routes.map((route, index) => ({ route, index }));
  keyed.sort((a, b) => {
    const am = a.route.match?.[0];
    const bm = b.route.match?.[0];
    if (!a.route.match?.length) return b.route.match?.length ? 1 : a.index - b.index;
    if (!b.route.match?.length) return -1;
    const [ar, al] = uriRank(am) as [number, number];
    const [br, bl] = uriRank(bm) as [number, number];
    if (ar !== br) return br - ar;
    if (al !== bl) return bl - al;
    if (!!am?.method !== !!bm?.method) return am?.method ? -1 : 1;
    const ah = Object.keys(am?.headers ?? {}).length;
    const bh = Object.keys(bm?.headers ?? {}).length;
    if (ah !== bh) return bh - ah;
    const aq = Object.keys(am?.queryParams ?? {}).length;
    const bq = Object.keys(bm?.queryParams ?? {}).length;
    if (aq !== bq) return bq - aq;
    return a.index - b.index;
  });
  return keyed.map((k) => k.route);
}
