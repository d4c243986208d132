// A VirtualService's HTTP routes in a line each, for the dashboard: what a request
// must match, where it goes and in what shares, and the faults injected on the way.
// Istio evaluates the routes in order and the first match wins
// (istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRoute), so
// the order is kept. Pure.
import type { HttpMatch, HttpRoute } from '../xds/model/istio-config.js';

/** One HTTP route of a VirtualService, as the dashboard shows it. */
export interface RouteRule {
  /** The route's `name`, or `#<index>` (from 0). */
  name: string;
  /** What a request must match, alternatives joined by ` or `; `any request` when the route has no match. */
  match: string;
  /** Destinations by subset ('' when the route names none) and share in percent; empty for a redirect or direct response. */
  weights: Array<{ host: string; subset: string; weight: number }>;
  /** The injected faults (`delay 50% 7s`, `abort 10% HTTP 500`), if any. */
  fault?: string;
  /** What answers instead of a destination: `redirect …` or `direct response <status>`. */
  answer?: string;
}

type StringMatch = { exact?: string; prefix?: string; regex?: string } | undefined;

/** Istio's StringMatch as `<field> = v`, `<field> prefix v`, `<field> ~ v` (RE2), or `<field> present` (`{}`). */
function stringMatch(field: string, match: StringMatch): string | undefined {
  if (!match) return undefined;
  if (match.exact !== undefined) return `${field} = ${match.exact}`;
  if (match.prefix !== undefined) return `${field} prefix ${match.prefix}`;
  if (match.regex !== undefined) return `${field} ~ ${match.regex}`;
  return `${field} present`;
}

/** One HTTPMatchRequest as its conditions joined by ` and ` (`uri prefix /api and header end-user = jason`). */
export function describeMatch(match: HttpMatch): string {
  const parts: Array<string | undefined> = [
    stringMatch('uri', match.uri as StringMatch),
    stringMatch('scheme', match.scheme as StringMatch),
    stringMatch('method', match.method as StringMatch),
    stringMatch('authority', match.authority as StringMatch),
    ...Object.entries(match.headers ?? {}).map(([name, value]) => stringMatch(`header ${name}`, value as StringMatch)),
    ...Object.entries(match.withoutHeaders ?? {}).map(([name, value]) => `not ${stringMatch(`header ${name}`, value as StringMatch)}`),
    ...Object.entries(match.queryParams ?? {}).map(([name, value]) => stringMatch(`query ${name}`, value as StringMatch)),
    match.port !== undefined ? `port ${match.port}` : undefined,
    match.sourceLabels
      ? `from ${Object.entries(match.sourceLabels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',')}`
      : undefined,
    match.sourceNamespace ? `from namespace ${match.sourceNamespace}` : undefined,
  ];
  const described = parts.filter((p): p is string => !!p);
  return described.length > 0 ? described.join(' and ') : 'any request';
}

const percent = (value: { value?: number } | undefined, legacy: number | undefined) => value?.value ?? legacy ?? 100;

/** A route's fault injection (`delay 50% 7s, abort 10% HTTP 500`), or undefined. */
export function describeFault(fault: HttpRoute['fault']): string | undefined {
  if (!fault) return undefined;
  const parts: string[] = [];
  const delay = fault.delay as { percentage?: { value?: number }; percent?: number; fixedDelay?: string } | undefined;
  if (delay) parts.push(`delay ${percent(delay.percentage, delay.percent)}% ${delay.fixedDelay ?? ''}`.trim());
  const abort = fault.abort as
    { percentage?: { value?: number }; httpStatus?: number; grpcStatus?: string; http2Error?: string } | undefined;
  if (abort) {
    const what =
      abort.httpStatus !== undefined
        ? `HTTP ${abort.httpStatus}`
        : abort.grpcStatus
          ? `gRPC ${abort.grpcStatus}`
          : (abort.http2Error ?? '');
    parts.push(`abort ${percent(abort.percentage, undefined)}% ${what}`.trim());
  }
  return parts.length > 0 ? parts.join(', ') : undefined;
}

/**
 * Every HTTP route of a VirtualService, in Istio's evaluation order. A destination's
 * weight is its own, or 100 when it is the route's only one (Istio's default).
 * `host` is the destination as written (short names are not resolved here).
 */
export function routeRules(routes: ReadonlyArray<HttpRoute>): RouteRule[] {
  return routes.map((route, i) => {
    const destinations = route.route ?? [];
    const fault = describeFault(route.fault);
    const answer = route.redirect
      ? `redirect ${[route.redirect.authority, route.redirect.uri].filter(Boolean).join('') || 'to the same URL'} (${route.redirect.redirectCode ?? 301})`
      : route.directResponse
        ? `direct response ${route.directResponse.status}`
        : undefined;
    return {
      name: route.name ?? `#${i}`,
      match: (route.match ?? []).length > 0 ? (route.match ?? []).map(describeMatch).join(' or ') : 'any request',
      weights: destinations.map((d) => ({
        host: d.destination?.host ?? '',
        subset: d.destination?.subset ?? '',
        weight: d.weight ?? (destinations.length === 1 ? 100 : 0),
      })),
      ...(fault ? { fault } : {}),
      ...(answer ? { answer } : {}),
    };
  });
}
