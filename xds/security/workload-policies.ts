// Which security policies apply to one workload, as Istio selects them: the root
// namespace's and the workload namespace's without a selector, and those in the
// workload's (or the root) namespace whose selector matches its labels. Pure.
import type { IAuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import { byAge, emptyIstioConfig, type AuthorizationPolicySpec, type ConfigObject } from '../model/istio-config.js';
import type { MeshModel } from '../model/mesh-model.js';
import { labelsMatch } from '../traffic/host-names.js';
import type { Workload } from './peer-authentication-mode.js';

export function appliesTo(
  policy: { namespace: string; spec: { selector?: { matchLabels?: Record<string, string> } } },
  workload: Workload,
  rootNamespace: string,
): boolean {
  // A selector in the root namespace selects across the mesh, as Istio's AuthorizationPolicy and RequestAuthentication do.
  // Policies attached by targetRef(s) are for gateways and waypoints, never for sidecars (as Istio).
  const spec = policy.spec as { targetRef?: unknown; targetRefs?: unknown[] };
  if (spec.targetRef || (spec.targetRefs?.length ?? 0) > 0) return false;
  // An empty selector selects like no selector, as in Istio.
  if (Object.keys(policy.spec.selector?.matchLabels ?? {}).length > 0)
    return (
      (policy.namespace === workload.namespace || policy.namespace === rootNamespace) &&
      labelsMatch(policy.spec.selector?.matchLabels, workload.labels)
    );
  return policy.namespace === workload.namespace || policy.namespace === rootNamespace;
}

/** The AuthorizationPolicies of a workload, oldest first, as Kubernetes objects. */
export function authorizationPoliciesFor(model: MeshModel, workload: Workload): IAuthorizationPolicy[] {
  const rootNamespace = model.rootNamespace ?? 'istio-system';
  return (model.istio ?? emptyIstioConfig()).authorizationPolicies
    .filter((policy) =>
      appliesTo(
        policy as ConfigObject<AuthorizationPolicySpec & { selector?: { matchLabels?: Record<string, string> } }>,
        workload,
        rootNamespace,
      ),
    )
    .sort(byAge)
    .map((policy) => ({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: policy.name, namespace: policy.namespace },
      spec: policy.spec,
    }));
}
