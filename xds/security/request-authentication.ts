// The RequestAuthentications of one workload as Envoy's jwt_authn filter, as
// Istio builds it: one provider per JWT rule (`origins-<index>`, rules sorted by
// issuer), and a requirement that accepts a request without a token but
// rejects (401) one whose token fails to verify. Rejecting requests without a
// token is AuthorizationPolicy's job (`requestPrincipals`).
//
// The verified payload is written to the filter's dynamic metadata
// (`envoy.filters.http.jwt_authn` / `payload`), which the RBAC filters read for
// `requestPrincipals` and `request.auth.*` (see matchers.ts): the standard Envoy
// way, which Istio also uses now, with no Istio-specific filter in between.
//
// Proxyless gRPC has no JWT filter: it gets nothing, and a problem says so.
import type { IRequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';
import { protoDuration } from '../../lib/duration.js';
import { any } from '../protos.js';
import { outboundClusterName } from '../traffic/http-routes.js';
import type { HttpFilter, PolicyProblem } from './authorization-policies.js';
import { jwtFilterName, jwtPayloadKey, type Matcher } from './matchers.js';
import type { SecurityTarget } from './rbac-policy.js';

export const jwtAuthnFilterType = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';

export interface RequestAuthenticationInput {
  /** The RequestAuthentications that apply to this workload, selected by the caller (as for AuthorizationPolicies). */
  policies: IRequestAuthentication[];
  target: SecurityTarget;
  /**
   * JWKS documents the control plane fetched, keyed by `jwksUri` (or, for a rule
   * with neither `jwks` nor `jwksUri`, by issuer, after OpenID discovery). A
   * `jwksUri` not in the map is left to Envoy (`remote_jwks`).
   */
  fetchedJwks?: Record<string, string>;
}

export interface RequestAuthenticationFilters {
  /** Zero or one jwt_authn filter: after the CUSTOM filters, before the RBAC ones (authorization-policies.ts). */
  filters: HttpFilter[];
  problems: PolicyProblem[];
}

type JwtRule = NonNullable<NonNullable<IRequestAuthentication['spec']>['jwtRules']>[number];

/**
 * An RSA key nobody holds the private half of: a rule whose keys are unknown
 * rejects every token it would verify (Istio's fail-closed fake JWKS).
 */
export const unresolvedJwks = JSON.stringify({
  keys: [
    {
      kty: 'RSA',
      alg: 'RS256',
      use: 'sig',
      kid: 'weft-unresolved',
      n: 'yIAht0GOwhyqyaZeay-KOFtvDZa_yRjl1awFqLojVWf2cxrDpM7DNjAzRbmhb_6-YCNZKLY38JdOX3_VCcVOj7CZQoaEvSDJUc2LkEnhxP-Op014IPRf3gE46U0Q1tuMAtIFUuARXxtobk0j6vOByagDf7lIZLQImYNO_SY0F7mCC4qlpSUblc0lOXO1GYfY5B_3aHZVjj8TcuZc5bhd9YTxAKdr5w6KNhc9X5PTuWlArGpve64KCXyCc9EpcE0sZzvied4a89GbhKwqSLiOwaJygKGB5cmmHfwic9LLAguczTomeerGfnv3whyTSDlRwuZmyCMqmz3tZofOo92J5w',
      e: 'AQAB',
    },
  ],
});

/** Claims Istio always treats as space-delimited lists. */
const defaultSpaceDelimitedClaims = ['permission', 'scope'];

export function requestAuthenticationFilters(input: RequestAuthenticationInput): RequestAuthenticationFilters {
  const problems: PolicyProblem[] = [];
  const policies = [...input.policies].sort((a, b) => key(a).localeCompare(key(b)));
  if (input.target === 'grpc') {
    for (const policy of policies) {
      if (!policy.spec?.jwtRules?.length) continue;
      problems.push({
        policy: key(policy),
        message:
          'proxyless gRPC: RequestAuthentication is not supported (gRPC has no JWT filter); tokens are not validated here, ' +
          'and AuthorizationPolicy rules on requestPrincipals or request.auth.* fail closed',
      });
    }
    return { filters: [], problems };
  }
  const rules = policies
    .flatMap((policy) => (policy.spec?.jwtRules ?? []).map((rule) => ({ rule, policy: key(policy) })))
    .sort((a, b) => (a.rule.issuer ?? '').localeCompare(b.rule.issuer ?? ''));
  if (rules.length === 0) return { filters: [], problems };

  const providers: Record<string, Matcher> = {};
  rules.forEach(({ rule, policy }, index) => {
    providers[`origins-${index}`] = jwtProvider(rule, input.fetchedJwks ?? {}, (message) =>
      problems.push({ policy, message: `Envoy sidecar: ${message}` }),
    );
  });
  const names = Object.keys(providers);
  const providerOrMissing = (name: string): Matcher => ({
    requires_any: { requirements: [{ provider_name: name }, { allow_missing: {} }] },
  });
  // One provider: its token, if any, must verify. Several: every token present
  // must verify (the AND), or one provider's must (the OR), for providers
  // that read the same location.
  const requires: Matcher =
    names.length === 1
      ? providerOrMissing(names[0] as string)
      : {
          requires_any: {
            requirements: [
              ...names.map((provider_name) => ({ provider_name })),
              { requires_all: { requirements: names.map(providerOrMissing) } },
            ],
          },
        };
  const config = { providers, rules: [{ match: { prefix: '/' }, requires }], bypass_cors_preflight: true };
  return { filters: [{ name: jwtFilterName, typed_config: any(jwtAuthnFilterType, config) }], problems };
}

function jwtProvider(rule: JwtRule, fetched: Record<string, string>, report: (message: string) => void): Matcher {
  const jwksUri = rule.jwksUri ?? rule.jwks_uri;
  let timeout: Matcher = { seconds: 5 };
  if (rule.timeout) {
    try {
      timeout = protoDuration(rule.timeout);
    } catch (error) {
      report(`issuer ${rule.issuer ?? ''}: ${(error as Error).message}; 5s is used`);
    }
  }
  return {
    ...(rule.issuer ? { issuer: rule.issuer } : {}),
    ...(rule.audiences?.length ? { audiences: rule.audiences } : {}),
    ...jwksSource(rule, jwksUri, fetched, timeout, report),
    ...(rule.forwardOriginalToken ? { forward: true } : {}),
    ...(rule.fromHeaders?.length
      ? { from_headers: rule.fromHeaders.map((h) => ({ name: h.name, ...(h.prefix ? { value_prefix: h.prefix } : {}) })) }
      : {}),
    ...(rule.fromParams?.length ? { from_params: rule.fromParams } : {}),
    ...(rule.fromCookies?.length ? { from_cookies: rule.fromCookies } : {}),
    ...(rule.outputPayloadToHeader ? { forward_payload_header: rule.outputPayloadToHeader } : {}),
    payload_in_metadata: jwtPayloadKey,
    normalize_payload_in_metadata: {
      space_delimited_claims: [...new Set([...(rule.spaceDelimitedClaims ?? []), ...defaultSpaceDelimitedClaims])].sort(),
    },
    ...(rule.outputClaimToHeaders?.length
      ? { claim_to_headers: rule.outputClaimToHeaders.map((c) => ({ header_name: c.header, claim_name: c.claim })) }
      : {}),
  };
}

function jwksSource(
  rule: JwtRule,
  jwksUri: string | undefined,
  fetched: Record<string, string>,
  timeout: Matcher,
  report: (message: string) => void,
): Matcher {
  if (rule.jwks) return { local_jwks: { inline_string: rule.jwks } };
  if (jwksUri) {
    const document = fetched[jwksUri];
    if (document !== undefined) return { local_jwks: { inline_string: document } };
    let url: URL | undefined;
    try {
      url = new URL(jwksUri);
    } catch {
      url = undefined;
    }
    if (url && (url.protocol === 'https:' || url.protocol === 'http:')) {
      const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
      return {
        remote_jwks: {
          http_uri: { uri: jwksUri, cluster: outboundClusterName(port, url.hostname), timeout },
          cache_duration: { seconds: 300 },
        },
      };
    }
    report(`issuer ${rule.issuer ?? ''}: jwksUri ${JSON.stringify(jwksUri)} is not an http(s) URL; every token of this issuer is rejected`);
    return { local_jwks: { inline_string: unresolvedJwks } };
  }
  const discovered = rule.issuer ? fetched[rule.issuer] : undefined;
  if (discovered !== undefined) return { local_jwks: { inline_string: discovered } };
  report(`issuer ${rule.issuer ?? ''}: no jwks, no jwksUri and no keys discovered for the issuer; every token of this issuer is rejected`);
  return { local_jwks: { inline_string: unresolvedJwks } };
}

function key(policy: IRequestAuthentication): string {
  return `${policy.metadata?.namespace ?? ''}/${policy.metadata?.name ?? ''}`;
}
