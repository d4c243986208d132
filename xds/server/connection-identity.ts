// Whether a proxy on 15012 is who its token says: the namespace and ServiceAccount its
// node claims must be those of the ServiceAccount token it authenticated with, or one
// workload could ask for (and read) another namespace's config. As istiod does with
// PILOT_ENABLE_XDS_IDENTITY_CHECK (on by default): pilot/pkg/xds/auth.go checkConnectionIdentity.
// 15010 (plaintext) proves no identity and is not checked, as in Istio.
import type { DiscoveryNode } from './discovery-types.js';
import { parseProxyId } from './proxy-id.js';

/** What the proxy's token proves (the CA's TokenAuthenticator returns it as its Caller). */
export interface ProvenIdentity {
  namespace: string;
  serviceAccount: string;
}

/** A node claiming another namespace or ServiceAccount than its token: the stream ends with PERMISSION_DENIED. */
export class IdentityMismatch extends Error {}

/** Whether an authentication result carries an identity to check (an authenticator may prove none). */
export function isProvenIdentity(value: unknown): value is ProvenIdentity {
  const v = value as Partial<ProvenIdentity> | null | undefined;
  return typeof v?.namespace === 'string' && typeof v.serviceAccount === 'string';
}

/**
 * Throws IdentityMismatch naming the first claim of `node` that `identity` does not prove:
 * `node.metadata.NAMESPACE` (the namespace whose config Weft generates for the proxy), the
 * namespace in `node.id` (`<type>~<ip>~<pod>.<namespace>~<domain>`, used when NAMESPACE is
 * absent), and `node.metadata.SERVICE_ACCOUNT`. A claim that is absent or empty is not checked
 * (Istio skips an empty ConfigNamespace or ServiceAccount too); a NAMESPACE that is not a
 * string is not read by Weft, which falls back to the node id's, which is checked.
 */
export function checkConnectionIdentity(node: DiscoveryNode, identity: ProvenIdentity): void {
  const proven = `the token's ServiceAccount is ${identity.namespace}/${identity.serviceAccount}`;
  const metadata = node.metadata ?? {};
  const claimedNamespace = metadata['NAMESPACE'];
  if (typeof claimedNamespace === 'string' && claimedNamespace !== '' && claimedNamespace !== identity.namespace)
    throw new IdentityMismatch(`node.metadata.NAMESPACE: the proxy claims namespace ${JSON.stringify(claimedNamespace)}, but ${proven}`);
  const fromId = parseProxyId(node.id)?.namespace;
  if (fromId && fromId !== identity.namespace)
    throw new IdentityMismatch(`node.id: the proxy claims namespace ${JSON.stringify(fromId)} (${node.id}), but ${proven}`);
  const claimedAccount = metadata['SERVICE_ACCOUNT'];
  if (typeof claimedAccount === 'string' && claimedAccount !== '' && claimedAccount !== identity.serviceAccount)
    throw new IdentityMismatch(
      `node.metadata.SERVICE_ACCOUNT: the proxy claims ServiceAccount ${JSON.stringify(claimedAccount)}, but ${proven}`,
    );
}

/**
 * `checkConnectionIdentity`, then records the identity on the node as its `verifiedIdentity` (what
 * sources such as SDS authorize against). `node` is the one the stream just built from the first
 * request, before it is stored or served. Throws IdentityMismatch as `checkConnectionIdentity`.
 */
export function authorizeNode(node: DiscoveryNode, identity: ProvenIdentity): void {
  checkConnectionIdentity(node, identity);
  node.verifiedIdentity = { namespace: identity.namespace, serviceAccount: identity.serviceAccount };
}
