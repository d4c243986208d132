// Semantic validation of Istio's APIs, after Istio's own pkg/config/validation: what the CRDs'
// structural schemas and CEL rules cannot say. Pure: an object in, its problems out, each naming
// its field. References to other objects are never checked here (objects arrive in any order).
import { describeIssue, errorsOf, Issues, type FieldIssue } from './field-issues.js';
import { validateAuthorizationPolicy } from './authorization-policy.js';
import { validateDestinationRule } from './destination-rule.js';
import { validatePeerAuthentication } from './peer-authentication.js';
import { validateRequestAuthentication } from './request-authentication.js';
import { validateServiceEntry } from './service-entry.js';
import { validateSidecar } from './sidecar.js';
import { validateVirtualService } from './virtual-service.js';

export { describeIssue, errorsOf, warningsOf, type FieldIssue } from './field-issues.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each validator narrows the spec to its own typed model
type SpecValidator = (issues: Issues, spec: any) => void;

const validators: Record<string, { group: string; validate: SpecValidator }> = {
  VirtualService: { group: 'networking.istio.io', validate: validateVirtualService },
  DestinationRule: { group: 'networking.istio.io', validate: validateDestinationRule },
  ServiceEntry: { group: 'networking.istio.io', validate: validateServiceEntry },
  Sidecar: { group: 'networking.istio.io', validate: validateSidecar },
  PeerAuthentication: { group: 'security.istio.io', validate: validatePeerAuthentication },
  AuthorizationPolicy: { group: 'security.istio.io', validate: validateAuthorizationPolicy },
  RequestAuthentication: { group: 'security.istio.io', validate: validateRequestAuthentication },
};

/** Versions Istio still serves but has replaced with v1. */
const deprecatedVersions = new Set(['v1alpha3', 'v1beta1']);

/** True when this validator has something to say about objects of that kind. */
export function validatesKind(apiVersion: unknown, kind: unknown): boolean {
  const group = typeof apiVersion === 'string' ? apiVersion.split('/')[0] : undefined;
  return typeof kind === 'string' && validators[kind]?.group === group;
}

/**
 * Every problem with an Istio object: errors (the object must be refused) and warnings
 * (`warning: true`: admitted, but worth telling the user). Kinds it does not know have none.
 */
export function validateIstioObject(object: unknown): FieldIssue[] {
  const issues = new Issues();
  if (!object || typeof object !== 'object' || Array.isArray(object)) {
    issues.error('', 'the object is not a JSON object');
    return issues.list;
  }
  const { apiVersion, kind, spec } = object as { apiVersion?: unknown; kind?: unknown; spec?: unknown };
  if (!validatesKind(apiVersion, kind)) return issues.list;
  const [group, version] = String(apiVersion).split('/');
  if (version && deprecatedVersions.has(version)) {
    issues.warn('apiVersion', `${group}/${version} ${String(kind)} is deprecated; use ${group}/v1`);
  }
  if (spec === undefined || spec === null) {
    // An empty spec is legal for some kinds (an ALLOW-nothing AuthorizationPolicy); validate it as {}.
    (validators[kind as string] as { validate: SpecValidator }).validate(issues, {});
    return issues.list;
  }
  if (typeof spec !== 'object' || Array.isArray(spec)) {
    issues.error('spec', 'spec must be an object');
    return issues.list;
  }
  (validators[kind as string] as { validate: SpecValidator }).validate(issues, spec);
  return issues.list;
}

/** One line for a refusal: every error, `field: message`, separated by semicolons. */
export function refusalMessage(issues: FieldIssue[]): string {
  return errorsOf(issues).map(describeIssue).join('; ');
}
