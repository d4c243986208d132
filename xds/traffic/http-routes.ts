// VirtualService HTTP routes as Envoy Route entries for one host and port, in
// Istio's order and semantics: routes are tried in order, a route's match
// blocks are OR-ed and each block's conditions AND-ed; a route without matches
// catches everything. Proxyless gRPC gets what gRPC's xDS client implements
// (matching, weights, timeouts, retries, faults, hashing); Envoy gets all of it.
import { protoDuration } from '../../lib/duration.js';
import type { ConfigObject, HttpDestination, HttpMatch, HttpRoute, VirtualServiceSpec } from '../model/istio-config.js';
import { any } from '../protos.js';
import { effectivePolicy, hashPolicies } from './cluster-policy.js';
import { labelsMatch, resolveHost } from './host-names.js';
import type { ProxyKind } from './proxy-scope.js';
import { usesGatewaySemantics, type ProxyView } from './proxy-view.js';

export const outboundClusterName = (port: number, host: string, subset = '') => `outbound|${port}|${subset}|${host}`;

/**
 * The cluster of a destination with no host: a Gateway API backendRef that is not usable (not found,
 * not permitted by a ReferenceGrant, an unsupported kind) is converted to an empty destination, which
 * istiod's GetDestinationCluster (route.go) names `UnknownService`, a cluster no proxy has.
 */
export const unknownServiceCluster = 'UnknownService';

const faultType = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const previousHostsType = 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';
const previousPrioritiesType = 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';
export const faultFilterName = 'envoy.filters.http.fault';

/**
 * Istio's retryOn when a route has no `retries`, or `retries` without `retryOn`
 * (pilot/pkg/networking/core/route/retry/retry.go defaultRetryOn). It names
 * `retriable-status-codes` but lists no code, so no HTTP status (503 included) is retried:
 * only connection failures, refused streams and gRPC UNAVAILABLE / CANCELLED.
 */
const defaultRetryOn = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

type Route = Record<string, unknown>;

interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface RouteTarget {
  view: ProxyView;
  hostname: string;
  port: number;
  /**
   * A gateway's routes: the Gateways (`<namespace>/<name>`) the routes are built for. A match
   * block naming `gateways` then applies when it names one of them (Istio's
   * BuildHTTPRoutesForVirtualService with the gateway's name); unset, it applies when it names `mesh`.
   */
  gateways?: ReadonlySet<string>;
  /** A gateway's routes for a server with `tls` (Istio's RouteOptions.IsTLS): a redirect's scheme defaults to https. */
  tls?: boolean;
}

/**
 * The routes of a virtual host: the VirtualService's, else one default route to the
 * service, as Istio's BuildDefaultHTTPOutboundRoute (pilot/pkg/networking/core/route/route.go)
 * builds it for either kind of proxy: no timeout, the default retry policy (its
 * previous-hosts predicate kept even with a consistent hash), the DestinationRule's hash
 * policy, and `<host>:<port>/*` as the tracing operation.
 */
export function httpRoutes(target: RouteTarget): Route[] {
  const rule = target.view.virtualServiceFor(target.hostname);
  const routes = rule ? virtualServiceRoutes(rule, target) : [];
  if (routes.length > 0) return routes;
  const cluster = outboundClusterName(target.port, target.hostname);
  return [
    {
      name: 'default',
      match: { prefix: '/' },
      route: {
        cluster,
        ...timeoutFields(undefined, 'sidecar'),
        retry_policy: retryPolicy(undefined, false),
        ...hashFields(target, [{ host: target.hostname, port: target.port }]),
      },
      decorator: { operation: `${target.hostname}:${target.port}/*` },
    },
  ];
}

/**
 * One VirtualService's HTTP routes for a target host and port, in order; a gateway's
 * virtual hosts take them directly (a gateway merges every bound VirtualService of a host,
 * with no default route). Shape: Envoy `Route` objects.
 */
export function virtualServiceRoutes(rule: ConfigObject<VirtualServiceSpec>, target: RouteTarget): Route[] {
  const { view } = target;
  const kind = view.scope.kind;
  const gatewaySemantics = usesGatewaySemantics(rule);
  const routes: Route[] = [];
  for (const http of rule.spec.http ?? []) {
    // Left out, and reported on the VirtualService's status (WEFT0005, traffic/unapplied-config.ts): a
    // delegating rule (Weft does not follow delegation; with no destination it would be an empty split,
    // which Envoy and gRPC refuse), and for proxyless gRPC a redirect or direct response, an action
    // grpc-js-xds refuses, losing the host's whole route configuration.
    if (http.delegate || (kind === 'grpc' && (http.redirect || http.directResponse))) continue;
    const matches = applicableMatches(http, target, rule);
    if (matches === undefined) continue;
    for (const match of matches) {
      const translated = routeMatch(match, gatewaySemantics);
      // The action depends on the match only for a gateway-semantics prefix rewrite (it strips the matched prefix).
      const action = routeAction(rule, http, target, translated);
      routes.push({
        // Istio's route name: the HTTP route's name, dotted with the match's (route.go TranslateRoute).
        name: `${http.name ?? ''}${match?.name ? `.${match.name}` : ''}`,
        match: kind === 'grpc' ? grpcPathMatch(translated) : translated,
        ...action,
        decorator: { operation: routeOperation(translated, action, rule.name, target.port) },
        ...(http.fault ? { typed_per_filter_config: { [faultFilterName]: any(faultType, httpFault(http.fault)) } } : {}),
        ...(kind !== 'grpc' ? headerOperations([http.headers, singleDestinationHeaders(http)]) : {}),
      });
    }
  }
  return routes;
}

/**
 * The match blocks that apply to this proxy and port (sourceLabels, sourceNamespace,
 * gateways and port are decided here, not by the proxy); undefined when none does.
 */
function applicableMatches(
  http: HttpRoute,
  target: RouteTarget,
  rule: ConfigObject<VirtualServiceSpec>,
): Array<HttpMatch | undefined> | undefined {
  if (!http.match || http.match.length === 0) return [undefined];
  const { scope } = target.view;
  const applicable = http.match.filter(
    (match) =>
      (match.port === undefined || match.port === target.port) &&
      (!match.sourceLabels || labelsMatch(match.sourceLabels as Record<string, string>, scope.labels)) &&
      (!match.sourceNamespace || match.sourceNamespace === scope.namespace) &&
      gatewaysMatch(match.gateways, rule, target),
  );
  return applicable.length > 0 ? applicable : undefined;
}

/**
 * Whether a match block's `gateways` let it apply: none named, or `mesh` for a sidecar's routes,
 * or (for a gateway's routes) one of the target's gateways, short names read in the
 * VirtualService's namespace as Istio resolves them (model.resolveGatewayName).
 */
function gatewaysMatch(gateways: ReadonlyArray<string> | undefined, rule: ConfigObject<VirtualServiceSpec>, target: RouteTarget): boolean {
  if (!gateways || gateways.length === 0) return true;
  if (!target.gateways) return gateways.includes('mesh');
  return gateways.some((name) => name !== 'mesh' && target.gateways?.has(resolveGatewayName(name, rule.namespace)));
}

/**
 * A `gateways` entry as `<namespace>/<name>`, as Istio's resolveGatewayName (pilot/pkg/model/config.go):
 * a short name is in the VirtualService's namespace, `./name` too, the legacy `name.ns[.svc...]` is `ns/name`;
 * `mesh` stays `mesh`.
 */
export function resolveGatewayName(name: string, namespace: string): string {
  if (name === 'mesh') return name;
  const slash = name.indexOf('/');
  if (slash >= 0) return name.slice(0, slash) === '.' ? `${namespace}/${name.slice(slash + 1)}` : name;
  const dot = name.indexOf('.');
  if (dot < 0) return `${namespace}/${name}`;
  const rest = name.slice(dot + 1);
  const next = rest.indexOf('.');
  return `${next < 0 ? rest : rest.slice(0, next)}/${name.slice(0, dot)}`;
}

function stringMatcher(match: StringMatch, ignoreCase = false): Record<string, unknown> {
  const caseFields = ignoreCase ? { ignore_case: true } : {};
  if (match.exact !== undefined) return { exact: match.exact, ...caseFields };
  if (match.prefix !== undefined) return { prefix: match.prefix, ...caseFields };
  if (match.regex !== undefined) return { safe_regex: { regex: match.regex } };
  return {};
}

function headerMatcher(name: string, match: StringMatch, invert = false): Record<string, unknown> {
  const specified = match.exact !== undefined || match.prefix !== undefined || match.regex !== undefined;
  // An empty match (`{}`) means "the header is present", as in Istio.
  return {
    name,
    ...(specified ? { string_match: stringMatcher(match) } : { present_match: true }),
    ...(invert ? { invert_match: true } : {}),
  };
}

/**
 * The tracing operation of a route (route.go GetRouteOperation): `<host>:<port><path>` of
 * its one cluster, else `<VirtualService name>:<listener port><path>`, where the path is
 * the prefix and `*`, the exact path, or the regex.
 */
function routeOperation(match: Record<string, unknown>, action: Route, virtualService: string, port: number): string {
  const regex = (match['safe_regex'] as { regex?: string } | undefined)?.regex;
  const path =
    match['prefix'] !== undefined ? `${String(match['prefix'])}*` : match['path'] !== undefined ? String(match['path']) : (regex ?? '/*');
  const cluster = (action['route'] as { cluster?: string } | undefined)?.cluster;
  const parts = cluster?.split('|');
  if (parts && parts.length === 4 && parts[0] === 'outbound') return `${parts[3]}:${parts[1]}${path}`;
  return `${virtualService}:${port}${path}`;
}

/**
 * An HTTP match block as an Envoy RouteMatch, as istiod's TranslateRouteMatch (route.go). With
 * `gatewaySemantics` (a VirtualService converted from the Gateway API, usesGatewaySemantics) a URI
 * prefix other than `/` is path-separated, as the Gateway API's PathPrefix is: `path_separated_prefix`
 * with one trailing `/` trimmed, so `/get` matches `/get` and `/get/x` but not `/getaway`.
 */
export function routeMatch(match: HttpMatch | undefined, gatewaySemantics = false): Record<string, unknown> {
  if (!match) return { prefix: '/' };
  const result: Record<string, unknown> = {};
  const uri = match.uri as StringMatch | undefined;
  if (uri?.exact !== undefined) result['path'] = uri.exact;
  else if (uri?.regex !== undefined) result['safe_regex'] = { regex: uri.regex };
  else if (gatewaySemantics && uri?.prefix !== undefined && uri.prefix !== '/')
    result['path_separated_prefix'] = uri.prefix.endsWith('/') ? uri.prefix.slice(0, -1) : uri.prefix;
  else result['prefix'] = uri?.prefix ?? '/';
  if (match.ignoreUriCase) result['case_sensitive'] = { value: false };

  const headers: Array<Record<string, unknown>> = [];
  const pseudo: Array<[string, StringMatch | undefined]> = [
    [':method', match.method as StringMatch | undefined],
    [':authority', match.authority as StringMatch | undefined],
    [':scheme', match.scheme as StringMatch | undefined],
  ];
  for (const [name, value] of pseudo) if (value) headers.push(headerMatcher(name, value));
  for (const [name, value] of Object.entries((match.headers ?? {}) as Record<string, StringMatch>)) {
    headers.push(headerMatcher(name.toLowerCase(), value));
  }
  for (const [name, value] of Object.entries((match.withoutHeaders ?? {}) as Record<string, StringMatch>)) {
    headers.push(headerMatcher(name.toLowerCase(), value, true));
  }
  if (headers.length > 0) result['headers'] = headers;

  const queryParams = Object.entries((match.queryParams ?? {}) as Record<string, StringMatch>);
  if (queryParams.length > 0) {
    result['query_parameters'] = queryParams.map(([name, value]) => {
      const specified = value.exact !== undefined || value.prefix !== undefined || value.regex !== undefined;
      return specified ? { name, string_match: stringMatcher(value) } : { name, present_match: true };
    });
  }
  return result;
}

/**
 * A RouteMatch as proxyless gRPC takes it: grpc-js-xds (gRFC A28) knows only `prefix`, `path` and
 * `safe_regex` and refuses the whole RouteConfiguration for any other path specifier, so a
 * `path_separated_prefix` P becomes the regex `P(/.*)?` (gRPC anchors it: the path is P or starts
 * with `P/`), the same requests. istiod sends `path_separated_prefix` itself, which gRPC clients NACK.
 */
function grpcPathMatch(match: Record<string, unknown>): Record<string, unknown> {
  const prefix = match['path_separated_prefix'];
  if (typeof prefix !== 'string') return match;
  const { path_separated_prefix: _separated, ...rest } = match;
  return { safe_regex: { regex: `${quoteMeta(prefix)}(/.*)?` }, ...rest };
}

/** A literal for RE2, as Go's regexp.QuoteMeta (which istiod uses) escapes it. */
const quoteMeta = (literal: string) => literal.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');

interface ResolvedDestination {
  host: string;
  /** Its cluster: `outbound|<port>|<subset>|<host>`, or `UnknownService` for an empty host. */
  cluster: string;
  port: number;
  subset?: string;
  weight: number;
  headers?: HttpDestination['headers'];
}

type TcpRoute = NonNullable<VirtualServiceSpec['tcp']>[number];

/** A VirtualService `tcp` route chosen for a TCP listener: the rule (it names weighted stats) and its destinations. */
export interface TcpRouting {
  rule: ConfigObject<VirtualServiceSpec>;
  /** Each destination with its cluster and weight (as written; relative). */
  destinations: Array<{ host: string; cluster: string; weight: number }>;
}

/**
 * The `tcp` route of the host's VirtualService that applies to this proxy and port:
 * the first whose match (port, sourceLabels, sourceNamespace, gateways `mesh`) holds,
 * as Istio's buildSidecarOutboundTCPTLSFilterChainOpts (listener.go). Undefined when
 * none does, and the service's own cluster takes the connection. `destinationSubnets`
 * matches are not decided per address: such a rule applies to every address.
 */
export function tcpRouting(target: RouteTarget): TcpRouting | undefined {
  const rule = target.view.virtualServiceFor(target.hostname);
  if (!rule) return undefined;
  const { scope } = target.view;
  const applies = (route: TcpRoute) =>
    !route.match ||
    route.match.length === 0 ||
    route.match.some(
      (match) =>
        (match.port === undefined || match.port === target.port) &&
        (!match.sourceLabels || labelsMatch(match.sourceLabels as Record<string, string>, scope.labels)) &&
        (!match.sourceNamespace || match.sourceNamespace === scope.namespace) &&
        gatewaysMatch(match.gateways, rule, target),
    );
  const route = (rule.spec.tcp ?? []).find(applies);
  if (!route?.route || route.route.length === 0) return undefined;
  const destinations = route.route.map((d) => resolveDestination(rule, { destination: d.destination, weight: d.weight }, target));
  return {
    rule,
    destinations: destinations.map((d) => ({ host: d.host, cluster: d.cluster, weight: d.weight })),
  };
}

/** A destination's cluster: its port is the given one, else the service's only port, else the listener's. */
function resolveDestination(
  rule: ConfigObject<VirtualServiceSpec>,
  destination: HttpDestination,
  target: RouteTarget,
): ResolvedDestination {
  const written = destination.destination.host ?? '';
  const host = written === '' ? '' : resolveHost(written, rule.namespace, target.view.model.clusterDomain);
  const ports = host === '' ? [] : (target.view.service(host)?.service.ports ?? []);
  const port = destination.destination.port?.number ?? (ports.length === 1 ? (ports[0]?.port ?? target.port) : target.port);
  const subset = destination.destination.subset;
  return {
    host,
    cluster: host === '' ? unknownServiceCluster : outboundClusterName(port, host, subset),
    port,
    ...(destination.destination.subset ? { subset: destination.destination.subset } : {}),
    weight: destination.weight ?? 0,
    ...(destination.headers ? { headers: destination.headers } : {}),
  };
}

/**
 * A route's action: a redirect, a direct response, or a route to clusters (istiod's applyHTTPRouteDestination).
 * For a gateway-semantics VirtualService (usesGatewaySemantics) a missing cluster answers 500, as the
 * Gateway API asks for invalid backends, and a rewrite of the URI to `/` strips the matched path-separated
 * prefix (`/api/x` to `/x`, `/api` to `/`) with a regex rewrite rather than replacing it.
 */
function routeAction(rule: ConfigObject<VirtualServiceSpec>, http: HttpRoute, target: RouteTarget, match: Record<string, unknown>): Route {
  const kind = target.view.scope.kind;
  const gatewaySemantics = usesGatewaySemantics(rule);
  if (http.redirect) return { redirect: redirectAction(http.redirect, target) };
  if (http.directResponse && kind !== 'grpc') {
    const body = http.directResponse.body as { string?: string; bytes?: string } | undefined;
    return {
      direct_response: {
        status: http.directResponse.status,
        ...(body?.string !== undefined ? { body: { inline_string: body.string } } : {}),
        ...(body?.bytes !== undefined ? { body: { inline_bytes: body.bytes } } : {}),
      },
    };
  }
  const destinations = (http.route ?? []).map((d) => resolveDestination(rule, d, target));
  // As Istio's applyHTTPRouteDestination (route.go): one destination is the route's cluster,
  // whatever its weight; with more, the zero-weight ones are dropped and the rest go to
  // weighted_clusters with their weights as written. Weights are relative (Istio 1.15+:
  // 60/60 splits evenly), so no total_weight is set: Envoy and gRPC divide by their sum.
  const weighted = destinations.length === 1 ? destinations : destinations.filter((d) => d.weight > 0);
  const action: Record<string, unknown> = {};
  if (destinations.length === 1) {
    action['cluster'] = (destinations[0] as ResolvedDestination).cluster;
  } else {
    action['weighted_clusters'] = {
      clusters: weighted.map((d) => ({
        name: d.cluster,
        weight: { value: d.weight },
        ...(kind !== 'grpc' ? headerOperations([d.headers]) : {}),
      })),
    };
  }
  Object.assign(action, timeoutFields(http.timeout, kind));
  // Envoy's default for a cluster it does not have is 503; the Gateway API asks for 500 (route.go).
  if (gatewaySemantics) action['cluster_not_found_response_code'] = 'INTERNAL_SERVER_ERROR';
  const hash = hashFields(target, weighted);
  // Retrying on another host would defeat a consistent hash: Istio drops the predicate for one hashed destination.
  const retries = retryPolicy(http.retries, destinations.length === 1 && hash['hash_policy'] !== undefined);
  if (retries) action['retry_policy'] = retries;
  Object.assign(action, hash);
  if (kind !== 'grpc') {
    const regexRewrite = http.rewrite?.uriRegexRewrite as { match?: string; rewrite?: string } | undefined;
    if (gatewaySemantics && http.rewrite?.uri === '/' && regexRewrite?.match === undefined) {
      // ReplacePrefixMatch `/`: remove the prefix, keeping a `/` when the whole path was the prefix.
      const prefix = typeof match['path_separated_prefix'] === 'string' ? match['path_separated_prefix'] : '';
      action['regex_rewrite'] = { pattern: { regex: `^${quoteMeta(prefix)}(/?)(.*)` }, substitution: '/\\2' };
    } else if (http.rewrite?.uri !== undefined) action['prefix_rewrite'] = http.rewrite.uri;
    if (regexRewrite?.match !== undefined) {
      action['regex_rewrite'] = { pattern: { regex: regexRewrite.match }, substitution: regexRewrite.rewrite ?? '' };
    }
    if (http.rewrite?.authority) action['host_rewrite_literal'] = http.rewrite.authority;
    const mirrors = mirrorPolicies(rule, http, target);
    if (mirrors.length > 0) action['request_mirror_policies'] = mirrors;
  }
  return { route: action };
}

/**
 * A route's timeouts, as Istio's setTimeout (route.go): `timeout` is the VirtualService's,
 * unset meaning none (0). Envoy sidecars get the same value as `max_grpc_timeout` (the
 * grpc-timeout header is honoured up to it, 0 meaning unbounded); proxyless gRPC reads
 * `max_stream_duration` instead (gRFC A31). Istio's default route (no VirtualService) takes
 * the sidecar form for both kinds.
 */
function timeoutFields(timeout: string | undefined, kind: ProxyKind): Record<string, unknown> {
  const duration = timeout ? protoDuration(timeout) : { seconds: 0 };
  return kind === 'grpc'
    ? { timeout: duration, max_stream_duration: { max_stream_duration: duration } }
    : { timeout: duration, max_grpc_timeout: duration };
}

/** The hash policies of the destinations' DestinationRules, one after another, as Istio appends them (route.go). */
function hashFields(target: RouteTarget, destinations: ReadonlyArray<{ host: string; port: number; subset?: string }>): Route {
  const policies = destinations.flatMap((destination) => {
    const rule = target.view.destinationRuleFor(destination.host);
    if (!rule) return [];
    const subset = destination.subset ? rule.subsets.find((s) => s.name === destination.subset) : undefined;
    return hashPolicies(effectivePolicy(rule.trafficPolicy, subset, destination.port), target.view.scope.kind);
  });
  return policies.length > 0 ? { hash_policy: policies } : {};
}

const grpcCodes: Record<string, number> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/** Istio's percentage (0-100, fractions allowed) as Envoy's FractionalPercent; unset means always. */
function fraction(percentage: { value?: number } | undefined, percent?: number): Record<string, unknown> {
  const value = percentage?.value ?? percent ?? 100;
  return { numerator: Math.round(value * 10_000), denominator: 'MILLION' };
}

function httpFault(fault: NonNullable<HttpRoute['fault']>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  const delay = fault.delay as { fixedDelay?: string; percentage?: { value?: number }; percent?: number } | undefined;
  if (delay?.fixedDelay)
    result['delay'] = { fixed_delay: protoDuration(delay.fixedDelay), percentage: fraction(delay.percentage, delay.percent) };
  const abort = fault.abort as { httpStatus?: number; grpcStatus?: string; percentage?: { value?: number } } | undefined;
  if (abort) {
    const status =
      abort.grpcStatus !== undefined
        ? { grpc_status: grpcCodes[abort.grpcStatus] ?? Number(abort.grpcStatus) }
        : { http_status: abort.httpStatus ?? 503 };
    result['abort'] = { ...status, percentage: fraction(abort.percentage) };
  }
  return result;
}

/**
 * A route's Envoy RetryPolicy, as Istio's ConvertPolicy
 * (pilot/pkg/networking/core/route/retry/retry.go), the same for sidecars and proxyless
 * gRPC (grpc-js-xds keeps the gRPC codes it knows from `retry_on`: `unavailable`,
 * `cancelled`...):
 * - no `retries`: the default policy: 2 retries on `defaultRetryOn` (no HTTP status
 *   retried, so an application's 503 to a POST is not sent again), on another host
 *   (previous_hosts predicate, 5 host selection attempts) unless the route's one
 *   destination is consistently hashed;
 * - `attempts` 0 or less: no retries (undefined);
 * - otherwise `attempts` retries, `retryOn` when given (entries that are HTTP status codes
 *   become `retriable_status_codes`, `retriable-status-codes` appended if missing), else
 *   the default conditions; `perTryTimeout`, `retryIgnorePreviousHosts` (false drops the
 *   predicate), `retryRemoteLocalities` (previous_priorities, update frequency 2) and
 *   `backoff` (the base interval) as given.
 */
export function retryPolicy(retries: HttpRoute['retries'], consistentHash: boolean): Record<string, unknown> | undefined {
  const previousHosts = consistentHash ? {} : previousHostsPredicate();
  const base = { num_retries: { value: 2 }, retry_on: defaultRetryOn, host_selection_retry_max_attempts: 5, ...previousHosts };
  if (!retries) return base;
  if (!retries.attempts || retries.attempts <= 0) return undefined;
  const fields = retries as NonNullable<HttpRoute['retries']> & {
    retryIgnorePreviousHosts?: boolean;
    retryRemoteLocalities?: boolean;
    backoff?: string;
  };
  let retryOn = defaultRetryOn;
  let codes: number[] = [];
  if (fields.retryOn) {
    const conditions = fields.retryOn
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean);
    codes = conditions.filter(isHttpStatus).map(Number);
    retryOn = conditions.filter((c) => !isHttpStatus(c)).join(',');
    // Istio appends with a comma even when only codes were given (",retriable-status-codes"); Envoy skips the empty entry.
    if (codes.length > 0 && !retryOn.includes('retriable-status-codes')) retryOn += ',retriable-status-codes';
  }
  const predicate =
    fields.retryIgnorePreviousHosts === undefined ? previousHosts : fields.retryIgnorePreviousHosts ? previousHostsPredicate() : {};
  return {
    retry_on: retryOn,
    num_retries: { value: fields.attempts },
    ...(codes.length > 0 ? { retriable_status_codes: codes } : {}),
    ...(fields.perTryTimeout ? { per_try_timeout: protoDuration(fields.perTryTimeout) } : {}),
    host_selection_retry_max_attempts: 5,
    ...predicate,
    ...(fields.retryRemoteLocalities
      ? {
          retry_priority: {
            name: 'envoy.retry_priorities.previous_priorities',
            typed_config: any(previousPrioritiesType, { update_frequency: 2 }),
          },
        }
      : {}),
    ...(fields.backoff ? { retry_back_off: { base_interval: protoDuration(fields.backoff) } } : {}),
  };
}

/** Retries go to another host than the one that failed (Istio's xdsfilters.RetryPreviousHosts). */
const previousHostsPredicate = () => ({
  retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: any(previousHostsType, {}) }],
});

/** The status codes Go's net/http names (http.StatusText), which Istio's parseRetryOn takes as retriable status codes. */
const httpStatusCodes = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404,
  405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502,
  503, 504, 505, 506, 507, 508, 510, 511,
]);
const isHttpStatus = (condition: string) => /^[+-]?\d+$/.test(condition) && httpStatusCodes.has(Number(condition));

const redirectCodes: Record<number, string> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

/**
 * A VirtualService redirect as Envoy's RedirectAction, as istiod's ApplyRedirect
 * (pilot/pkg/networking/core/route/route.go): `prefixRewrite` over `uri`; `derivePort:
 * FROM_REQUEST_PORT` is the port the routes are built for (Envoy cannot derive it), FROM_PROTOCOL_DEFAULT
 * no port; a port that is the scheme's default (80 for http, 443 for https; the scheme being the
 * redirect's, else the server's) is left out, so the Location carries none.
 */
function redirectAction(redirect: NonNullable<HttpRoute['redirect']>, target: RouteTarget): Record<string, unknown> {
  const fields = redirect as {
    uri?: string;
    prefixRewrite?: string;
    authority?: string;
    redirectCode?: number;
    scheme?: string;
    port?: number;
    derivePort?: string;
  };
  let port = fields.port ?? (fields.derivePort === 'FROM_REQUEST_PORT' ? target.port : undefined);
  const scheme = fields.scheme || (target.tls ? 'https' : 'http');
  if ((port === 80 && scheme === 'http') || (port === 443 && scheme === 'https')) port = undefined;
  return {
    ...(fields.prefixRewrite ? { prefix_rewrite: fields.prefixRewrite } : fields.uri !== undefined ? { path_redirect: fields.uri } : {}),
    ...(fields.authority !== undefined ? { host_redirect: fields.authority } : {}),
    ...(fields.scheme ? { scheme_redirect: fields.scheme } : {}),
    ...(port ? { port_redirect: port } : {}),
    response_code: redirectCodes[fields.redirectCode ?? 301] ?? 'MOVED_PERMANENTLY',
  };
}

function mirrorPolicies(rule: ConfigObject<VirtualServiceSpec>, http: HttpRoute, target: RouteTarget): Route[] {
  const mirrors: Array<{ destination: HttpDestination['destination']; percentage?: { value?: number } }> = [];
  if (http.mirror) mirrors.push({ destination: http.mirror, ...(http.mirrorPercentage ? { percentage: http.mirrorPercentage } : {}) });
  for (const mirror of (http.mirrors ?? []) as Array<{ destination: HttpDestination['destination']; percentage?: { value?: number } }>)
    mirrors.push(mirror);
  return mirrors.map((mirror) => {
    const resolved = resolveDestination(rule, { destination: mirror.destination }, target);
    return {
      cluster: resolved.cluster,
      runtime_fraction: { default_value: fraction(mirror.percentage) },
    };
  });
}

interface HeaderOperations {
  request?: { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] };
  response?: { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] };
}

function headerValues(operations: HeaderOperations['request']): Array<Record<string, unknown>> {
  return [
    ...Object.entries(operations?.set ?? {}).map(([key, value]) => ({
      header: { key, value },
      append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
    })),
    ...Object.entries(operations?.add ?? {}).map(([key, value]) => ({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
}

/** A single destination's header operations apply to the whole route (Envoy's per-cluster form needs weighted clusters). */
const singleDestinationHeaders = (http: HttpRoute) => (http.route?.length === 1 ? http.route[0]?.headers : undefined);

function headerOperations(layers: ReadonlyArray<unknown>): Route {
  const ops = layers.filter((layer): layer is HeaderOperations => !!layer);
  const result: Route = {};
  const requestAdd = ops.flatMap((op) => headerValues(op.request));
  const responseAdd = ops.flatMap((op) => headerValues(op.response));
  const requestRemove = ops.flatMap((op) => op.request?.remove ?? []);
  const responseRemove = ops.flatMap((op) => op.response?.remove ?? []);
  if (requestAdd.length > 0) result['request_headers_to_add'] = requestAdd;
  if (requestRemove.length > 0) result['request_headers_to_remove'] = requestRemove;
  if (responseAdd.length > 0) result['response_headers_to_add'] = responseAdd;
  if (responseRemove.length > 0) result['response_headers_to_remove'] = responseRemove;
  return result;
}
