// Istio's value syntax (`*` as a whole value, `*suffix`, `prefix*`, path
// templates, CIDRs) as Envoy matchers, shaped as Istio's authz matcher package
// shapes them, so that Envoy sidecars and proxyless gRPC see the same config.
import { isIP } from 'node:net';

export type Matcher = Record<string, unknown>;

/** The metadata namespace and key the jwt_authn filter writes a verified token's payload under (see request-authentication.ts). */
export const jwtFilterName = 'envoy.filters.http.jwt_authn';
export const jwtPayloadKey = 'payload';

const regexMeta = /[\\.+*?()|[\]{}^$]/g;

/** A literal inside an RE2 regex (Go's regexp.QuoteMeta). */
export function quoteMeta(value: string): string {
  return value.replace(regexMeta, '\\$&');
}

export const regexMatcher = (regex: string): Matcher => ({ safe_regex: { regex } });

const withCase = (matcher: Matcher, ignoreCase: boolean): Matcher => (ignoreCase ? { ...matcher, ignore_case: true } : matcher);

/**
 * `*` (anything but empty), `*suffix`, `prefix*`, else exact; `prefix` is prepended
 * (the `spiffe://` of principals), which turns a suffix match into a regex.
 */
export function stringMatcher(value: string, prefix = ''): Matcher {
  if (value === '*') return regexMatcher('.+');
  if (value.startsWith('*')) {
    return prefix === '' ? { suffix: value.slice(1) } : regexMatcher(`${quoteMeta(prefix)}.*${quoteMeta(value.slice(1))}`);
  }
  if (value.endsWith('*')) return { prefix: prefix + value.slice(0, -1) };
  return { exact: prefix + value };
}

/** A header's value: `*` means present; the empty prefix or suffix Envoy refuses never arises. */
export function headerMatcher(name: string, value: string, ignoreCase = false): Matcher {
  if (value === '*') return { name, present_match: true };
  if (value.startsWith('*')) return { name, string_match: withCase({ suffix: value.slice(1) }, ignoreCase) };
  if (value.endsWith('*')) return { name, string_match: withCase({ prefix: value.slice(0, -1) }, ignoreCase) };
  return { name, string_match: withCase({ exact: value }, ignoreCase) };
}

export const matchOneTemplate = '{*}';
export const matchAnyTemplate = '{**}';

// Envoy's uri_template operators: `*` is one or more pchars of one segment,
// `**` zero or more pchars across segments (it is always the last operator).
const segmentChars = "a-zA-Z0-9._~%!$&'()+,;:@=";
const oneSegment = `[${segmentChars}-]+`;
const anySegments = `[${segmentChars}/-]*`;

export const isPathTemplate = (path: string): boolean => path.includes(matchOneTemplate) || path.includes(matchAnyTemplate);

/**
 * A path of `to.operation.paths`: Istio's `{*}`/`{**}` templates become the regex
 * Envoy's uri_template matcher compiles them to (gRPC has no uri_template), the
 * rest `*`, `*suffix`, `prefix*` or exact.
 */
export function pathMatcher(path: string): Matcher {
  if (!isPathTemplate(path)) return stringMatcher(path);
  const regex = path
    .split(/(\{\*\*\}|\{\*\})/)
    .map((part) => (part === matchAnyTemplate ? anySegments : part === matchOneTemplate ? oneSegment : quoteMeta(part)))
    .join('');
  return regexMatcher(regex);
}

/** An address or CIDR as Envoy's CidrRange; undefined when it is neither. */
export function cidrRange(value: string): Matcher | undefined {
  const [address = '', bits, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return undefined;
  const max = family === 4 ? 32 : 128;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return undefined;
  const prefixLen = bits === undefined ? max : Number(bits);
  if (prefixLen > max) return undefined;
  return { address_prefix: address, prefix_len: { value: prefixLen } };
}

/** A claim of the verified JWT payload, `[a][b]` nesting included, as in Istio. */
export function jwtClaimMatcher(claims: string[], value: Matcher): Matcher {
  return {
    filter: jwtFilterName,
    path: [jwtPayloadKey, ...claims].map((key) => ({ key })),
    value,
  };
}

/** The values of a claim that may be a string or a list of strings (aud, groups...): either form matches. */
export function jwtListClaimMatcher(claims: string[], values: string[]): Matcher {
  const value = oneOf(values.map((v) => ({ string_match: stringMatcher(v) })));
  return jwtClaimMatcher(claims, { or_match: { value_matchers: [{ list_match: { one_of: value } }, value] } });
}

function oneOf(matchers: Matcher[]): Matcher {
  return matchers.length === 1 ? (matchers[0] as Matcher) : { or_match: { value_matchers: matchers } };
}
