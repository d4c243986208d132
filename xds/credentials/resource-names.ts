// SDS resource names as istiod reads them (pilot/pkg/model/credentials/resource.go):
// `kubernetes://<name>` (the proxy's own namespace), `kubernetes://<namespace>/<name>`,
// `kubernetes-gateway://<namespace>/<name>` (Gateway API listeners), and the `-cacert`
// suffix that asks for a validation context instead of a key pair.

export const kubernetesSecretTypeUri = 'kubernetes://';
export const kubernetesGatewaySecretTypeUri = 'kubernetes-gateway://';
export const configMapTypeUri = 'configmap://';
export const invalidSecretTypeUri = 'invalid://';
/** Istio's SdsCaSuffix: `<credentialName>-cacert` names the CA of a MUTUAL listener. */
export const caSuffix = '-cacert';

/** A reference to a Kubernetes Secret, as one SDS resource name makes it. */
export interface SecretReference {
  /** `kubernetes` (Istio's credentialName) or `kubernetes-gateway` (the Gateway API's certificateRefs). */
  type: 'kubernetes' | 'kubernetes-gateway';
  /** The Secret's name as the resource name gives it, `-cacert` suffix included. */
  name: string;
  namespace: string;
  /** The SDS resource name, as asked for (and the Envoy Secret's name). */
  resourceName: string;
  /** A `-cacert` name: only the CA certificate (and CRL) is served, as a validation context. */
  caOnly: boolean;
}

/** A name istiod would parse but never serve (`invalid://`), a form Weft does not serve, or one no form matches. */
export type ParsedResourceName = { reference: SecretReference } | { ignored: true } | { error: string };

/**
 * Reads one SDS resource name for a proxy whose verified namespace is `proxyNamespace`,
 * as istiod's ParseResourceName: `kubernetes://name` takes the proxy's namespace,
 * `kubernetes://ns/name` names its own (a later `/part` is ignored, as in Istio);
 * `kubernetes-gateway://` requires both. `configmap://` (a CA in a ConfigMap, for
 * BackendTLSPolicy) is not served by Weft yet and comes back as an error saying so.
 * Errors name the resource and what is wrong with it.
 */
export function parseResourceName(resourceName: string, proxyNamespace: string): ParsedResourceName {
  const reference = (type: SecretReference['type'], namespace: string, name: string): ParsedResourceName => ({
    reference: { type, name, namespace, resourceName, caOnly: name.endsWith(caSuffix) },
  });
  if (resourceName.startsWith(kubernetesSecretTypeUri)) {
    const parts = resourceName.slice(kubernetesSecretTypeUri.length).split('/');
    return parts.length > 1
      ? reference('kubernetes', parts[0] as string, parts[1] as string)
      : reference('kubernetes', proxyNamespace, parts[0] as string);
  }
  if (resourceName.startsWith(kubernetesGatewaySecretTypeUri)) {
    const parts = resourceName.slice(kubernetesGatewaySecretTypeUri.length).split('/');
    if (parts.length <= 1) return { error: `invalid resource name ${JSON.stringify(resourceName)}: expected namespace and name` };
    if (!parts[0]) return { error: `invalid resource name ${JSON.stringify(resourceName)}: expected namespace` };
    if (!parts[1]) return { error: `invalid resource name ${JSON.stringify(resourceName)}: expected name` };
    return reference('kubernetes-gateway', parts[0], parts[1]);
  }
  if (resourceName.startsWith(invalidSecretTypeUri)) return { ignored: true };
  if (resourceName.startsWith(configMapTypeUri))
    return { error: `resource name ${JSON.stringify(resourceName)}: ConfigMap CA certificates (configmap://) are not served by Weft` };
  return { error: `unknown resource type: ${JSON.stringify(resourceName)} (expected kubernetes:// or kubernetes-gateway://)` };
}

/**
 * Every resource name a change to Secret `namespace/name` may change the content of, in
 * each form a proxy may have asked by: the Secret's own names and its `-cacert` companion's
 * (a key-pair Secret's `ca.crt` serves `<name>-cacert`; a `<name>-cacert` Secret replaces it),
 * as istiod's relatedConfigs (pilot/pkg/xds/sds.go). `kubernetes://<name>` is included for
 * proxies of `namespace`, the only ones it can be served to.
 */
export function resourceNamesOfSecret(namespace: string, name: string): Set<string> {
  const related = name.endsWith(caSuffix) ? [name, name.slice(0, -caSuffix.length)] : [name, name + caSuffix];
  const names = new Set<string>();
  for (const secret of related) {
    names.add(`${kubernetesSecretTypeUri}${secret}`);
    names.add(`${kubernetesSecretTypeUri}${namespace}/${secret}`);
    names.add(`${kubernetesGatewaySecretTypeUri}${namespace}/${secret}`);
  }
  return names;
}
