// PeerAuthentication (security.istio.io), after Istio's ValidatePeerAuthentication.
import type { IPeerAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication';
import { entriesOf, isSet, type Issues } from './field-issues.js';
import { validatePolicyTarget } from './workload-selector.js';

type Spec = NonNullable<IPeerAuthentication['spec']>;

export function validatePeerAuthentication(issues: Issues, spec: Spec): void {
  validatePolicyTarget(issues, spec);
  const ports = entriesOf(spec.portLevelMtls);
  if (ports.length > 0 && entriesOf(spec.selector?.matchLabels).length === 0) {
    issues.error(
      'spec.portLevelMtls',
      'portLevelMtls needs a selector with labels: mesh- and namespace-wide policies cannot set port-level mTLS',
    );
  }
  if (isSet(spec.portLevelMtls) && ports.length === 0)
    issues.error('spec.portLevelMtls', 'portLevelMtls, if set, must have at least one port');
  for (const [port] of ports) {
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)
      issues.error(`spec.portLevelMtls[${port}]`, 'port must be in range 1..65535');
  }
}
