// A workload's SPIFFE identity written to disk as Istio's agent writes it for proxyless gRPC
// (cert-chain.pem, key.pem, root-cert.pem), signed by a test CA, with the gRPC bootstrap's
// `certificate_providers` that read it: what the integration tests' xDS-enabled servers and
// clients present and verify in Istio mTLS.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signingCa, trustBundlePem, type RootOfTrust } from '../../ca/root-of-trust.js';
import { signLeafCertificate } from '../../ca/pki/workload-certificate.js';

export interface SpiffeIdentityOptions {
  /** The workload's namespace and ServiceAccount: `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
  namespace: string;
  serviceAccount: string;
  /** Default `cluster.local`. */
  trustDomain?: string;
  /** Signs the leaf certificate. */
  ca: RootOfTrust;
  /** The roots the workload verifies its peers with (root-cert.pem); default `ca`'s. */
  trust?: RootOfTrust;
  /** The leaf's lifetime in seconds; default 3600. */
  ttlSeconds?: number;
}

export interface SpiffeIdentity {
  spiffeId: string;
  /** The directory holding the three files (a fresh one under the parent given). */
  directory: string;
  /** The gRPC bootstrap's `certificate_providers`: instance `default`, grpc's `file_watcher` plugin on the files. */
  certificateProviders: Record<string, unknown>;
}

/**
 * Writes a fresh P-256 key, its certificate chain for the SPIFFE ID (signed by `ca`) and `trust`'s
 * trust bundle into a new directory under `parentDirectory`, named after the ServiceAccount.
 * Throws what the file system or the signer throws.
 */
export function writeSpiffeIdentity(parentDirectory: string, options: SpiffeIdentityOptions): SpiffeIdentity {
  const spiffeId = `spiffe://${options.trustDomain ?? 'cluster.local'}/ns/${options.namespace}/sa/${options.serviceAccount}`;
  const directory = join(parentDirectory, `${options.serviceAccount}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(directory, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const chain = signLeafCertificate(
    { spkiDer: publicKey.export({ type: 'spki', format: 'der' }), uris: [spiffeId], ttlSeconds: options.ttlSeconds ?? 3600 },
    signingCa(options.ca),
  );
  const files = { certificate_file: 'cert-chain.pem', private_key_file: 'key.pem', ca_certificate_file: 'root-cert.pem' };
  writeFileSync(join(directory, files.certificate_file), chain.join(''));
  writeFileSync(join(directory, files.private_key_file), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(directory, files.ca_certificate_file), trustBundlePem(options.trust ?? options.ca));
  const config = Object.fromEntries(Object.entries(files).map(([key, file]) => [key, join(directory, file)]));
  return {
    spiffeId,
    directory,
    // The agent's files are never rotated during a test: a slow refresh.
    certificateProviders: { default: { plugin_name: 'file_watcher', config: { ...config, refresh_interval: '600s' } } },
  };
}
