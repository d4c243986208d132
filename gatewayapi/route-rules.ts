// Gateway API route rules to Istio VirtualService routes, after istiod's conversion.go (convertHTTPRoute,
// convertGRPCRoute, convertTCPRoute, convertTLSRoute, buildDestination and the filter builders). Pure.
// A hard error leaves the rule (and the route's config for that kind of parent) out; a backend error
// (BackendNotFound, RefNotPermitted, InvalidKind) keeps the rule and its other backends.
import { serviceHostname, type ClusterView, type IstioHttpRoute, type IstioTcpRoute, type IstioTlsRoute } from './gateway-api-input.js';
import {
  gatewayApiGroup,
  type BackendRef,
  type GrpcRouteMatch,
  type HeaderFilter,
  type HttpRouteFilter,
  type HttpRouteMatch,
  type RouteKind,
  type RouteRule,
} from './gateway-api-types.js';

export interface ConfigError {
  reason: string;
  message: string;
}

/** Backend errors the spec reports as ResolvedRefs=False but that keep the route (Istio's isInvalidBackend). */
const backendReasons = new Set(['RefNotPermitted', 'BackendNotFound', 'InvalidKind']);

export interface RouteContext {
  view: ClusterView;
  kind: RouteKind;
  namespace: string;
  name: string;
  /** Gateway parents enforce ReferenceGrants on backends; mesh (GAMMA) parents do not, as in Istio. */
  enforceRefGrant: boolean;
}

type Destination = NonNullable<NonNullable<IstioHttpRoute['route']>[number]['destination']>;

/** One backendRef's Istio destination, or why it is not usable (buildDestination). */
function destination(ctx: RouteContext, ref: BackendRef): { destination?: Destination; error?: ConfigError } {
  const group = ref.group ?? '';
  const kind = ref.kind ?? 'Service';
  if (ctx.enforceRefGrant && ref.namespace && ref.namespace !== ctx.namespace) {
    const allowed = ctx.view.grants.allowed(
      { group: gatewayApiGroup, kind: ctx.kind, namespace: ctx.namespace },
      { group, kind, namespace: ref.namespace, name: ref.name },
    );
    if (!allowed)
      return {
        destination: { host: '' },
        error: {
          reason: 'RefNotPermitted',
          message: `backendRef ${ref.name}/${ref.namespace} not accessible to a ${ctx.kind} in namespace "${ctx.namespace}" (missing a ReferenceGrant?)`,
        },
      };
  }
  const namespace = ref.namespace ?? ctx.namespace;
  let host: string;
  let error: ConfigError | undefined;
  if (group === '' && kind === 'Service') {
    if (ref.name.includes('.'))
      return {
        error: { reason: 'InvalidDestination', message: 'service name invalid; the name of the Service must be used, not the hostname.' },
      };
    host = `${ref.name}.${namespace}.svc.${ctx.view.domainSuffix}`;
    if (!ctx.view.services.some((s) => !s.hostname && s.name === ref.name && s.namespace === namespace))
      error = { reason: 'BackendNotFound', message: `backend(${host}) not found` };
  } else if (group === 'multicluster.x-k8s.io' && kind === 'ServiceImport') {
    // Without multi-cluster services a ServiceImport is its Service, as in Istio without ENABLE_MCS_HOST.
    host = `${ref.name}.${namespace}.svc.${ctx.view.domainSuffix}`;
    if (!ctx.view.services.some((s) => !s.hostname && s.name === ref.name && s.namespace === namespace))
      error = { reason: 'BackendNotFound', message: `backend(${host}) not found` };
  } else if (group === 'networking.istio.io' && kind === 'Hostname') {
    if (ref.namespace) return { error: { reason: 'InvalidDestination', message: 'namespace may not be set with Hostname type' } };
    host = ref.name;
    const known =
      ctx.view.services.some((s) => serviceHostname(s, ctx.view.domainSuffix) === host) ||
      [...(ctx.view.serviceEntries?.values() ?? [])].some((hosts) => hosts.includes(host));
    if (!known) error = { reason: 'BackendNotFound', message: `backend(${host}) not found` };
  } else {
    return {
      destination: { host: '' },
      error: { reason: 'InvalidKind', message: `referencing unsupported backendRef: group "${ref.group ?? ''}" kind "${ref.kind ?? ''}"` },
    };
  }
  if (ref.port === undefined) return { error: { reason: 'InvalidDestination', message: 'port is required in backendRef' } };
  return { destination: { host, port: { number: ref.port } }, ...(error ? { error } : {}) };
}

/** Backends with weight > 0 as weighted destinations (a single one gets weight 0: all traffic), or a hard error. */
function destinations(
  ctx: RouteContext,
  refs: ReadonlyArray<BackendRef>,
): {
  routes: Array<{ destination: Destination; weight?: number; headers?: IstioHttpRoute['headers'] }>;
  backendError?: ConfigError;
  error?: ConfigError;
} {
  const kept = refs.filter((r) => (r.weight ?? 1) !== 0);
  const single = kept.length === 1;
  const routes: Array<{ destination: Destination; weight?: number; headers?: IstioHttpRoute['headers'] }> = [];
  let backendError: ConfigError | undefined;
  for (const ref of kept) {
    const { destination: dst, error } = destination(ctx, ref);
    if (error && !backendReasons.has(error.reason)) return { routes: [], error };
    if (error) backendError = error;
    // A single backend takes all traffic: no weight, as Istio writes it (proto zero values are unset).
    const weight = single ? 0 : (ref.weight ?? 1);
    const entry: { destination: Destination; weight?: number; headers?: IstioHttpRoute['headers'] } = {
      destination: dst ?? { host: '' },
      ...(weight !== 0 ? { weight } : {}),
    };
    for (const filter of ref.filters ?? []) {
      const applied = applyHeaderFilter(entry, filter);
      if (applied) return { routes: [], error: applied };
    }
    routes.push(entry);
  }
  return { routes, ...(backendError ? { backendError } : {}) };
}

/** Header names lower-cased, later duplicates ignored ("Subsequent entries with an equivalent header name MUST be ignored"). */
function headerMap(headers: ReadonlyArray<{ name: string; value: string }> | undefined): Record<string, string> | undefined {
  if (!headers || headers.length === 0) return undefined;
  const map: Record<string, string> = {};
  for (const { name, value } of headers) {
    const key = name.toLowerCase();
    if (!(key in map)) map[key] = value;
  }
  return map;
}

// RFC 7230 field-value characters: HTAB, visible ASCII and obs-text; no CR, LF or other controls.
const validHeaderValue = (value: string) => [...Buffer.from(value)].every((c) => c === 0x09 || (c >= 0x20 && c !== 0x7f));

function headerOperations(filter: HeaderFilter): { operations: Record<string, unknown>; error?: ConfigError } {
  for (const header of [...(filter.set ?? []), ...(filter.add ?? [])])
    if (!validHeaderValue(header.value))
      return { operations: {}, error: { reason: 'InvalidFilter', message: `header "${header.name}" value contains invalid characters` } };
  const add = headerMap(filter.add);
  const set = headerMap(filter.set);
  return {
    operations: { ...(add ? { add } : {}), ...(filter.remove?.length ? { remove: filter.remove } : {}), ...(set ? { set } : {}) },
  };
}

/** Request/ResponseHeaderModifier onto a route or destination's `headers`; any other filter type is an InvalidFilter error. */
function applyHeaderFilter(target: { headers?: IstioHttpRoute['headers'] }, filter: HttpRouteFilter): ConfigError | undefined {
  const source =
    filter.type === 'RequestHeaderModifier'
      ? filter.requestHeaderModifier
      : filter.type === 'ResponseHeaderModifier'
        ? filter.responseHeaderModifier
        : undefined;
  if (filter.type !== 'RequestHeaderModifier' && filter.type !== 'ResponseHeaderModifier')
    return { reason: 'InvalidFilter', message: `unsupported filter type "${filter.type}"` };
  if (!source) return undefined;
  const { operations, error } = headerOperations(source);
  if (error) return error;
  target.headers = { ...target.headers, [filter.type === 'RequestHeaderModifier' ? 'request' : 'response']: operations };
  return undefined;
}

function uriMatch(match: HttpRouteMatch): IstioStringMatch | ConfigError {
  const type = match.path?.type ?? 'PathPrefix';
  let value = match.path?.value ?? '/';
  if (type === 'PathPrefix') {
    // "When specified, a trailing `/` is ignored."
    if (value !== '/' && value.endsWith('/')) value = value.slice(0, -1);
    return { prefix: value };
  }
  if (type === 'Exact') return { exact: value };
  if (type === 'RegularExpression') return { regex: value };
  return { reason: 'InvalidConfiguration', message: `unknown type: "${type as string}" is not supported Path match type` };
}

type IstioStringMatch = { exact?: string; prefix?: string; regex?: string };

function stringMatches(
  items: ReadonlyArray<{ type?: string; name: string; value: string }> | undefined,
  what: string,
): Record<string, IstioStringMatch> | ConfigError | undefined {
  if (!items || items.length === 0) return undefined;
  const result: Record<string, IstioStringMatch> = {};
  for (const item of items) {
    const type = item.type ?? 'Exact';
    if (type === 'Exact') result[item.name] = { exact: item.value };
    else if (type === 'RegularExpression') result[item.name] = { regex: item.value };
    else return { reason: 'InvalidConfiguration', message: `unknown type: "${type}" is not supported ${what} type` };
  }
  return result;
}

const isError = (value: unknown): value is ConfigError => typeof value === 'object' && value !== null && 'reason' in value;

/** gRPC's `/<service>/<method>` as a path match (createGRPCURIMatch). */
function grpcUriMatch(match: GrpcRouteMatch): IstioStringMatch | ConfigError | undefined {
  const m = match.method;
  if (!m) return undefined;
  if (!m.method && !m.service) return { reason: 'InvalidConfiguration', message: 'gRPC match must have method or service defined' };
  if ((m.type ?? 'Exact') === 'Exact') {
    if (!m.method) return { prefix: `/${m.service}/` };
    if (!m.service) return { regex: `/[^/]+/${m.method}` };
    return { exact: `/${m.service}/${m.method}` };
  }
  if (m.type === 'RegularExpression') {
    if (!m.method) return { regex: `/${m.service}/.+` };
    if (!m.service) return { regex: `/[^/]+/${m.method}` };
    return { regex: `/${m.service}/${m.method}` };
  }
  return { reason: 'InvalidConfiguration', message: `unknown type: "${m.type as string}" is not supported Path match type` };
}

const seconds = (duration: string): string | undefined => {
  // Gateway API durations (GEP-2257): e.g. 1h, 10s, 500ms, 1m30s. Istio's durations: seconds with a fraction.
  const parts = [...duration.matchAll(/(\d+)(h|ms|m|s)/g)];
  if (parts.length === 0) return undefined;
  const unit = { h: 3600, m: 60, s: 1, ms: 0.001 } as const;
  const total = parts.reduce((sum, [, n, u]) => sum + Number(n) * unit[u as keyof typeof unit], 0);
  return total === 0 ? undefined : `${Number(total.toFixed(3))}s`;
};

export interface RuleResult<Route> {
  /** Undefined on a hard error: the whole rule set for this kind of parent is refused. */
  route?: Route;
  error?: ConfigError;
}

/** One HTTPRoute rule with at most one match (Istio splits rules per match) to an Istio HTTP route. */
export function httpRule(ctx: RouteContext, rule: RouteRule<HttpRouteMatch>, position: number): RuleResult<IstioHttpRoute> {
  const out: IstioHttpRoute = { name: rule.name ?? `${ctx.namespace}.${ctx.name}.${position}` };
  const matches: NonNullable<IstioHttpRoute['match']> = [];
  for (const match of rule.matches ?? []) {
    const uri = uriMatch(match);
    if (isError(uri)) return { error: uri };
    const headers = stringMatches(match.headers, 'HeaderMatch');
    if (isError(headers)) return { error: headers };
    const queryParams = stringMatches(match.queryParams, 'QueryParams');
    if (isError(queryParams)) return { error: queryParams };
    matches.push({
      uri,
      ...(headers ? { headers } : {}),
      ...(queryParams ? { queryParams } : {}),
      ...(match.method ? { method: { exact: match.method } } : {}),
    } as NonNullable<IstioHttpRoute['match']>[number]);
  }
  if (matches.length > 0) out.match = matches;
  let mirrorError: ConfigError | undefined;
  for (const filter of rule.filters ?? []) {
    switch (filter.type) {
      case 'RequestHeaderModifier':
      case 'ResponseHeaderModifier': {
        const error = applyHeaderFilter(out, filter);
        if (error) return { error };
        break;
      }
      case 'RequestRedirect':
        if (filter.requestRedirect) out.redirect = redirect(filter.requestRedirect);
        break;
      case 'RequestMirror': {
        if (!filter.requestMirror) break;
        const { destination: dst, error } = destination(ctx, { ...filter.requestMirror.backendRef, weight: 1 });
        if (error) {
          if (!backendReasons.has(error.reason)) return { error };
          mirrorError = error;
          break;
        }
        const fraction = filter.requestMirror.fraction;
        const percent = fraction
          ? (100 * fraction.numerator) / (fraction.denominator ?? 100)
          : filter.requestMirror.percent !== undefined
            ? filter.requestMirror.percent
            : undefined;
        out.mirrors = [
          ...(out.mirrors ?? []),
          { destination: dst as Destination, ...(percent !== undefined ? { percentage: { value: percent } } : {}) },
        ];
        break;
      }
      case 'URLRewrite': {
        const rewrite = urlRewrite(filter.urlRewrite);
        if (rewrite) out.rewrite = rewrite;
        break;
      }
      case 'CORS':
        if (filter.cors) out.corsPolicy = corsPolicy(filter.cors);
        break;
      default:
        // ExtensionRef (and any other) is not implemented: the rule is refused, as Istio refuses unknown ones.
        return { error: { reason: 'InvalidFilter', message: `unsupported filter type "${filter.type}"` } };
    }
  }
  if (rule.retry) {
    // "Implementations SHOULD retry on connection errors ... if a retry stanza is configured."
    const attempts = rule.retry.attempts ?? 2;
    const retryOn = ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', ...(rule.retry.codes ?? []).map(String)].join(',');
    out.retries = { attempts, ...(attempts > 0 ? { retryOn } : {}) };
    const backoff = rule.retry.backoff ? seconds(rule.retry.backoff) : undefined;
    if (backoff) out.retries = { ...out.retries, backoff } as typeof out.retries;
  }
  const request = rule.timeouts?.request ? seconds(rule.timeouts.request) : undefined;
  if (request) out.timeout = request;
  const backendRequest = rule.timeouts?.backendRequest ? seconds(rule.timeouts.backendRequest) : undefined;
  if (backendRequest) {
    if (out.retries) out.retries = { ...out.retries, perTryTimeout: backendRequest };
    else out.timeout = backendRequest;
  }
  const weightSum = (rule.backendRefs ?? []).reduce((sum, r) => sum + (r.weight ?? 1), 0);
  if (weightSum === 0 && !out.redirect) {
    // "When there are no >0 weight backends, return 500."
    out.directResponse = { status: 500 };
    return { route: out, ...(mirrorError ? { error: mirrorError } : {}) };
  }
  if (weightSum === 0) return { route: out, ...(mirrorError ? { error: mirrorError } : {}) };
  const built = destinations(ctx, rule.backendRefs ?? []);
  if (built.error) return { error: built.error };
  out.route = built.routes as IstioHttpRoute['route'];
  const error = built.backendError ?? mirrorError;
  return { route: out, ...(error ? { error } : {}) };
}

/** One GRPCRoute rule with at most one match to an Istio HTTP route (convertGRPCRoute). */
export function grpcRule(ctx: RouteContext, rule: RouteRule<GrpcRouteMatch>, position: number): RuleResult<IstioHttpRoute> {
  const out: IstioHttpRoute = { name: rule.name ?? `${ctx.namespace}.${ctx.name}.${position}` };
  const matches: NonNullable<IstioHttpRoute['match']> = [];
  for (const match of rule.matches ?? []) {
    const uri = grpcUriMatch(match);
    if (isError(uri)) return { error: uri };
    const headers = stringMatches(match.headers, 'HeaderMatch');
    if (isError(headers)) return { error: headers };
    matches.push({ ...(uri ? { uri } : {}), ...(headers ? { headers } : {}) } as NonNullable<IstioHttpRoute['match']>[number]);
  }
  if (matches.length > 0) out.match = matches;
  for (const filter of rule.filters ?? []) {
    if (filter.type === 'RequestMirror' && filter.requestMirror) {
      const { destination: dst, error } = destination(ctx, { ...filter.requestMirror.backendRef, weight: 1 });
      if (error) return { error };
      const fraction = filter.requestMirror.fraction;
      const percent = fraction ? (100 * fraction.numerator) / (fraction.denominator ?? 100) : filter.requestMirror.percent;
      out.mirrors = [
        ...(out.mirrors ?? []),
        { destination: dst as Destination, ...(percent !== undefined ? { percentage: { value: percent } } : {}) },
      ];
      continue;
    }
    const error = applyHeaderFilter(out, filter);
    if (error) return { error };
  }
  const weightSum = (rule.backendRefs ?? []).reduce((sum, r) => sum + (r.weight ?? 1), 0);
  if (weightSum === 0) {
    out.directResponse = { status: 500 };
    return { route: out };
  }
  const built = destinations(ctx, rule.backendRefs ?? []);
  if (built.error) return { error: built.error };
  out.route = built.routes as IstioHttpRoute['route'];
  return { route: out, ...(built.backendError ? { error: built.backendError } : {}) };
}

/** No backend with weight > 0: connections go to a destination that does not exist, and are refused (as Istio). */
const zeroWeight = [{ destination: { host: 'internal.cluster.local', subset: 'zero-weight', port: { number: 65535 } } }];

/** One TCPRoute rule (convertTCPRoute). */
export function tcpRule(ctx: RouteContext, rule: RouteRule<never>): RuleResult<IstioTcpRoute> {
  if ((rule.backendRefs ?? []).reduce((sum, r) => sum + (r.weight ?? 1), 0) === 0) return { route: { route: zeroWeight } };
  const built = destinations(ctx, rule.backendRefs ?? []);
  if (built.error) return { error: built.error };
  return {
    route: { route: built.routes.map(({ destination: d, weight }) => ({ destination: d, ...(weight !== undefined ? { weight } : {}) })) },
    ...(built.backendError ? { error: built.backendError } : {}),
  };
}

/** One TLSRoute rule, matched on SNI by the route's hostnames (convertTLSRoute). */
export function tlsRule(
  ctx: RouteContext,
  rule: RouteRule<never>,
  hostnames: ReadonlyArray<string> | undefined,
): RuleResult<IstioTlsRoute> {
  const match = [{ sniHosts: hostnames && hostnames.length > 0 ? [...hostnames] : ['*'] }];
  if ((rule.backendRefs ?? []).reduce((sum, r) => sum + (r.weight ?? 1), 0) === 0) return { route: { route: zeroWeight } as IstioTlsRoute };
  const built = destinations(ctx, rule.backendRefs ?? []);
  if (built.error) return { error: built.error };
  return {
    route: {
      match,
      route: built.routes.map(({ destination: d, weight }) => ({ destination: d, ...(weight !== undefined ? { weight } : {}) })),
    } as IstioTlsRoute,
    ...(built.backendError ? { error: built.backendError } : {}),
  };
}

function redirect(filter: NonNullable<HttpRouteFilter['requestRedirect']>): NonNullable<IstioHttpRoute['redirect']> {
  const out: Record<string, unknown> = {};
  if (filter.statusCode !== undefined) out['redirectCode'] = filter.statusCode;
  if (filter.hostname) out['authority'] = filter.hostname;
  if (filter.scheme) out['scheme'] = filter.scheme;
  // "When empty, port (if specified) of the request is used" (unlike Istio's own default).
  if (filter.port !== undefined) out['port'] = filter.port;
  else out['derivePort'] = filter.scheme ? 'FROM_PROTOCOL_DEFAULT' : 'FROM_REQUEST_PORT';
  if (filter.path?.type === 'ReplaceFullPath') out['uri'] = filter.path.replaceFullPath;
  if (filter.path?.type === 'ReplacePrefixMatch') out['prefixRewrite'] = filter.path.replacePrefixMatch;
  return out as NonNullable<IstioHttpRoute['redirect']>;
}

function urlRewrite(filter: HttpRouteFilter['urlRewrite']): IstioHttpRoute['rewrite'] | undefined {
  if (!filter) return undefined;
  const out: Record<string, unknown> = {};
  if (filter.path?.type === 'ReplacePrefixMatch') {
    let uri = (filter.path.replacePrefixMatch ?? '').replace(/\/$/, '');
    // `/` means removing the prefix.
    if (uri === '') uri = '/';
    out['uri'] = uri;
  }
  if (filter.path?.type === 'ReplaceFullPath') out['uriRegexRewrite'] = { match: '/.*', rewrite: filter.path.replaceFullPath };
  if (filter.hostname) out['authority'] = filter.hostname;
  return Object.keys(out).length > 0 ? (out as IstioHttpRoute['rewrite']) : undefined;
}

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The CORS filter as Istio's corsPolicy (createCorsFilter): `*` any well-formed origin, one trailing `*` a prefix, other wildcards a regex. */
function corsPolicy(filter: NonNullable<HttpRouteFilter['cors']>): NonNullable<IstioHttpRoute['corsPolicy']> {
  const allowOrigins: Array<{ exact?: string; prefix?: string; regex?: string }> = [];
  for (const origin of filter.allowOrigins ?? []) {
    if (origin === '') continue;
    if (origin === '*') allowOrigins.push({ regex: '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\\s?#]+$' });
    else if (!origin.includes('*')) allowOrigins.push({ exact: origin });
    else if (origin.indexOf('*') === origin.length - 1) allowOrigins.push({ prefix: origin.slice(0, -1) });
    else allowOrigins.push({ regex: `^${escapeRegex(origin).replaceAll('\\*', '.*')}$` });
  }
  return {
    ...(allowOrigins.length > 0 ? { allowOrigins } : {}),
    ...(filter.allowCredentials ? { allowCredentials: true } : {}),
    ...(filter.allowMethods?.length ? { allowMethods: filter.allowMethods } : {}),
    ...(filter.allowHeaders?.length ? { allowHeaders: filter.allowHeaders } : {}),
    ...(filter.exposeHeaders?.length ? { exposeHeaders: filter.exposeHeaders } : {}),
    ...(filter.maxAge && filter.maxAge > 0 ? { maxAge: `${filter.maxAge}s` } : {}),
    unmatchedPreflights: 'IGNORE',
  } as NonNullable<IstioHttpRoute['corsPolicy']>;
}
