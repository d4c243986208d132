// The CA's keys and trust bundle as one value, and how it evolves: created once,
// rotated by staging a new root in the trust bundle before it signs anything.
// Pure: the Kubernetes Secret that stores it is handled by ca-secret-store.ts.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { generateRsaKeyPair, issueCertificate, privateKeyToPem } from '../lib/x509.js';
import type { SigningCa } from './pki/workload-certificate.js';

export interface KeyedCertificate {
  certPem: string;
  keyPem: string;
}

export interface RootOfTrust {
  /** Self-signed: a root Weft made. Plugged: an intermediate from the user's cacerts Secret. */
  mode: 'SelfSigned' | 'Plugged';
  signer: KeyedCertificate;
  /** For Plugged: the certificates above the signer (from cert-chain.pem), root last. */
  chainAbove: string[];
  /** A new root already in the trust bundle, not yet signing (SelfSigned only). */
  next?: KeyedCertificate & { stagedAt: string };
  /** Every root workloads must trust right now, the signer's own root first. */
  trustedRoots: string[];
}

export interface RotationPolicy {
  rootLifetimeDays: number;
  /** Stage a new root when the current one has less than this fraction of its lifetime left. */
  renewAtRemainingFraction: number;
  /** How long the new root sits in the trust bundle before it signs. */
  stagingPeriodMs: number;
}

export const defaultRotationPolicy: RotationPolicy = {
  rootLifetimeDays: 3650,
  renewAtRemainingFraction: 0.2,
  stagingPeriodMs: 24 * 3600 * 1000,
};

export function newSelfSignedRoot(trustDomain: string, now: Date, lifetimeDays: number): KeyedCertificate {
  const keys = generateRsaKeyPair();
  const certPem = issueCertificate(
    {
      commonName: `weft-root-${trustDomain}`,
      organizations: [trustDomain],
      isCA: true,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + lifetimeDays * 86_400_000),
    },
    keys.publicKey,
    { selfSigningKey: keys.privateKey },
  );
  return { certPem, keyPem: privateKeyToPem(keys.privateKey) };
}

export function selfSignedRootOfTrust(trustDomain: string, now: Date, policy: RotationPolicy = defaultRotationPolicy): RootOfTrust {
  const signer = newSelfSignedRoot(trustDomain, now, policy.rootLifetimeDays);
  return { mode: 'SelfSigned', signer, chainAbove: [], trustedRoots: [signer.certPem] };
}

/** Istio's cacerts layout: ca-cert.pem signs, cert-chain.pem is the chain from it upwards, root-cert.pem is trusted. */
export function pluggedRootOfTrust(files: Record<string, string>): RootOfTrust {
  const signerCert = files['ca-cert.pem'] ?? '';
  const chain = splitPems(files['cert-chain.pem'] ?? '');
  // cert-chain.pem may or may not start with the signer itself.
  const above =
    chain.length > 0 && new X509Certificate(chain[0] as string).fingerprint256 === new X509Certificate(signerCert).fingerprint256
      ? chain.slice(1)
      : chain;
  return {
    mode: 'Plugged',
    signer: { certPem: signerCert, keyPem: files['ca-key.pem'] ?? '' },
    chainAbove: above,
    trustedRoots: splitPems(files['root-cert.pem'] ?? ''),
  };
}

export function signingCa(root: RootOfTrust): SigningCa {
  const privateKey: KeyObject = createPrivateKey(root.signer.keyPem);
  return { certificatePem: root.signer.certPem, privateKey, chainAbovePems: root.chainAbove };
}

export function trustBundlePem(root: RootOfTrust): string {
  return root.trustedRoots.map((pem) => pem.trim()).join('\n') + '\n';
}

export function splitPems(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((pem) => `${pem}\n`);
}

export type RotationStep = 'none' | 'staged' | 'promoted' | 'pruned';

/**
 * One step of root rotation. A new root is first added to the trust bundle
 * (staged), and signs only after the staging period, so that every workload
 * trusts it before it meets a certificate from it; old roots stay trusted until
 * they expire, so certificates they signed keep verifying during the overlap.
 */
export function rotateRoot(
  root: RootOfTrust,
  now: Date,
  policy: RotationPolicy = defaultRotationPolicy,
): { root: RootOfTrust; step: RotationStep } {
  if (root.mode !== 'SelfSigned') return { root, step: 'none' };
  const expired = root.trustedRoots.filter((pem) => new Date(new X509Certificate(pem).validTo).getTime() <= now.getTime());
  if (expired.length > 0) {
    return { root: { ...root, trustedRoots: root.trustedRoots.filter((pem) => !expired.includes(pem)) }, step: 'pruned' };
  }
  if (root.next) {
    if (now.getTime() - new Date(root.next.stagedAt).getTime() < policy.stagingPeriodMs) return { root, step: 'none' };
    const { stagedAt: _stagedAt, ...promoted } = root.next;
    const others = root.trustedRoots.filter((pem) => pem !== promoted.certPem);
    return { root: { ...root, signer: promoted, next: undefined, trustedRoots: [promoted.certPem, ...others] }, step: 'promoted' };
  }
  const current = new X509Certificate(root.signer.certPem);
  const start = new Date(current.validFrom).getTime();
  const end = new Date(current.validTo).getTime();
  if ((end - now.getTime()) / (end - start) > policy.renewAtRemainingFraction) return { root, step: 'none' };
  const trustDomain = /O=([^\n]+)/.exec(current.subject)?.[1] ?? 'cluster.local';
  const next = { ...newSelfSignedRoot(trustDomain, now, policy.rootLifetimeDays), stagedAt: now.toISOString() };
  return { root: { ...root, next, trustedRoots: [...root.trustedRoots, next.certPem] }, step: 'staged' };
}

/** A certificate's SHA-256 fingerprint, the identity of a root across PEM re-encodings. */
export const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256;

export type RootBundleChange = 'unchanged' | 'added' | 'removed' | 'unrelated';

/**
 * How a plugged root-cert.pem changed, compared as sets of certificates. Istio's
 * istiod (pilot/pkg/bootstrap/istio_ca.go, `pemBundleHasSubsetRelation`) reloads a
 * changed root bundle only when one bundle holds the other: roots added (a rotation
 * begins, both trusted) or removed (it ends). A bundle that does both at once swaps
 * roots with no overlap, which breaks every connection between a workload that has
 * the new bundle and one that does not yet: it is `unrelated`, and refused.
 */
export function rootBundleChange(current: string[], next: string[]): RootBundleChange {
  const before = new Set(current.map(fingerprintOf));
  const after = new Set(next.map(fingerprintOf));
  const added = [...after].some((fp) => !before.has(fp));
  const removed = [...before].some((fp) => !after.has(fp));
  if (added && removed) return 'unrelated';
  if (added) return 'added';
  if (removed) return 'removed';
  return 'unchanged';
}

/** A root taken out of root-cert.pem that workloads must still trust: certificates it anchors live until `untilMs`. */
export interface RetainedRoot {
  pem: string;
  /** Epoch milliseconds: the latest notAfter of a certificate issued under this root. */
  untilMs: number;
}

/**
 * The roots to distribute (ConfigMaps, the CA's responses): the trusted roots, then
 * the retained roots still anchoring a live certificate at `nowMs`, each once.
 */
export function distributedRoots(trusted: string[], retained: RetainedRoot[], nowMs: number): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const pem of [...trusted, ...retained.filter((r) => r.untilMs > nowMs).map((r) => r.pem)]) {
    const fp = fingerprintOf(pem);
    if (seen.has(fp)) continue;
    seen.add(fp);
    out.push(pem);
  }
  return out;
}

/**
 * The root among `roots` that anchors `chain` (leaf first): the chain's top
 * certificate is that root, or was signed by it. Undefined when none does.
 */
export function rootOfChain(chain: string[], roots: string[]): string | undefined {
  const top = chain.at(-1);
  if (!top) return undefined;
  const topCert = new X509Certificate(top);
  return roots.find((pem) => {
    const root = new X509Certificate(pem);
    return root.fingerprint256 === topCert.fingerprint256 || (topCert.checkIssued(root) && topCert.verify(root.publicKey));
  });
}
