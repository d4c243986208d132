// Istio's gateway.SecretAnalyzer (pkg/config/analysis/analyzers/gateway/secret.go): each
// `tls.credentialName` of a Gateway server must name a Secret in the namespace of the gateway
// workloads the Gateway selects, not the Gateway's own namespace. Pure: the Secrets are given
// as names only, since existence is all it checks.
//
// Deliberate differences from Istio's analyzer:
// - a name with an SDS prefix is read as the SDS server reads it (`kubernetes://<name>`,
//   `kubernetes://<ns>/<name>`, `kubernetes-gateway://<ns>/<name>`), where Istio's splits it at the
//   first `/` and reports a Secret in namespace `kubernetes:` as missing; `builtin://`, `invalid://`
//   and `configmap://` name no Secret and are not checked;
// - IST0161 InvalidGatewayCredential (a Secret whose certificate does not parse or has expired) is
//   not reported: it needs the Secret's key material, which `weft analyze` never reads.
// As in Istio, the `<name>-cacert` companion of a MUTUAL server is never required (the key pair's own
// `ca.crt` serves too), and `credentialNames` (several certificates) is not checked.
import type { ConfigObject, GatewaySpec } from '../model/istio-config.js';
import type { AnalysisMessage } from './config-analyzers.js';
import { selectorString } from './gateway-analyzers.js';

/** A pod, as the analyzer sees it: where it runs and its labels. */
export interface GatewayWorkload {
  namespace: string;
  name: string;
  labels: Record<string, string>;
}

/** A Secret a Gateway server refers to: `namespace/name`, and the `credentialName` as written. */
export interface CredentialReference {
  namespace: string;
  name: string;
  credentialName: string;
}

const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);

/**
 * The namespace of the gateway workloads `gateway` selects (Istio's getGatewayNamespace): the
 * first matching pod's, pods taken in `namespace/name` order (Istio leaves the choice undefined
 * when they span namespaces); undefined when no pod matches. An empty selector matches every pod.
 */
export function gatewayWorkloadNamespace(gateway: ConfigObject<GatewaySpec>, pods: readonly GatewayWorkload[]): string | undefined {
  const selector = (gateway.spec.selector ?? {}) as Record<string, string>;
  const ordered = [...pods].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  return ordered.find((pod) => selects(selector, pod.labels))?.namespace;
}

/**
 * The Secret one `credentialName` names for gateway workloads in `workloadNamespace`, as
 * Istio's resource.NewShortOrFullName (`name`, or `namespace/name`), SDS prefixes read as the
 * SDS server reads them; undefined for a name that is not a Secret's (`builtin://`, `invalid://`,
 * `configmap://`, `sds://`), one the SDS server refuses (`kubernetes-gateway://` without a namespace), or one with an empty part.
 */
export function credentialSecret(credentialName: string, workloadNamespace: string): CredentialReference | undefined {
  let rest = credentialName;
  const scheme = /^([a-z-]+):\/\//.exec(credentialName);
  if (scheme) {
    if (scheme[1] !== 'kubernetes' && scheme[1] !== 'kubernetes-gateway') return undefined;
    rest = credentialName.slice(scheme[0].length);
  }
  const slash = rest.indexOf('/');
  // `kubernetes-gateway://` always names the namespace; the SDS server refuses it without one.
  if (scheme?.[1] === 'kubernetes-gateway' && slash < 0) return undefined;
  const namespace = slash < 0 ? workloadNamespace : rest.slice(0, slash);
  let name = slash < 0 ? rest : rest.slice(slash + 1);
  // `kubernetes://ns/name/extra`: the SDS server ignores what follows a second `/`.
  if (scheme) name = name.split('/')[0] ?? '';
  if (!namespace || !name) return undefined;
  return { namespace, name, credentialName };
}

/**
 * Every Secret `gateway`'s servers refer to through `tls.credentialName`, resolved against the
 * namespace of its workloads (`pods`); empty when it selects no pod. What `weft analyze` must
 * look up, by name, before {@link gatewaySecretMessages}.
 */
export function gatewayCredentialReferences(gateway: ConfigObject<GatewaySpec>, pods: readonly GatewayWorkload[]): CredentialReference[] {
  const namespace = gatewayWorkloadNamespace(gateway, pods);
  if (namespace === undefined) return [];
  return (gateway.spec.servers ?? []).flatMap((server) => {
    const credentialName = server.tls?.credentialName;
    const reference = credentialName ? credentialSecret(credentialName, namespace) : undefined;
    return reference ? [reference] : [];
  });
}

/**
 * Istio's gateway.SecretAnalyzer for one Gateway: IST0101 `Referenced selector not found` when
 * no pod matches its selector (the same message gateway.IngressGatewayPortAnalyzer gives; istioctl
 * prints it once), else IST0101 `Referenced credentialName not found: "<credentialName>"` for each
 * server whose Secret does not exist. `secretExists(namespace, name)` answers from Secret names;
 * it may return undefined for a Secret that could not be read, which is then not reported.
 */
export function gatewaySecretMessages(
  gateway: ConfigObject<GatewaySpec>,
  pods: readonly GatewayWorkload[],
  secretExists: (namespace: string, name: string) => boolean | undefined,
): AnalysisMessage[] {
  if (gatewayWorkloadNamespace(gateway, pods) === undefined)
    return [
      {
        code: 'IST0101',
        name: 'ReferencedResourceNotFound',
        level: 'ERROR',
        message: `Referenced selector not found: ${JSON.stringify(selectorString(gateway.spec.selector as Record<string, string> | undefined))}`,
      },
    ];
  return gatewayCredentialReferences(gateway, pods)
    .filter((reference) => secretExists(reference.namespace, reference.name) === false)
    .map((reference) => ({
      code: 'IST0101',
      name: 'ReferencedResourceNotFound',
      level: 'ERROR' as const,
      message: `Referenced credentialName not found: ${JSON.stringify(reference.credentialName)}`,
    }));
}
