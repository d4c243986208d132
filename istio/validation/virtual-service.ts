// VirtualService (networking.istio.io), after Istio's ValidateVirtualService and validateHTTPRoute.
// References to other objects (subsets, hosts, gateways) are not checked here: a VirtualService may
// arrive before its DestinationRule, so those are reported on its status instead.
import type { IVirtualService } from '@kubernetes-models/istio/networking.istio.io/v1/VirtualService';
import { durationProblem } from './duration.js';
import { entriesOf, isSet, items, type Issues } from './field-issues.js';
import { isDns1123Label, isIpAddress, labelsProblems, portProblem, wildcardDomainProblem } from './hostnames.js';
import { re2Problem } from './regex.js';
import { validateStringMatch, type StringMatch } from './string-match.js';

type Spec = NonNullable<IVirtualService['spec']>;
type HttpRoute = NonNullable<Spec['http']>[number];
type HttpMatch = NonNullable<HttpRoute['match']>[number];

interface Destination {
  host?: string;
  subset?: string;
  port?: { number?: number };
}
interface WeightedDestination {
  destination?: Destination;
  weight?: number;
}

const supportedRetryOn = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);
const grpcStatuses = new Set([
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
]);
const corsMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);

export function checkDuration(issues: Issues, field: string, value: unknown): void {
  if (!isSet(value)) return;
  const problem = durationProblem(value);
  if (problem) issues.error(field, problem);
}

/** A percentage (`{ value: 12.5 }`) between 0 and 100. */
function checkPercentage(issues: Issues, field: string, percentage: { value?: number } | undefined | null): void {
  if (!percentage || typeof percentage !== 'object' || !isSet(percentage.value)) return;
  const value = Number(percentage.value);
  if (!(value >= 0 && value <= 100)) issues.error(`${field}.value`, `percentage ${String(percentage.value)} is not in range 0..100`);
}

export function validateDestination(issues: Issues, field: string, destination: Destination | undefined | null): void {
  if (!destination || typeof destination !== 'object') {
    issues.error(field, 'destination is required');
    return;
  }
  const host = destination.host ?? '';
  if (host === '*') issues.error(`${field}.host`, 'invalid destination host *');
  else {
    const problem = wildcardDomainProblem(host);
    if (problem) issues.error(`${field}.host`, problem);
  }
  if (isSet(destination.subset) && !isDns1123Label(destination.subset ?? '')) {
    issues.error(`${field}.subset`, `subset name "${destination.subset}" is not a DNS-1123 label`);
  }
  if (destination.port && isSet(destination.port.number)) {
    const problem = portProblem(destination.port.number);
    if (problem) issues.error(`${field}.port.number`, problem);
  }
}

/**
 * Weighted destinations of an HTTP, TCP or TLS route, as Istio's validateHTTPRouteDestinations
 * and validateRouteDestinations (pkg/config/validation/validation.go): weights are relative
 * (since Istio 1.15 they need not sum to 100: 60/60 splits evenly), each must not be
 * negative, and with more than one destination they must not all be 0. One destination
 * takes all traffic whatever its weight.
 */
function validateWeightedDestinations(issues: Issues, field: string, destinations: WeightedDestination[]): void {
  let total = 0;
  destinations.forEach((weighted, i) => {
    validateDestination(issues, `${field}[${i}].destination`, weighted?.destination);
    const weight = weighted?.weight ?? 0;
    if (weight < 0) issues.error(`${field}[${i}].weight`, `weight ${weight} must not be negative`);
    total += weight;
  });
  if (destinations.length > 1 && total === 0) issues.error(field, 'total destination weight = 0');
}

function validateMatch(issues: Issues, field: string, match: HttpMatch): void {
  if (!match || typeof match !== 'object') return;
  validateStringMatch(issues, `${field}.uri`, match.uri as StringMatch, true);
  validateStringMatch(issues, `${field}.scheme`, match.scheme as StringMatch);
  validateStringMatch(issues, `${field}.method`, match.method as StringMatch);
  validateStringMatch(issues, `${field}.authority`, match.authority as StringMatch);
  for (const [name, header] of entriesOf(match.headers as Record<string, StringMatch>)) {
    if (name === '') issues.error(`${field}.headers`, 'header name must not be empty');
    validateStringMatch(issues, `${field}.headers[${name}]`, header);
  }
  for (const [name, header] of entriesOf(match.withoutHeaders as Record<string, StringMatch>)) {
    // `regex: "*"` in withoutHeaders means "present", not a regex.
    if (header?.regex !== '*') validateStringMatch(issues, `${field}.withoutHeaders[${name}]`, header);
  }
  for (const [name, param] of entriesOf(match.queryParams as Record<string, StringMatch>)) {
    validateStringMatch(issues, `${field}.queryParams[${name}]`, param);
  }
  if (isSet(match.port)) {
    const problem = portProblem(match.port);
    if (problem) issues.error(`${field}.port`, problem);
  }
  for (const problem of labelsProblems(match.sourceLabels)) issues.error(`${field}.sourceLabels`, problem);
  if (isSet(match.sourceNamespace) && !isDns1123Label(match.sourceNamespace ?? '')) {
    issues.error(`${field}.sourceNamespace`, `"${match.sourceNamespace}" is not a valid namespace name`);
  }
}

function validateFault(issues: Issues, field: string, fault: HttpRoute['fault']): void {
  if (!fault || typeof fault !== 'object') return;
  if (!fault.abort && !fault.delay) issues.error(field, 'HTTP fault injection must have an abort and/or a delay');
  const { abort, delay } = fault;
  if (abort) {
    checkPercentage(issues, `${field}.abort.percentage`, abort.percentage);
    if (isSet(abort.httpStatus)) {
      const status = Number(abort.httpStatus);
      if (!(Number.isInteger(status) && status >= 200 && status <= 599)) {
        issues.error(`${field}.abort.httpStatus`, `HTTP status ${String(abort.httpStatus)} is not in range 200-599`);
      }
    } else if (isSet(abort.grpcStatus)) {
      if (!grpcStatuses.has(String(abort.grpcStatus))) {
        issues.error(
          `${field}.abort.grpcStatus`,
          `gRPC status "${String(abort.grpcStatus)}" is not a gRPC status code name such as NOT_FOUND`,
        );
      }
    } else if (isSet(abort.http2Error)) {
      issues.error(`${field}.abort.http2Error`, 'HTTP/2 abort fault injection is not supported');
    } else {
      issues.error(`${field}.abort`, 'abort needs httpStatus or grpcStatus');
    }
  }
  if (delay) {
    checkPercentage(issues, `${field}.delay.percentage`, delay.percentage);
    if (isSet(delay.percent) && !(Number(delay.percent) >= 0 && Number(delay.percent) <= 100)) {
      issues.error(`${field}.delay.percent`, `percentage ${String(delay.percent)} is not in range 0..100`);
    }
    if (isSet(delay.percent)) issues.warn(`${field}.delay.percent`, 'percent is deprecated; use percentage');
    checkDuration(issues, `${field}.delay.fixedDelay`, delay.fixedDelay);
    if (isSet(delay.exponentialDelay)) issues.error(`${field}.delay.exponentialDelay`, 'exponentialDelay is not supported');
  }
}

function validateRetries(issues: Issues, field: string, retries: HttpRoute['retries']): void {
  if (!retries || typeof retries !== 'object') return;
  const attempts = retries.attempts ?? 0;
  if (attempts < 0) issues.error(`${field}.attempts`, `attempts ${attempts} must not be negative`);
  if (attempts === 0 && (isSet(retries.perTryTimeout) || retries.retryOn || isSet(retries.retryRemoteLocalities))) {
    issues.error(field, 'retry policy configured while attempts is 0 (retries disabled)');
  }
  checkDuration(issues, `${field}.perTryTimeout`, retries.perTryTimeout);
  checkDuration(issues, `${field}.backoff`, retries.backoff);
  if (retries.retryOn) {
    for (const policy of String(retries.retryOn).split(',')) {
      const code = Number(policy);
      const isStatusCode = /^\d{3}$/.test(policy) && code >= 100 && code <= 599;
      if (!isStatusCode && !supportedRetryOn.has(policy)) issues.error(`${field}.retryOn`, `"${policy}" is not a valid retryOn policy`);
    }
  }
}

function validateCors(issues: Issues, field: string, cors: HttpRoute['corsPolicy']): void {
  if (!cors || typeof cors !== 'object') return;
  if (items(cors.allowOrigin).length > 0) issues.warn(`${field}.allowOrigin`, 'allowOrigin is deprecated; use allowOrigins');
  items(cors.allowOrigins).forEach((origin, i) => {
    const match = origin as StringMatch;
    if (!match?.exact && !match?.prefix && !match?.regex)
      issues.error(`${field}.allowOrigins[${i}]`, 'an allowed origin must set exact, prefix or regex');
    validateStringMatch(issues, `${field}.allowOrigins[${i}]`, match);
  });
  items(cors.allowMethods).forEach((method, i) => {
    if (!corsMethods.has(method)) issues.error(`${field}.allowMethods[${i}]`, `"${method}" is not a supported HTTP method`);
  });
  if (isSet(cors.maxAge)) {
    checkDuration(issues, `${field}.maxAge`, cors.maxAge);
    const nanos = durationProblem(cors.maxAge) ? undefined : String(cors.maxAge);
    if (nanos && /ms|us|µs|ns/.test(nanos)) issues.error(`${field}.maxAge`, 'maxAge is accurate only to seconds');
  }
}

function validateRedirect(issues: Issues, field: string, route: HttpRoute): void {
  // prefixRewrite is newer than the typed models.
  const redirect = route.redirect as (NonNullable<HttpRoute['redirect']> & { prefixRewrite?: string }) | undefined;
  if (!redirect || typeof redirect !== 'object') return;
  if (redirect.uri && redirect.prefixRewrite) issues.error(field, 'redirect may only specify one of uri or prefixRewrite');
  if (
    !redirect.uri &&
    !redirect.prefixRewrite &&
    !redirect.authority &&
    !isSet(redirect.port) &&
    !redirect.derivePort &&
    !redirect.scheme
  ) {
    issues.error(field, 'redirect must specify uri, authority, scheme or port');
  }
  if (isSet(redirect.redirectCode) && redirect.redirectCode !== 0) {
    const code = Number(redirect.redirectCode);
    if (!(code >= 300 && code <= 399)) issues.error(`${field}.redirectCode`, `${code} is not a valid redirect code, must be 3xx`);
  }
  if (redirect.scheme && redirect.scheme !== 'http' && redirect.scheme !== 'https')
    issues.error(`${field}.scheme`, 'must be "http" or "https"');
  if (isSet(redirect.port)) {
    const problem = portProblem(redirect.port);
    if (problem) issues.error(`${field}.port`, problem);
  }
}

function validateHttpRoute(issues: Issues, field: string, route: HttpRoute, delegate: boolean): void {
  if (!route || typeof route !== 'object') {
    issues.error(field, 'http route may not be null');
    return;
  }
  const destinations = items(route.route as WeightedDestination[]);
  if (route.delegate && !delegate) {
    if (route.redirect) issues.error(`${field}.redirect`, 'a route that delegates must not also redirect');
    if (destinations.length > 0) issues.error(`${field}.route`, 'a route that delegates must not also route');
  } else {
    if (delegate && route.delegate) issues.error(`${field}.delegate`, 'a delegate VirtualService cannot delegate again');
    if (route.redirect) {
      if (destinations.length > 0) issues.error(field, 'HTTP route cannot contain both route and redirect');
      if (route.fault) issues.error(field, 'HTTP route cannot contain both fault and redirect');
      if (route.rewrite) issues.error(field, 'HTTP route cannot contain both rewrite and redirect');
      if (route.directResponse) issues.error(field, 'HTTP route cannot contain both directResponse and redirect');
    } else if (route.directResponse) {
      if (destinations.length > 0) issues.error(field, 'HTTP route cannot contain both route and directResponse');
      if (route.fault) issues.error(field, 'HTTP route cannot contain both fault and directResponse');
      if (route.rewrite) issues.error(field, 'HTTP route cannot contain both rewrite and directResponse');
    } else if (destinations.length === 0) {
      issues.error(field, 'HTTP route needs route, redirect or directResponse');
    }
  }
  if (route.mirror && items(route.mirrors).length > 0) issues.error(field, 'HTTP route cannot contain both mirror and mirrors');

  items(route.match).forEach((match, i) => validateMatch(issues, `${field}.match[${i}]`, match));
  validateCors(issues, `${field}.corsPolicy`, route.corsPolicy);
  validateFault(issues, `${field}.fault`, route.fault);
  if (isSet(route.mirrorPercent)) {
    issues.warn(`${field}.mirrorPercent`, 'mirrorPercent is deprecated; use mirrorPercentage');
    if (Number(route.mirrorPercent) > 100)
      issues.error(`${field}.mirrorPercent`, `percentage ${String(route.mirrorPercent)} is not in range 0..100`);
  }
  checkPercentage(issues, `${field}.mirrorPercentage`, route.mirrorPercentage);
  if (route.mirror) validateDestination(issues, `${field}.mirror`, route.mirror as Destination);
  items(route.mirrors).forEach((mirror, i) => {
    validateDestination(issues, `${field}.mirrors[${i}].destination`, mirror?.destination as Destination);
    checkPercentage(issues, `${field}.mirrors[${i}].percentage`, mirror?.percentage);
  });
  validateRedirect(issues, `${field}.redirect`, route);
  if (route.directResponse) {
    const status = Number(route.directResponse.status);
    if (!(Number.isInteger(status) && status >= 200 && status <= 599)) {
      issues.error(`${field}.directResponse.status`, `HTTP status ${String(route.directResponse.status)} is not in range 200-599`);
    }
  }
  validateRetries(issues, `${field}.retries`, route.retries);
  const rewrite = route.rewrite;
  if (rewrite && typeof rewrite === 'object') {
    if (rewrite.uri && rewrite.uriRegexRewrite) issues.error(`${field}.rewrite`, 'rewrite may only contain one of uri or uriRegexRewrite');
    if (!rewrite.uri && !rewrite.uriRegexRewrite && !rewrite.authority)
      issues.error(`${field}.rewrite`, 'rewrite must specify uri, uriRegexRewrite or authority');
    if (rewrite.uriRegexRewrite) {
      const { match } = rewrite.uriRegexRewrite;
      const problem = match ? re2Problem(match) : 'match is required';
      if (problem) issues.error(`${field}.rewrite.uriRegexRewrite.match`, problem);
    }
  }
  validateWeightedDestinations(issues, `${field}.route`, destinations);
  if (isSet(route.timeout)) {
    const problem = durationProblem(route.timeout);
    if (problem) issues.error(`${field}.timeout`, problem);
  }
}

function validateL4Route(
  issues: Issues,
  field: string,
  route: { match?: unknown[]; route?: unknown[] } | null | undefined,
  tls: boolean,
): void {
  if (!route || typeof route !== 'object') {
    issues.error(field, 'route may not be null');
    return;
  }
  items(route.match as Array<{ port?: number; sniHosts?: string[]; sourceLabels?: Record<string, string> }>).forEach((match, i) => {
    if (!match) return;
    if (isSet(match.port)) {
      const problem = portProblem(match.port);
      if (problem) issues.error(`${field}.match[${i}].port`, problem);
    }
    for (const problem of labelsProblems(match.sourceLabels)) issues.error(`${field}.match[${i}].sourceLabels`, problem);
    if (tls) {
      const sniHosts = items(match.sniHosts);
      if (sniHosts.length === 0) issues.error(`${field}.match[${i}].sniHosts`, 'TLS match must have at least one SNI host');
      sniHosts.forEach((host, j) => {
        const problem = wildcardDomainProblem(host);
        if (problem) issues.error(`${field}.match[${i}].sniHosts[${j}]`, problem);
      });
    }
  });
  if (tls && items(route.match).length === 0) issues.error(`${field}.match`, 'TLS route must have at least one match condition');
  const destinations = items(route.route as WeightedDestination[]);
  if (destinations.length === 0) issues.error(`${field}.route`, 'route is required');
  validateWeightedDestinations(issues, `${field}.route`, destinations);
}

export function validateExportTo(issues: Issues, field: string, exportTo: string[] | undefined, allowNone = false): void {
  const seen = new Set<string>();
  const values = items(exportTo);
  values.forEach((value, i) => {
    if (seen.has(value)) issues.error(`${field}[${i}]`, `duplicate entry "${value}"`);
    seen.add(value);
    if (value !== '.' && value !== '*' && !(allowNone && value === '~') && !isDns1123Label(value)) {
      issues.error(`${field}[${i}]`, `"${value}" is not ".", "*"${allowNone ? ', "~"' : ''} or a namespace name`);
    }
  });
  if (seen.has('*') && values.length > 1) issues.error(field, 'cannot have both public (*) and non-public exportTo values');
  if (seen.has('~') && values.length > 1) issues.error(field, 'cannot export to no one (~) and someone');
}

export function validateVirtualService(issues: Issues, spec: Spec): void {
  const hosts = items(spec.hosts);
  const gateways = items(spec.gateways);
  const delegate = hosts.length === 0;
  if (delegate) {
    // A VirtualService without hosts is a delegate, reached only through another's `delegate`.
    if (gateways.length > 0) issues.error('spec.gateways', 'a delegate VirtualService (no hosts) must have no gateways');
    if (items(spec.tls).length > 0) issues.error('spec.tls', 'a delegate VirtualService (no hosts) must have no tls routes');
    if (items(spec.tcp).length > 0) issues.error('spec.tcp', 'a delegate VirtualService (no hosts) must have no tcp routes');
  }
  gateways.forEach((gateway, i) => {
    if (gateway === 'mesh') return;
    const [namespace, name, extra] = String(gateway).split('/');
    if (name === undefined) {
      const problem = wildcardDomainProblem(String(gateway));
      if (problem) issues.error(`spec.gateways[${i}]`, problem);
    } else if (extra !== undefined || !namespace || !name || !isDns1123Label(namespace)) {
      issues.error(`spec.gateways[${i}]`, `"${gateway}" is not <namespace>/<gateway name>`);
    }
  });
  const boundToMesh = gateways.length === 0 || gateways.includes('mesh');
  const seen = new Set<string>();
  hosts.forEach((host, i) => {
    const field = `spec.hosts[${i}]`;
    if (host === '') issues.error(field, 'host must not be empty');
    else if (host === '*' && boundToMesh) issues.error(field, 'wildcard host * is not allowed for virtual services bound to the mesh');
    else if (!isIpAddress(host)) {
      const problem = wildcardDomainProblem(host);
      if (problem) issues.error(field, problem);
    }
    if (seen.has(host)) issues.error(field, `duplicate host "${host}"`);
    seen.add(host);
  });
  if (items(spec.http).length === 0 && items(spec.tcp).length === 0 && items(spec.tls).length === 0) {
    issues.error('spec', 'http, tcp or tls must be provided in a VirtualService');
  }
  items(spec.http).forEach((route, i) => validateHttpRoute(issues, `spec.http[${i}]`, route, delegate));
  items(spec.tcp).forEach((route, i) => validateL4Route(issues, `spec.tcp[${i}]`, route, false));
  items(spec.tls).forEach((route, i) => validateL4Route(issues, `spec.tls[${i}]`, route, true));
  validateExportTo(issues, 'spec.exportTo', spec.exportTo);
}
