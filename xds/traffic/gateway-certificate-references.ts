// Which `kubernetes-gateway://` Secrets a gateway proxy may read over SDS, as istiod's
// MergedGateway.VerifiedCertificateReferences (pilot/pkg/model/gateway.go). Pure.
import type { GatewaySpec } from '../model/istio-config.js';
import type { MeshModel } from '../model/mesh-model.js';
import type { DiscoveryNode } from '../server/discovery-types.js';
import { gatewaysSelecting } from './gateway-servers.js';
import { MeshIndex } from './mesh-index.js';
import { proxyScopeOf } from './proxy-scope.js';

const gatewaySecretScheme = 'kubernetes-gateway://';
/** Istio's annotation on the Gateways it converts from the Kubernetes Gateway API. */
const gatewaySemanticsAnnotation = 'internal.istio.io/gateway-semantics';

type ServerTls = NonNullable<NonNullable<GatewaySpec['servers']>[number]['tls']> & {
  credentialNames?: string[];
  caCertCredentialName?: string;
};

/**
 * The SDS resource names (`kubernetes-gateway://<namespace>/<name>`, and `<name>-cacert` for a MUTUAL
 * server's client CA) the servers of the Gateways selecting a gateway proxy refer to and that the
 * proxy may read: shape a set of resource names, for xds/credentials' `verifiedCertificateReferences`.
 *
 * As istiod's mergeGateways: only for a proxy whose 15012 token proved its identity (`verifiedIdentity`),
 * of kind `router`, and only from Gateways in that identity's namespace. A Secret in the same namespace
 * is always allowed; one in another namespace only in a Gateway converted from the Gateway API
 * (annotation `internal.istio.io/gateway-semantics`), whose listener gatewayapi/ keeps only when a
 * ReferenceGrant allows the reference (istiod asks the ReferenceGrants again, SecretAllowed). A
 * `kubernetes-gateway://` name a user writes into an Istio Gateway may thus name only its own namespace.
 * Undefined when the proxy has no verified identity, is not a gateway or no model exists yet.
 */
export function verifiedCertificateReferences(model: MeshModel | undefined, node: DiscoveryNode): ReadonlySet<string> | undefined {
  const identity = node.verifiedIdentity;
  if (!model || !identity) return undefined;
  const scope = proxyScopeOf(node);
  if (scope.kind !== 'router') return undefined;
  // The proven namespace, never the one the node's metadata claims.
  const gateways = gatewaysSelecting(MeshIndex.of(model), { ...scope, namespace: identity.namespace });
  const verified = new Set<string>();
  for (const gateway of gateways) {
    if (gateway.namespace !== identity.namespace) continue;
    const converted = gateway.annotations?.[gatewaySemanticsAnnotation] === 'gateway';
    const allowed = (name: string) => {
      if (!name.startsWith(gatewaySecretScheme)) return false;
      const [namespace, secret] = name.slice(gatewaySecretScheme.length).split('/');
      return !!namespace && !!secret && (namespace === identity.namespace || converted);
    };
    for (const server of gateway.spec.servers ?? []) {
      const tls = server.tls as ServerTls | undefined;
      if (!tls) continue;
      const names = tls.credentialNames && tls.credentialNames.length > 0 ? tls.credentialNames : [tls.credentialName ?? ''];
      for (const name of names.filter(allowed)) {
        verified.add(name);
        if (tls.mode === 'MUTUAL') verified.add(`${name}-cacert`);
      }
      if (tls.caCertCredentialName && allowed(tls.caCertCredentialName)) verified.add(tls.caCertCredentialName);
    }
  }
  return verified;
}
