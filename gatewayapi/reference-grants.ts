// ReferenceGrant checks (gateway.networking.k8s.io/v1beta1): a reference across namespaces is allowed
// only when a ReferenceGrant in the target's namespace lists the referrer's group, kind and namespace
// in `from` and the target's group, kind (and name, when set) in `to`. After Istio's
// gatewaycommon/references.go (SecretAllowed, BackendAllowed).
import type { ReferenceGrant } from './gateway-api-types.js';

export interface ReferenceTarget {
  /** '' for the core group (Service, Secret). */
  group: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface Referrer {
  group: string;
  kind: string;
  namespace: string;
}

export class ReferenceGrants {
  constructor(private readonly grants: ReadonlyArray<ReferenceGrant>) {}

  /** Whether `from` may refer to `to`; a reference within one namespace needs no grant. */
  allowed(from: Referrer, to: ReferenceTarget): boolean {
    if (from.namespace === to.namespace) return true;
    return this.grants.some(
      (grant) =>
        grant.metadata?.namespace === to.namespace &&
        (grant.spec?.from ?? []).some((f) => f.group === from.group && f.kind === from.kind && f.namespace === from.namespace) &&
        (grant.spec?.to ?? []).some((t) => t.group === to.group && t.kind === to.kind && (!t.name || t.name === to.name)),
    );
  }
}
