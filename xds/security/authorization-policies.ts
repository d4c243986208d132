// The AuthorizationPolicies of one workload as the HTTP filters of its inbound
// HTTP connection manager, with Istio's semantics: CUSTOM policies ask their
// extension provider (ext_authz) first, then any matching DENY policy denies,
// then, if there is any ALLOW policy, a request must match one of them (an ALLOW
// policy without rules, `spec: {}`, matches nothing: deny all; a rule `{}`
// matches everything: allow all). AUDIT policies only mark requests for logging.
//
// Envoy sidecars get all of it. Proxyless gRPC (grpc-js-xds, gRFC A41) gets only
// ALLOW and DENY RBAC filters with the principals and permissions it
// implements; whatever it cannot enforce is reported, and fails closed: a DENY
// rule loses the field and denies more, an ALLOW rule is left out and allows
// less, a CUSTOM policy denies what it matches, AUDIT and dry-run policies are
// left out (they never decide a request).
import type { IAuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import { any } from '../protos.js';
import { extAuthzConfig, extAuthzMatchPrefix, extAuthzShadowStatPrefix, type ExtensionProvider } from './ext-authz.js';
import type { Matcher } from './matchers.js';
import { rbacPolicy, type AuthorizationRule, type SecurityTarget } from './rbac-policy.js';

export type { SecurityTarget } from './rbac-policy.js';
export type { ExtensionProvider } from './ext-authz.js';

export const rbacFilterType = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const extAuthzFilterType = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';

/** An entry of the HttpConnectionManager's `http_filters`. */
export interface HttpFilter {
  name: string;
  typed_config: { type_url: string; value: Buffer };
}

/** Something a policy asks that this workload does not do as written; for the policy's status and `weft analyze`. */
export interface PolicyProblem {
  /** `namespace/name` */
  policy: string;
  message: string;
}

export interface AuthorizationInput {
  /**
   * The policies that apply to this workload, selected by the caller: the root
   * namespace's and the workload namespace's without selector, and those whose
   * `selector.matchLabels` or `targetRefs` select it.
   */
  policies: IAuthorizationPolicy[];
  /** The mesh's trust domain; principals in `cluster.local` or an alias also match under each alias. */
  trustDomain: string;
  trustDomainAliases?: string[];
  /** The workload port the filter chain serves (`to.operation.ports`, `destination.port` are decided against it). */
  port: number;
  target: SecurityTarget;
  /** MeshConfig's extension providers by name, for CUSTOM policies. */
  extensionProviders?: Record<string, ExtensionProvider>;
  /**
   * The filters are for a TCP filter chain (network-rbac.ts makes network filters of them),
   * as Istio's BuildTCP (pilot/pkg/security/authz/builder/builder.go): rules are generated
   * without the HTTP-only attributes (see RuleContext.forTcp), and a CUSTOM policy whose
   * provider is `envoyExtAuthzHttp` is left out, since it cannot check a connection.
   */
  forTcp?: boolean;
}

export interface AuthorizationFilters {
  /**
   * CUSTOM: for each provider, an RBAC filter in shadow mode that records which
   * CUSTOM rule matched, then the ext_authz filter that asks the provider when
   * one did. They go first, before the jwt_authn filter of request-authentication.ts (as in Istio).
   */
  custom: HttpFilter[];
  /** AUDIT, DENY then ALLOW RBAC filters: after jwt_authn (their requestPrincipals read its metadata), before the router. */
  rbac: HttpFilter[];
  problems: PolicyProblem[];
}

type Action = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** Envoy's RBAC policy that never matches: an ALLOW policy without rules. */
const matchNever: Matcher = { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] };

const dryRunAnnotation = 'istio.io/dry-run';

interface Group {
  enforced: Record<string, Matcher>;
  dryRun: Record<string, Matcher>;
  /** Whether any policy is enforced (an enforced ALLOW group with no policy left denies all). */
  hasEnforced: boolean;
}

const newGroup = (): Group => ({ enforced: {}, dryRun: {}, hasEnforced: false });

export function authorizationFilters(input: AuthorizationInput): AuthorizationFilters {
  const problems: PolicyProblem[] = [];
  const groups = { AUDIT: newGroup(), DENY: newGroup(), ALLOW: newGroup() };
  const custom = new Map<string, Group>();
  const grpc = input.target === 'grpc';
  const targetName = grpc ? 'proxyless gRPC' : 'Envoy sidecar';
  const trustDomains = [input.trustDomain, ...(input.trustDomainAliases ?? []).filter((td) => td !== input.trustDomain)];

  for (const policy of [...input.policies].sort((a, b) => key(a).localeCompare(key(b)))) {
    const id = key(policy);
    const report = (message: string) => problems.push({ policy: id, message: `${targetName}: ${message}` });
    const spec = policy.spec ?? {};
    const action: Action = spec.action ?? 'ALLOW';
    const dryRun = (policy.metadata?.annotations?.[dryRunAnnotation] ?? '').toLowerCase() === 'true';
    let group: Group;
    let prefix = '';
    let effective: Action = action;
    if (action === 'AUDIT' && grpc) {
      report('AUDIT policies are not supported (gRPC has no RBAC LOG action); the policy is not applied');
      continue;
    }
    if (dryRun && (grpc || action === 'AUDIT' || action === 'CUSTOM')) {
      report(
        `the ${dryRunAnnotation} annotation is not supported ${grpc ? 'by proxyless gRPC' : `for ${action}`}; the policy is not applied`,
      );
      continue;
    }
    if (action === 'CUSTOM') {
      const providerName = spec.provider?.name ?? '';
      const provider = input.extensionProviders?.[providerName];
      const usable = provider && !grpc ? extAuthzConfig(providerName, provider) : undefined;
      // Istio ignores an HTTP provider on TCP chains ("ignored CUSTOM action with HTTP provider on TCP filter chain").
      if (input.forTcp && usable && !('error' in usable) && provider && 'envoyExtAuthzHttp' in provider) continue;
      if (usable && !('error' in usable)) {
        if (!custom.has(providerName)) custom.set(providerName, newGroup());
        group = custom.get(providerName) as Group;
        prefix = `${extAuthzMatchPrefix}-${providerName}-`;
      } else {
        // Fail closed, as Istio does for a bad CUSTOM action: what the policy would send to the provider is denied.
        const why = grpc
          ? 'CUSTOM policies (ext_authz) are not supported'
          : usable && 'error' in usable
            ? usable.error
            : `extension provider ${JSON.stringify(providerName)} is not defined`;
        report(`${why}; the requests the policy matches are denied`);
        group = groups.DENY;
        effective = 'DENY';
      }
    } else {
      group = groups[action];
    }
    const rules = (spec.rules ?? []) as AuthorizationRule[];
    if (grpc) reportMethods(rules, report);
    const into = dryRun ? group.dryRun : group.enforced;
    if (!dryRun) group.hasEnforced = true;
    const name = (index: number) =>
      `${prefix}ns[${policy.metadata?.namespace ?? ''}]-policy[${policy.metadata?.name ?? ''}]-rule[${index}]${effective !== action ? '-deny-due-to-bad-CUSTOM-action' : ''}`;
    if (rules.length === 0) {
      into[name(0)] = matchNever;
      continue;
    }
    rules.forEach((rule, index) => {
      const outcome = rbacPolicy(rule ?? {}, {
        target: input.target,
        namespace: policy.metadata?.namespace ?? '',
        port: input.port,
        trustDomains,
        grantsAccess: effective === 'ALLOW',
        ...(input.forTcp ? { forTcp: true } : {}),
      });
      if (outcome.policy) {
        into[name(index)] = outcome.policy;
        for (const message of outcome.dropped)
          report(`rule ${index}: ${message}; the rule was enforced without it, so it matches more requests`);
      } else {
        report(`rule ${index}: ${outcome.dropped.join('; ')}; the rule was left out, so it allows nothing`);
      }
    });
  }

  const rbac: HttpFilter[] = [];
  const rbacFilter = (action: 'LOG' | 'DENY' | 'ALLOW', group: Group, shadowPrefix: string): HttpFilter | undefined => {
    const dryRun = Object.keys(group.dryRun).length > 0;
    if (!group.hasEnforced && !dryRun) return undefined;
    // A DENY or LOG filter without policies does nothing; an enforced ALLOW one denies everything.
    if (action !== 'ALLOW' && Object.keys(group.enforced).length === 0 && !dryRun) return undefined;
    const filterAction = action === 'LOG' ? 'AUDIT' : action;
    return filter(`envoy.filters.http.rbac.${filterAction}`, rbacFilterType, {
      ...(group.hasEnforced ? { rules: { action, policies: group.enforced } } : {}),
      ...(dryRun ? { shadow_rules: { action, policies: group.dryRun }, shadow_rules_stat_prefix: shadowPrefix } : {}),
    });
  };
  for (const built of [
    rbacFilter('LOG', groups.AUDIT, ''),
    rbacFilter('DENY', groups.DENY, 'istio_dry_run_deny_'),
    rbacFilter('ALLOW', groups.ALLOW, 'istio_dry_run_allow_'),
  ]) {
    if (built) rbac.push(built);
  }

  const customFilters: HttpFilter[] = [];
  for (const providerName of [...custom.keys()].sort()) {
    const group = custom.get(providerName) as Group;
    const config = extAuthzConfig(providerName, input.extensionProviders?.[providerName] as ExtensionProvider) as Matcher;
    customFilters.push(
      filter(`envoy.filters.http.rbac.CUSTOM.${providerName}`, rbacFilterType, {
        shadow_rules: { action: 'DENY', policies: group.enforced },
        shadow_rules_stat_prefix: extAuthzShadowStatPrefix,
      }),
      filter(`envoy.filters.http.ext_authz.${providerName}`, extAuthzFilterType, config),
    );
  }
  return { custom: customFilters, rbac, problems };
}

function key(policy: IAuthorizationPolicy): string {
  return `${policy.metadata?.namespace ?? ''}/${policy.metadata?.name ?? ''}`;
}

function filter(name: string, typeUrl: string, config: Matcher): HttpFilter {
  return { name, typed_config: any(typeUrl, config) };
}

/** gRPC requests are always POST (Istio's rule): say so when a rule names other methods. */
function reportMethods(rules: AuthorizationRule[], report: (message: string) => void): void {
  for (const [index, rule] of rules.entries()) {
    for (const to of rule?.to ?? []) {
      const others = [...(to.operation?.methods ?? []), ...(to.operation?.notMethods ?? [])].filter((m) => m !== 'POST' && m !== '*');
      if (others.length > 0) report(`rule ${index}: gRPC requests are always POST, so methods ${others.join(', ')} never match one`);
    }
  }
}
