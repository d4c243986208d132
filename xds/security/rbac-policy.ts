// One rule of an AuthorizationPolicy as one Envoy RBAC policy, after Istio's
// authz model: a `from` is a principal, a `to` a permission, each the AND of its
// fields (a field the OR of its values, its `not` field negated), and every
// `when` condition joins the principal or the permission side. Envoy matches the
// policy when any principal and any permission match.
//
// What a target cannot enforce (a field proxyless gRPC lacks, a value that does
// not parse, an unknown `when` key) never widens an ALLOW: the whole rule is
// dropped. In a DENY (or any policy whose match means "act") only that field is
// dropped, so the rule matches more: both fail closed, as Istio does for
// HTTP-only fields on TCP.
import {
  cidrRange,
  headerMatcher,
  jwtClaimMatcher,
  jwtListClaimMatcher,
  pathMatcher,
  quoteMeta,
  regexMatcher,
  stringMatcher,
  type Matcher,
} from './matchers.js';

export type SecurityTarget = 'sidecar' | 'grpc';

/** The parts of an AuthorizationPolicy rule Weft reads (`@kubernetes-models/istio` lacks `trustDomains`). */
export interface AuthorizationRule {
  from?: Array<{ source?: Source }>;
  to?: Array<{ operation?: Operation }>;
  when?: Array<{ key: string; values?: string[]; notValues?: string[] }>;
}

export interface Source {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  trustDomains?: string[];
  notTrustDomains?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

export interface Operation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface RuleContext {
  target: SecurityTarget;
  /** The namespace of the policy (a `serviceAccounts` value without namespace is in it). */
  namespace: string;
  /** The workload port the filter chain serves: `ports` and `destination.port` are decided here. */
  port: number;
  /** The mesh's trust domain first, then its aliases. */
  trustDomains: string[];
  /** Whether a match widens access (ALLOW): then anything unenforceable drops the whole rule. */
  grantsAccess: boolean;
  /**
   * The rule is for a TCP filter chain (Istio's Generate(forTCP), pilot/pkg/security/authz/model):
   * the HTTP-only attributes (`hosts`, `methods`, `paths`, `requestPrincipals`,
   * `request.headers[...]`, `request.auth.*`) cannot be matched, so a DENY or AUDIT rule
   * is enforced without them and an ALLOW rule naming them is left out.
   */
  forTcp?: boolean;
}

export type RuleOutcome =
  | { policy: Matcher; dropped: string[] }
  /** The rule cannot be enforced as written and grants access: it is left out. */
  | { policy: undefined; dropped: string[] };

/** One value of a field: its matcher, `true`/`false` when decided here, or why it cannot be enforced. */
type Built = Matcher | boolean | { unsupported: string };

interface Field {
  key: string;
  values: string[];
  notValues: string[];
  side: 'principal' | 'permission';
  /** Each value on its own (the field ORs them)... */
  one?: (value: string) => Built;
  /** ...or all values at once (JWT claims, whose list form Envoy matches as a whole). */
  all?: (values: string[]) => Built;
}

const anyMatcher: Matcher = { any: true };

class Unenforceable extends Error {}

/** The Envoy RBAC policy of one rule; `policy` undefined when an ALLOW rule had to be dropped. */
export function rbacPolicy(rule: AuthorizationRule, context: RuleContext): RuleOutcome {
  const dropped: string[] = [];
  const when = (rule.when ?? []).map((condition) => conditionField(condition.key, condition.values, condition.notValues, context));
  const basePrincipal = when.filter((f) => f.side === 'principal');
  const basePermission = when.filter((f) => f.side === 'permission');
  try {
    const principals = (rule.from && rule.from.length > 0 ? rule.from : [{}]).map((from) =>
      combine('principal', [...sourceFields(from.source, context), ...basePrincipal], context, dropped),
    );
    const permissions = (rule.to && rule.to.length > 0 ? rule.to : [{}]).map((to) =>
      combine('permission', [...operationFields(to.operation, context), ...basePermission], context, dropped),
    );
    return { policy: { permissions, principals }, dropped };
  } catch (error) {
    if (error instanceof Unenforceable) return { policy: undefined, dropped: [...dropped, error.message] };
    throw error;
  }
}

function field(
  side: Field['side'],
  key: string,
  values: string[] | undefined,
  notValues: string[] | undefined,
  build: Pick<Field, 'one' | 'all'>,
): Field[] {
  if (!values?.length && !notValues?.length) return [];
  return [{ side, key, values: values ?? [], notValues: notValues ?? [], ...build }];
}

/** Istio's order: principals, requestPrincipals, serviceAccounts, trustDomains, namespaces, remoteIpBlocks, ipBlocks. */
function sourceFields(source: Source | undefined, context: RuleContext): Field[] {
  if (!source) return [];
  return [
    ...field('principal', 'source.principal', aliased(source.principals, context), aliased(source.notPrincipals, context), {
      one: sourcePrincipal,
    }),
    ...field('principal', 'request.auth.principal', source.requestPrincipals, source.notRequestPrincipals, {
      all: requestPrincipal(context),
    }),
    ...field('principal', 'source.serviceAccount', source.serviceAccounts, source.notServiceAccounts, {
      one: serviceAccount(context.namespace),
    }),
    ...field('principal', 'source.trustDomain', source.trustDomains, source.notTrustDomains, { one: trustDomain }),
    ...field('principal', 'source.namespace', source.namespaces, source.notNamespaces, { one: sourceNamespace }),
    ...field('principal', 'remote.ip', source.remoteIpBlocks, source.notRemoteIpBlocks, { one: ip('remote_ip') }),
    ...field('principal', 'source.ip', source.ipBlocks, source.notIpBlocks, { one: ip('direct_remote_ip') }),
  ];
}

/** Istio's order: hosts, methods, paths, ports. */
function operationFields(operation: Operation | undefined, context: RuleContext): Field[] {
  if (!operation) return [];
  return [
    ...field('permission', 'hosts', operation.hosts, operation.notHosts, {
      one: (v) => ({ header: headerMatcher(':authority', v, true) }),
    }),
    ...field('permission', 'methods', operation.methods, operation.notMethods, { one: (v) => ({ header: headerMatcher(':method', v) }) }),
    ...field('permission', 'paths', operation.paths, operation.notPaths, { one: (v) => ({ url_path: { path: pathMatcher(v) } }) }),
    ...field('permission', 'ports', operation.ports, operation.notPorts, { one: servedPort(context.port) }),
  ];
}

/** Whether the port is the one served: the filter chain serves one port, so ports are decided here. */
function servedPort(port: number) {
  return (value: string): Built => {
    if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) return { unsupported: `invalid port ${JSON.stringify(value)}` };
    return Number(value) === port;
  };
}

function conditionField(key: string, values: string[] | undefined, notValues: string[] | undefined, context: RuleContext): Field {
  const make = (side: Field['side'], build: Pick<Field, 'one' | 'all'>): Field => ({
    side,
    key,
    values: values ?? [],
    notValues: notValues ?? [],
    ...build,
  });
  const bracketed = (prefix: string) => key.slice(prefix.length);
  switch (key) {
    case 'source.ip':
      return make('principal', { one: ip('direct_remote_ip') });
    case 'remote.ip':
      return make('principal', { one: ip('remote_ip') });
    case 'source.namespace':
      return make('principal', { one: sourceNamespace });
    case 'source.principal':
      return {
        ...make('principal', { one: sourcePrincipal }),
        values: aliased(values, context) ?? [],
        notValues: aliased(notValues, context) ?? [],
      };
    case 'source.serviceAccount':
      return make('principal', { one: serviceAccount(context.namespace) });
    case 'source.trustDomain':
      return make('principal', { one: trustDomain });
    case 'request.auth.principal':
      return make('principal', { all: requestPrincipal(context) });
    case 'request.auth.audiences':
      return make('principal', { all: jwtClaims(['aud'], context) });
    case 'request.auth.presenter':
      return make('principal', { all: jwtClaims(['azp'], context) });
    case 'destination.ip':
      return make('permission', { one: destinationIp });
    case 'destination.port':
      return make('permission', { one: servedPort(context.port) });
    case 'connection.sni':
      return make('permission', {
        one: (v) =>
          context.target === 'grpc' ? { unsupported: 'not known to proxyless gRPC' } : { requested_server_name: stringMatcher(v) },
      });
  }
  if (key.startsWith('request.headers')) {
    const name = bracketed('request.headers').match(/^\[([^[\]]+)\]$/)?.[1];
    return make('principal', { one: (v) => (name ? { header: headerMatcher(name, v) } : { unsupported: 'invalid key' }) });
  }
  if (key.startsWith('request.auth.claims')) {
    const claims = nestedClaims(bracketed('request.auth.claims'));
    return make('principal', { all: claims ? jwtClaims(claims, context) : () => ({ unsupported: 'invalid key' }) });
  }
  return make('principal', { one: () => ({ unsupported: 'unknown condition key' }) });
}

/** `[a]` or `[a][b]`: the claim's path; undefined when malformed. */
function nestedClaims(brackets: string): string[] | undefined {
  const parts = [...brackets.matchAll(/\[([^[\]]+)\]/g)].map((m) => m[1] as string);
  return parts.length > 0 && parts.map((p) => `[${p}]`).join('') === brackets ? parts : undefined;
}

function ip(kind: 'direct_remote_ip' | 'remote_ip') {
  return (value: string): Built => {
    const range = cidrRange(value);
    return range ? { [kind]: range } : { unsupported: `invalid IP or CIDR ${JSON.stringify(value)}` };
  };
}

function destinationIp(value: string): Built {
  const range = cidrRange(value);
  return range ? { destination_ip: range } : { unsupported: `invalid IP or CIDR ${JSON.stringify(value)}` };
}

const authenticated = (name: Matcher): Matcher => ({ authenticated: { principal_name: name } });

function sourcePrincipal(value: string): Built {
  return authenticated(stringMatcher(value, 'spiffe://'));
}

function sourceNamespace(value: string): Built {
  return authenticated(regexMatcher(`.*/ns/${value.split('*').map(quoteMeta).join('.*')}/.*`));
}

function serviceAccount(policyNamespace: string) {
  return (value: string): Built => {
    const slash = value.indexOf('/');
    const [namespace, account] = slash < 0 ? [policyNamespace, value] : [value.slice(0, slash), value.slice(slash + 1)];
    return authenticated(regexMatcher(`spiffe://.+/ns/${quoteMeta(namespace)}/(.+/|)sa/${quoteMeta(account)}(/.+)?`));
  };
}

function trustDomain(value: string): Built {
  if (value === '*') return authenticated({ prefix: 'spiffe://' });
  if (!value.includes('*')) return authenticated({ prefix: `spiffe://${value}/` });
  const star = value.indexOf('*');
  return authenticated(regexMatcher(`spiffe://${quoteMeta(value.slice(0, star))}[^/]*${quoteMeta(value.slice(star + 1))}/.*`));
}

const jwtOnly: Built = { unsupported: 'needs the JWT filter (RequestAuthentication), which proxyless gRPC does not have' };

/** `iss/sub` (the last `/` splits, issuers being URLs), with Istio's wildcards on either side. */
function requestPrincipal(context: RuleContext) {
  return (values: string[]): Built => {
    if (context.target === 'grpc') return jwtOnly;
    const any = regexMatcher('.+');
    const alternatives = values.map((value) => {
      const slash = value.lastIndexOf('/');
      const [iss, sub] = slash >= 0 ? [value.slice(0, slash), value.slice(slash + 1)] : [value, ''];
      let matchIss: Matcher;
      let matchSub: Matcher;
      if (value === '*') [matchIss, matchSub] = [any, any];
      else if (value.startsWith('*')) {
        if (slash >= 0) [matchIss, matchSub] = [iss === '*' ? any : { suffix: iss.slice(1) }, { exact: sub }];
        else [matchIss, matchSub] = [any, { suffix: value.slice(1) }];
      } else if (value.endsWith('*')) {
        if (slash >= 0) [matchIss, matchSub] = [{ exact: iss }, sub === '*' ? any : { prefix: sub.slice(0, -1) }];
        else [matchIss, matchSub] = [{ prefix: value.slice(0, -1) }, any];
      } else [matchIss, matchSub] = [{ exact: iss }, { exact: sub }];
      return {
        and_ids: {
          ids: [
            { metadata: jwtClaimMatcher(['iss'], { string_match: matchIss }) },
            { metadata: jwtClaimMatcher(['sub'], { string_match: matchSub }) },
          ],
        },
      };
    });
    return alternatives.length === 1 ? (alternatives[0] as Matcher) : { or_ids: { ids: alternatives } };
  };
}

function jwtClaims(claims: string[], context: RuleContext) {
  return (values: string[]): Built => (context.target === 'grpc' ? jwtOnly : { metadata: jwtListClaimMatcher(claims, values) });
}

/**
 * Principals in the trust domain (or an alias, or `cluster.local`) also match
 * under every alias; `*`-prefixed trust domains are kept as written (Istio's bundle).
 */
function aliased(principals: string[] | undefined, context: RuleContext): string[] | undefined {
  if (!principals || context.trustDomains.length <= 1) return principals;
  const result: string[] = [];
  const add = (p: string) => {
    if (!result.includes(p)) result.push(p);
  };
  for (const principal of principals) {
    const parts = principal.split('/');
    const domain = parts[0] ?? '';
    if (
      parts.length !== 5 ||
      domain === '*' ||
      !(domain === 'cluster.local' || context.trustDomains.some((td) => domainsOverlap(domain, td)))
    ) {
      add(principal);
      continue;
    }
    for (const td of context.trustDomains) add(suffixMatch(domain, td) ? principal : [td, ...parts.slice(1)].join('/'));
  }
  return result;
}

const prefixMatch = (a: string, pattern: string) => pattern.endsWith('*') && a.startsWith(pattern.slice(0, -1));
const suffixMatch = (a: string, pattern: string) => pattern.startsWith('*') && a.endsWith(pattern.slice(1));
const domainsOverlap = (a: string, b: string) =>
  a === b || b === '*' || prefixMatch(a, b) || prefixMatch(b, a) || suffixMatch(a, b) || suffixMatch(b, a);

/** The keys Istio's generators refuse on TCP ("%q is HTTP only", pilot/pkg/security/authz/model/generator.go). */
const httpOnlyKeys = new Set(['hosts', 'methods', 'paths', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter']);
const isHttpOnly = (key: string) => httpOnlyKeys.has(key) || key.startsWith('request.headers') || key.startsWith('request.auth.claims');

/** The AND of a principal's or permission's fields; `any` alone when none is left. */
function combine(side: Field['side'], fields: Field[], context: RuleContext, dropped: string[]): Matcher {
  const or = side === 'principal' ? (ids: Matcher[]) => ({ or_ids: { ids } }) : (rules: Matcher[]) => ({ or_rules: { rules } });
  const not = side === 'principal' ? (m: Matcher) => ({ not_id: m }) : (m: Matcher) => ({ not_rule: m });
  const and: Matcher[] = [];
  for (const f of fields.filter((f) => f.side === side)) {
    for (const [values, negated] of [
      [f.values, false],
      [f.notValues, true],
    ] as const) {
      if (values.length === 0) continue;
      const built: Built[] =
        context.forTcp && isHttpOnly(f.key)
          ? [{ unsupported: 'HTTP only, and this is a TCP filter chain' }]
          : f.all
            ? [f.all(values)]
            : values.map((v) => (f.one as (value: string) => Built)(v));
      const problem = built.find((b): b is { unsupported: string } => typeof b === 'object' && 'unsupported' in b);
      if (problem) {
        const message = `${negated ? 'not ' : ''}${f.key}: ${problem.unsupported}`;
        if (context.grantsAccess) throw new Unenforceable(message);
        dropped.push(message);
        continue;
      }
      // Values decided here (ports): true matches, false never does.
      const decided = built.filter((b): b is boolean => typeof b === 'boolean');
      const matchers = built.filter((b): b is Matcher => typeof b === 'object');
      if (decided.length > 0) {
        const matches = decided.includes(true);
        if (matches !== negated) continue;
        and.push(not(anyMatcher));
        continue;
      }
      const combined = f.all ? (matchers[0] as Matcher) : or(matchers);
      and.push(negated ? not(combined) : combined);
    }
  }
  const ids = and.length > 0 ? and : [anyMatcher];
  return side === 'principal' ? { and_ids: { ids } } : { and_rules: { rules: ids } };
}
