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
  return undefined;
}
