// Kubernetes Secrets as istiod reads them for SDS (pilot/pkg/credentials/kube/secrets.go):
// a key pair from `cert`/`key` (generic) or `tls.crt`/`tls.key` (kubernetes.io/tls, with
// `tls.ocsp-staple`), a CA from `cacert` (with `crl`) or `ca.crt` (with `ca.crl`), and
// their Envoy `envoy.extensions.transport_sockets.tls.v3.Secret` forms (pilot/pkg/xds/sds.go).
// Pure. Messages name keys, never their values: a private key must never reach a log.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';

/** Generic layout (Istio's GenericScrt*): key pair, CA and CRL. */
export const genericKeys = { cert: 'cert', key: 'key', caCert: 'cacert', crl: 'crl' } as const;
/** kubernetes.io/tls layout (Istio's TLSSecret*), with cert-manager's `ca.crt`. */
export const tlsKeys = { cert: 'tls.crt', key: 'tls.key', ocspStaple: 'tls.ocsp-staple', caCert: 'ca.crt', crl: 'ca.crl' } as const;
const layoutKeys = new Set<string>([...Object.values(genericKeys), ...Object.values(tlsKeys)]);

/**
 * What weftd keeps of a Secret: its name, namespace and version, the data keys the layouts
 * read (base64, as the API server sends them), and the names of the others for messages.
 * Everything else (other keys' values, annotations, managedFields) is dropped on arrival.
 */
export interface KeptSecret extends KubernetesObject {
  metadata: { name: string; namespace: string; resourceVersion?: string; uid?: string };
  data: Record<string, string>;
  /** Istio's truncatedKeysMessage: the first three data keys, sorted, and how many more. */
  foundKeys: string;
}

/** The part of `secret` the layouts read (see KeptSecret). */
export function keptSecret(secret: V1Secret): KeptSecret {
  const data: Record<string, string> = {};
  const all = Object.keys(secret.data ?? {}).sort();
  for (const key of all) if (layoutKeys.has(key)) data[key] = secret.data?.[key] ?? '';
  const metadata = secret.metadata ?? {};
  return {
    metadata: {
      name: metadata.name ?? '',
      namespace: metadata.namespace ?? '',
      ...(metadata.resourceVersion !== undefined ? { resourceVersion: metadata.resourceVersion } : {}),
      ...(metadata.uid !== undefined ? { uid: metadata.uid } : {}),
    },
    data,
    foundKeys: all.length <= 3 ? all.join(', ') : `${all.slice(0, 3).join(', ')}, and ${all.length - 3} more...`,
  };
}

/** An Envoy Secret resource (proto field names), or why the Secret cannot give it. */
export type SecretOutcome =
  | { secret: Record<string, unknown>; /** Served anyway, as istiod serves them (an expired certificate). */ warnings: string[] }
  | { problem: string };

const bytesOf = (secret: KeptSecret, key: string): Buffer => Buffer.from(secret.data[key] ?? '', 'base64');
const hasKey = (secret: KeptSecret, key: string) => Object.hasOwn(secret.data, key);
const hasValue = (secret: KeptSecret, key: string) => bytesOf(secret, key).length > 0;
const inline = (bytes: Buffer) => ({ inline_bytes: bytes });

/**
 * The key pair of `secret` as an Envoy Secret named `resourceName` with a `tls_certificate`
 * (Istio's ExtractCertInfo and toEnvoyTLSSecret): `cert`/`key` when both have a value, else
 * `tls.crt`/`tls.key` (and `tls.ocsp-staple` when present). Refused, with a message naming
 * the key: a pair missing or empty, a certificate chain that is not PEM X.509, a private key
 * that is not an unencrypted PEM key, or a key that does not match the chain's first
 * certificate (Envoy would reject each). An expired or not yet valid certificate is served
 * with a warning, as istiod does.
 */
export function tlsCertificateSecret(resourceName: string, secret: KeptSecret, now: Date = new Date()): SecretOutcome {
  const layout = hasValue(secret, genericKeys.cert) && hasValue(secret, genericKeys.key) ? genericKeys : undefined;
  const keys = layout ?? (hasValue(secret, tlsKeys.cert) && hasValue(secret, tlsKeys.key) ? tlsKeys : undefined);
  if (!keys) return { problem: missingPairProblem(secret) };
  const chain = bytesOf(secret, keys.cert);
  const certificates = parseCertificates(chain);
  if (!certificates) return { problem: `key ${JSON.stringify(keys.cert)}: not a PEM X.509 certificate chain` };
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: bytesOf(secret, keys.key), format: 'pem' });
  } catch {
    // The crypto error is not passed on: it is about the key's bytes.
    return { problem: `key ${JSON.stringify(keys.key)}: not an unencrypted PEM private key` };
  }
  if (!(certificates[0] as X509Certificate).checkPrivateKey(privateKey))
    return { problem: `key ${JSON.stringify(keys.key)}: does not match the certificate in ${JSON.stringify(keys.cert)}` };
  const certificate: Record<string, unknown> = { certificate_chain: inline(chain), private_key: inline(bytesOf(secret, keys.key)) };
  if (keys === tlsKeys && hasValue(secret, tlsKeys.ocspStaple)) certificate['ocsp_staple'] = inline(bytesOf(secret, tlsKeys.ocspStaple));
  return { secret: { name: resourceName, tls_certificate: certificate }, warnings: validityWarnings(keys.cert, certificates, now) };
}

/**
 * The CA of `secret` as an Envoy Secret named `resourceName` with a `validation_context`
 * (Istio's ExtractRoot and toEnvoyCaSecret): `cacert` (and `crl`) when it has a value, else
 * `ca.crt` (and `ca.crl`). Refused, naming the key, when neither has a value or the bundle
 * is not PEM X.509; expired CA certificates are served with a warning, as istiod does.
 */
export function validationContextSecret(resourceName: string, secret: KeptSecret, now: Date = new Date()): SecretOutcome {
  const keys = hasValue(secret, genericKeys.caCert) ? genericKeys : hasValue(secret, tlsKeys.caCert) ? tlsKeys : undefined;
  if (!keys) {
    for (const key of [genericKeys.caCert, tlsKeys.caCert])
      if (hasKey(secret, key)) return { problem: `key ${JSON.stringify(key)} is empty` };
    return {
      problem: `no CA certificate: expected key ${JSON.stringify(genericKeys.caCert)} or ${JSON.stringify(tlsKeys.caCert)}; found: ${secret.foundKeys || 'no keys'}`,
    };
  }
  const bundle = bytesOf(secret, keys.caCert);
  const certificates = parseCertificates(bundle);
  if (!certificates) return { problem: `key ${JSON.stringify(keys.caCert)}: not a PEM X.509 certificate bundle` };
  const context: Record<string, unknown> = { trusted_ca: inline(bundle) };
  if (hasValue(secret, keys.crl)) context['crl'] = inline(bytesOf(secret, keys.crl));
  return { secret: { name: resourceName, validation_context: context }, warnings: validityWarnings(keys.caCert, certificates, now) };
}

/** Istio's messages for a Secret without a usable pair, made precise about which key is missing or empty. */
function missingPairProblem(secret: KeptSecret): string {
  for (const keys of [genericKeys, tlsKeys]) {
    const present = [keys.cert, keys.key].filter((key) => hasKey(secret, key));
    if (present.length === 0) continue;
    const empty = present.find((key) => !hasValue(secret, key));
    if (empty) return `key ${JSON.stringify(empty)} is empty`;
    const missing = [keys.cert, keys.key].find((key) => !hasKey(secret, key)) as string;
    return `key ${JSON.stringify(missing)} is missing (${JSON.stringify(present[0])} is present)`;
  }
  return `no key pair: expected keys (${genericKeys.cert} and ${genericKeys.key}) or (${tlsKeys.cert} and ${tlsKeys.key}); found: ${secret.foundKeys || 'no keys'}`;
}

const pemCertificate = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Every PEM certificate in `pem`, or undefined when there is none or one does not parse. */
function parseCertificates(pem: Buffer): X509Certificate[] | undefined {
  const blocks = pem.toString('latin1').match(pemCertificate);
  if (!blocks) return undefined;
  try {
    return blocks.map((block) => new X509Certificate(block));
  } catch {
    return undefined;
  }
}

/** Istio's ValidateCertificate, as warnings: a certificate outside its validity period. */
function validityWarnings(key: string, certificates: X509Certificate[], now: Date): string[] {
  return certificates.flatMap((certificate, i) => {
    const where = `key ${JSON.stringify(key)}, certificate ${i + 1}`;
    if (now.getTime() > new Date(certificate.validTo).getTime())
      return [`${where}: expired at ${new Date(certificate.validTo).toISOString()}`];
    if (now.getTime() < new Date(certificate.validFrom).getTime())
      return [`${where}: not valid before ${new Date(certificate.validFrom).toISOString()}`];
    return [];
  });
}
