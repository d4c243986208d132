// Istio's `cacerts` Secret layout and its check, shared by the operator (which refuses to roll
// out over a bad Secret) and the CA (which loads it).
import { X509Certificate, createPrivateKey } from 'node:crypto';

export const cacertsKeys = ['ca-cert.pem', 'ca-key.pem', 'root-cert.pem', 'cert-chain.pem'] as const;

/** Returns what is wrong with the Secret's data, or undefined when it is usable. Never echoes key material. */
export function checkCaSecret(secretName: string, data: Record<string, string> | undefined): string | undefined {
  const decoded = (key: string): string | undefined => (data?.[key] ? Buffer.from(data[key], 'base64').toString('utf8') : undefined);
  const missing = cacertsKeys.filter((key) => !decoded(key));
  if (missing.length > 0)
    return `Secret ${secretName} lacks ${missing.join(', ')}; it needs all of ${cacertsKeys.join(', ')} (Istio's cacerts layout)`;
  let caCert: X509Certificate;
  try {
    caCert = new X509Certificate(decoded('ca-cert.pem') as string);
    new X509Certificate(decoded('root-cert.pem') as string);
  } catch {
    return `Secret ${secretName}: ca-cert.pem or root-cert.pem is not a PEM certificate`;
  }
  if (!caCert.ca) return `Secret ${secretName}: ca-cert.pem is not a CA certificate (basicConstraints CA:TRUE is required)`;
  try {
    const key = createPrivateKey(decoded('ca-key.pem') as string);
    if (!caCert.checkPrivateKey(key)) return `Secret ${secretName}: ca-key.pem does not match ca-cert.pem`;
  } catch {
    return `Secret ${secretName}: ca-key.pem is not a PEM private key`;
  }
  if (new Date(caCert.validTo).getTime() < Date.now()) return `Secret ${secretName}: ca-cert.pem expired on ${caCert.validTo}`;
  let roots: X509Certificate[];
  let chain: X509Certificate[];
  try {
    roots = pemCertificates(decoded('root-cert.pem') as string).map((pem) => new X509Certificate(pem));
    chain = pemCertificates(decoded('cert-chain.pem') as string).map((pem) => new X509Certificate(pem));
  } catch {
    return `Secret ${secretName}: root-cert.pem or cert-chain.pem holds a block that is not a PEM certificate`;
  }
  if (!chainsToRoot(caCert, chain, roots))
    return `Secret ${secretName}: ca-cert.pem does not chain through cert-chain.pem to any root in root-cert.pem`;
  return undefined;
}

/** The CERTIFICATE blocks of a PEM bundle, in order, each ending with a newline. */
export function pemCertificates(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((pem) => `${pem}\n`);
}

const issuedBy = (cert: X509Certificate, issuer: X509Certificate): boolean => cert.checkIssued(issuer) && cert.verify(issuer.publicKey);

/**
 * Whether `cert` is one of `roots` or is signed by one, directly or through
 * `intermediates` (any order): Istio's check of a plugged CA (`pkiutil.Verify`:
 * the signing certificate must verify to root-cert.pem through cert-chain.pem).
 */
export function chainsToRoot(cert: X509Certificate, intermediates: X509Certificate[], roots: X509Certificate[]): boolean {
  let current = cert;
  // Each step climbs one certificate; a chain longer than the intermediates given cannot verify.
  for (let step = 0; step <= intermediates.length; step++) {
    if (roots.some((root) => root.fingerprint256 === current.fingerprint256 || issuedBy(current, root))) return true;
    const next = intermediates.find((candidate) => candidate.fingerprint256 !== current.fingerprint256 && issuedBy(current, candidate));
    if (!next) return false;
    current = next;
  }
  return false;
}
