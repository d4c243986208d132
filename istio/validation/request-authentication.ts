// RequestAuthentication (security.istio.io), after Istio's ValidateRequestAuthentication.
import type { IRequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';
import { durationProblem } from './duration.js';
import { isSet, items, type Issues } from './field-issues.js';
import { validatePolicyTarget } from './workload-selector.js';

type Spec = NonNullable<IRequestAuthentication['spec']>;
const headerName = /^[a-zA-Z0-9!#$%&'*+\-.^_`|~]+$/;

function jwksProblem(jwks: string): string | undefined {
  try {
    const set = JSON.parse(jwks) as { keys?: unknown };
    if (!set || typeof set !== 'object' || !Array.isArray(set.keys)) return 'jwks must be a JSON Web Key Set ({"keys": [...]})';
    if (set.keys.some((key) => !key || typeof key !== 'object' || typeof (key as { kty?: unknown }).kty !== 'string'))
      return 'every key in jwks needs a kty';
    return undefined;
  } catch {
    return 'jwks is not JSON';
  }
}

export function validateRequestAuthentication(issues: Issues, spec: Spec): void {
  validatePolicyTarget(issues, spec);
  items(spec.jwtRules).forEach((rule, i) => {
    const field = `spec.jwtRules[${i}]`;
    if (!rule || typeof rule !== 'object') return issues.error(field, 'jwt rule may not be null');
    // As in Istio: the issuer may be left out only when jwksUri says where the keys are.
    if (!rule.issuer && !rule.jwksUri) issues.error(`${field}.issuer`, 'issuer is required (or at least jwksUri)');
    items(rule.audiences).forEach((audience, j) => {
      if (!audience) issues.error(`${field}.audiences[${j}]`, 'audience must be a non-empty string');
    });
    if (rule.jwksUri && rule.jwks) issues.error(field, 'only one of jwks and jwksUri can be set');
    if (rule.jwksUri) {
      let scheme = '';
      try {
        scheme = new URL(rule.jwksUri).protocol;
      } catch {
        issues.error(`${field}.jwksUri`, `"${rule.jwksUri}" is not a URL`);
      }
      if (scheme && scheme !== 'https:' && scheme !== 'http:')
        issues.error(`${field}.jwksUri`, `URI scheme "${scheme.slice(0, -1)}" is not supported, use https or http`);
    }
    if (rule.jwks) {
      const problem = jwksProblem(rule.jwks);
      if (problem) issues.error(`${field}.jwks`, problem);
    }
    items(rule.fromHeaders).forEach((header, j) => {
      if (!header?.name) issues.error(`${field}.fromHeaders[${j}].name`, 'header name must be a non-empty string');
    });
    items(rule.fromParams).forEach((param, j) => {
      if (!param) issues.error(`${field}.fromParams[${j}]`, 'query parameter must be a non-empty string');
    });
    items((rule as { fromCookies?: string[] }).fromCookies).forEach((cookie, j) => {
      if (!cookie) issues.error(`${field}.fromCookies[${j}]`, 'cookie name must be a non-empty string');
    });
    items(rule.outputClaimToHeaders).forEach((pair, j) => {
      const at = `${field}.outputClaimToHeaders[${j}]`;
      if (!pair?.claim || !pair?.header) issues.error(at, 'header and claim must be non-empty strings');
      else if (!headerName.test(pair.header)) issues.error(`${at}.header`, `"${pair.header}" is not a valid HTTP header name`);
    });
    if (isSet(rule.timeout)) {
      const problem = durationProblem(rule.timeout);
      if (problem) issues.error(`${field}.timeout`, problem);
    }
  });
}
