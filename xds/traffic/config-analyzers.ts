// Istio's analyzers over networking objects alone, each a pure function with
// Istio's code, level and message text (pkg/config/analysis/msg/messages.yaml):
//   IST0109 ConflictingMeshGatewayVirtualServiceHosts (analyzers/virtualservice/conflictingmeshgatewayhosts.go)
//   IST0130 VirtualServiceUnreachableRule, IST0131 VirtualServiceIneffectiveMatch
//           (pkg/config/validation/validation.go analyzeUnreachable*Rules)
//   IST0128/IST0129 NoServerCertificateVerification{Destination,Port}Level (analyzers/destinationrule/ca-certificates.go)
// config-analysis.ts puts their messages on each object's verdict (status and `weft analyze`).
import type { ConfigObject, DestinationRuleSpec, HttpMatch, VirtualServiceSpec } from '../model/istio-config.js';
import { resolveHost } from './host-names.js';

/** Istio's host.Name.Matches: whether two hosts, either possibly a wildcard, overlap. */
export function hostsOverlap(a: string, b: string): boolean {
  const wa = a.startsWith('*');
  const wb = b.startsWith('*');
  if (wa && wb) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (wa) return b.endsWith(a.slice(1));
  if (wb) return a.endsWith(b.slice(1));
  return a === b;
}

export interface AnalysisMessage {
  /** Istio's analyzer code and name, e.g. IST0101 ReferencedResourceNotFound. */
  code: string;
  name: string;
  level: 'ERROR' | 'WARNING' | 'INFO';
  message: string;
}

const meshGateway = 'mesh';

/** The canonical JSON of a match (object keys sorted, the match's `name` left out), so equal matches compare equal. */
function matchKey(match: unknown): string {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(canonical)
      : value && typeof value === 'object'
        ? Object.fromEntries(
            Object.entries(value)
              .filter(([, v]) => v !== undefined)
              .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
              .map(([k, v]) => [k, canonical(v)]),
          )
        : value;
  const { name: _name, ...rest } = (match ?? {}) as { name?: string };
  return JSON.stringify(canonical(rest));
}

/** Istio's routeName/requestName: `"name"` when named (HTTP only), else `#index`. */
const ruleName = (route: { name?: string }, index: number) => (route.name ? JSON.stringify(route.name) : `#${index}`);
const matchName = (match: { name?: string }, index: number) => (match.name ? JSON.stringify(match.name) : `#${index}`);

const unreachable = (rule: string, reason: string): AnalysisMessage => ({
  code: 'IST0130',
  name: 'VirtualServiceUnreachableRule',
  level: 'WARNING',
  message: `VirtualService rule ${rule} not used (${reason}).`,
});
const ineffective = (rule: string, match: string, duplicate: string): AnalysisMessage => ({
  code: 'IST0131',
  name: 'VirtualServiceIneffectiveMatch',
  level: 'INFO',
  message: `VirtualService rule ${rule} match ${match} is not used (duplicate/overlapping match in rule ${duplicate}).`,
});

/** What Istio's prefix-overlap check reads of an HTTP match with a URI prefix. */
interface PrefixMatch {
  rule: string;
  match: string;
  prefix: string;
  port: number;
  method: string;
  authority: string;
  headers: Record<string, string>;
  queryParams: Record<string, string>;
  withoutHeaders: Record<string, string>;
}

type StringMatch = { exact?: string; prefix?: string } | undefined;
const exactOrPrefix = (m: StringMatch) => (m?.exact ? `exact:${m.exact}` : m?.prefix ? `prefix:${m.prefix}` : '');
const mapOf = (m: Record<string, StringMatch> | undefined) =>
  Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, exactOrPrefix(v)]));

function prefixMatchOf(match: HttpMatch, rule: string, name: string): PrefixMatch | undefined {
  const prefix = (match.uri as StringMatch)?.prefix;
  if (!prefix) return undefined;
  return {
    rule,
    match: name,
    prefix,
    port: match.port ?? 0,
    // No method means GET to Istio's check.
    method: exactOrPrefix(match.method as StringMatch) || 'exact:GET',
    authority: exactOrPrefix(match.authority as StringMatch),
    headers: mapOf(match.headers as Record<string, StringMatch>),
    queryParams: mapOf(match.queryParams as Record<string, StringMatch>),
    withoutHeaders: mapOf(match.withoutHeaders as Record<string, StringMatch>),
  };
}

/** Istio's coveredValidation: whether the earlier match `a` takes every request the later `b` would. */
function covers(a: PrefixMatch, b: PrefixMatch): boolean {
  if (!b.prefix.startsWith(a.prefix) || a.port !== b.port) return false;
  const within = (x: string, y: string) => x === y || x.startsWith(y);
  if (!within(a.method, b.method) || !within(a.authority, b.authority)) return false;
  for (const [ma, mb] of [
    [a.headers, b.headers],
    [a.queryParams, b.queryParams],
    [a.withoutHeaders, b.withoutHeaders],
  ] as const) {
    if (Object.keys(ma).length !== Object.keys(mb).length) return false;
    for (const [key, value] of Object.entries(ma)) if (!(key in mb) || !within(value, mb[key] as string)) return false;
  }
  return true;
}

/**
 * IST0130 and IST0131 for one VirtualService, as Istio's validation warns: a rule after a
 * rule without matches, a rule all of whose matches came before, a match repeated from an
 * earlier rule, and (HTTP) a URI-prefix match an earlier prefix match already covers. Rules
 * are numbered from 0 per protocol (`#1`), HTTP rules and matches by name when they have one.
 */
export function unreachableRules(spec: VirtualServiceSpec): AnalysisMessage[] {
  const messages: AnalysisMessage[] = [];
  const sections: Array<{ routes: Array<{ name?: string; match?: unknown[] }>; http: boolean }> = [
    { routes: (spec.http ?? []) as Array<{ name?: string; match?: unknown[] }>, http: true },
    { routes: (spec.tcp ?? []) as Array<{ match?: unknown[] }>, http: false },
    { routes: (spec.tls ?? []) as Array<{ match?: unknown[] }>, http: false },
  ];
  for (const { routes, http } of sections) {
    const seen = new Map<string, number>();
    let catchAll = -1;
    const prefixes: PrefixMatch[] = [];
    routes.forEach((route, i) => {
      if (!route) return;
      const name = http ? ruleName(route, i) : `#${i}`;
      const matches = route.match ?? [];
      if (matches.length === 0) {
        if (catchAll >= 0) messages.push(unreachable(name, 'only the last rule can have no matches'));
        catchAll = i;
        return;
      }
      let duplicates = 0;
      matches.forEach((match, j) => {
        if (catchAll >= 0) {
          messages.push(unreachable(name, 'route without matches defined before'));
          return;
        }
        const key = matchKey(match);
        const earlier = seen.get(key);
        const thisMatch = http ? matchName(match as { name?: string }, j) : `#${j}`;
        if (earlier !== undefined) {
          messages.push(ineffective(name, thisMatch, http ? ruleName(routes[earlier] ?? {}, earlier) : `#${earlier}`));
          duplicates++;
          return;
        }
        seen.set(key, i);
        const prefix = http ? prefixMatchOf(match as HttpMatch, name, thisMatch) : undefined;
        if (prefix) prefixes.push(prefix);
      });
      if (duplicates === matches.length) messages.push(unreachable(name, 'all matches used by prior rules'));
    });
    prefixes.forEach((a, i) => {
      for (const b of prefixes.slice(i + 1)) {
        if (b.prefix === a.prefix) continue;
        if (covers(a, b))
          messages.push(ineffective(b.rule, `${b.match} of prefix ${b.prefix}`, `${a.match} of prefix ${a.prefix} on ${a.rule}`));
      }
    });
  }
  return messages;
}

/**
 * IST0109 for every VirtualService bound to the mesh gateway (no `gateways`, or `mesh` among
 * them): two or more that define the same host, within the same export scope (`*` when
 * exported everywhere, else each namespace exported to; a namespace scope also conflicts
 * with `*`-scoped VirtualServices whose host matches). Returns each conflicting object's
 * message, keyed `namespace/name`. Istio reports this as an Error: Envoy gets only one of them.
 */
export function conflictingMeshGatewayHosts(
  virtualServices: ReadonlyArray<ConfigObject<VirtualServiceSpec>>,
  clusterDomain: string,
): Map<string, AnalysisMessage[]> {
  const byScopedHost = new Map<string, { scope: string; host: string; objects: Array<ConfigObject<VirtualServiceSpec>> }>();
  for (const vs of virtualServices) {
    const gateways = vs.spec.gateways ?? [];
    if (gateways.length > 0 && !gateways.includes(meshGateway)) continue;
    const exportTo = vs.spec.exportTo ?? [];
    const scopes =
      exportTo.length === 0 || exportTo.includes('*') ? ['*'] : [...new Set(exportTo.map((e) => (e === '.' ? vs.namespace : e)))];
    for (const scope of scopes)
      for (const host of vs.spec.hosts ?? []) {
        const fqdn = resolveHost(host, vs.namespace, clusterDomain);
        const key = `${scope}/${fqdn}`;
        const entry = byScopedHost.get(key) ?? { scope, host: fqdn, objects: [] };
        entry.objects.push(vs);
        byScopedHost.set(key, entry);
      }
  }
  const out = new Map<string, AnalysisMessage[]>();
  const reported = new Set<string>();
  for (const [key, { scope, host, objects }] of byScopedHost) {
    const all = [...objects];
    if (scope !== '*')
      for (const other of byScopedHost.values())
        if (other.scope === '*' && hostsOverlap(host, other.host)) for (const o of other.objects) if (!all.includes(o)) all.push(o);
    if (all.length < 2) continue;
    const names = all.map((o) => `${o.namespace}/${o.name}`).sort();
    for (const o of all) {
      const id = `${o.namespace}/${o.name}`;
      if (reported.has(id)) continue;
      reported.add(id);
      out.set(id, [
        ...(out.get(id) ?? []),
        {
          code: 'IST0109',
          name: 'ConflictingMeshGatewayVirtualServiceHosts',
          level: 'ERROR',
          message: `The VirtualServices ${names.join(',')} associated with mesh gateway define the same host ${key} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
        },
      ]);
    }
  }
  return out;
}

/**
 * IST0128 (traffic policy) and IST0129 (port level): TLS origination (`SIMPLE` or `MUTUAL`)
 * without `caCertificates`, so the server's certificate is not verified, unless a
 * `credentialName` with a `workloadSelector` supplies it.
 */
export function serverCertificateVerification(rule: ConfigObject<DestinationRuleSpec>): AnalysisMessage[] {
  type Tls = { mode?: string; caCertificates?: string; credentialName?: string } | undefined;
  const unverified = (tls: Tls) =>
    (tls?.mode === 'SIMPLE' || tls?.mode === 'MUTUAL') && !tls.caCertificates && !(tls.credentialName && rule.spec.workloadSelector);
  const who = `DestinationRule ${rule.namespace}/${rule.name} in namespace ${rule.namespace}`;
  const messages: AnalysisMessage[] = [];
  const tls = rule.spec.trafficPolicy?.tls as Tls;
  if (unverified(tls))
    messages.push({
      code: 'IST0128',
      name: 'NoServerCertificateVerificationDestinationLevel',
      level: 'WARNING',
      message: `${who} has TLS mode set to ${tls?.mode} but no caCertificates are set to validate server identity for host: ${rule.spec.host}`,
    });
  for (const settings of rule.spec.trafficPolicy?.portLevelSettings ?? []) {
    const portTls = settings.tls as Tls;
    if (unverified(portTls))
      messages.push({
        code: 'IST0129',
        name: 'NoServerCertificateVerificationPortLevel',
        level: 'WARNING',
        message: `${who} has TLS mode set to ${portTls?.mode} but no caCertificates are set to validate server identity for host: ${rule.spec.host} at port ${(settings.port as { number?: number } | undefined)?.number ?? ''}`,
      });
  }
  return messages;
}
