// Which security policies apply to one workload, as Istio selects them: the root
// namespace's and the workload namespace's without a selector, and those in the
// workload's (or the root) namespace whose selector matches its labels. Pure.
import type { IAuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import type { IRequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';
import { byAge, emptyIstioConfig, type ConfigObject } from '../model/istio-config.js';
import type { MeshModel } from '../model/mesh-model.js';
import { labelsMatch } from '../traffic/host-names.js';
import type { Workload } from './peer-authentication-mode.js';

type Selectable = { namespace: string; spec: { selector?: { matchLabels?: Record<string, string> } } };

export function appliesTo(policy: Selectable, workload: Workload, rootNamespace: string): boolean {
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

/** One kind's policies that select a workload, oldest first, as the Kubernetes objects the translators take. */
function policiesFor<Spec>(
  policies: ReadonlyArray<ConfigObject<Spec>>,
  kind: string,
  model: MeshModel,
  workload: Workload,
): Array<{
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec: Spec;
}> {
  const rootNamespace = model.rootNamespace ?? 'istio-system';
  return policies
    .filter((policy) => appliesTo(policy as unknown as Selectable, workload, rootNamespace))
    .sort(byAge)
    .map((policy) => ({
      apiVersion: 'security.istio.io/v1',
      kind,
      // Annotations travel with the policy: `istio.io/dry-run` turns its rules into shadow rules.
      metadata: { name: policy.name, namespace: policy.namespace, ...(policy.annotations ? { annotations: policy.annotations } : {}) },
      spec: policy.spec,
    }));
}

export function authorizationPoliciesFor(model: MeshModel, workload: Workload): IAuthorizationPolicy[] {
  return policiesFor(
    (model.istio ?? emptyIstioConfig()).authorizationPolicies,
    'AuthorizationPolicy',
    model,
    workload,
  ) as IAuthorizationPolicy[];
}

export function requestAuthenticationsFor(model: MeshModel, workload: Workload): IRequestAuthentication[] {
  return policiesFor(
    (model.istio ?? emptyIstioConfig()).requestAuthentications,
    'RequestAuthentication',
    model,
    workload,
  ) as IRequestAuthentication[];
}
