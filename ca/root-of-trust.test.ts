import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { buildCsr } from '../testing/fixtures/csr.js';
import { parseCsr } from './pki/csr.js';
import { issueWorkloadCertificate } from './pki/workload-certificate.js';
import { cacertsFiles, testIntermediate, testRoot } from '../testing/fixtures/plugged-ca.js';
import {
  distributedRoots,
  pluggedRootOfTrust,
  rootBundleChange,
  rootOfChain,
  rotateRoot,
  selfSignedRootOfTrust,
  signingCa,
  splitPems,
  trustBundlePem,
  type RootOfTrust,
} from './root-of-trust.js';
import { generateRsaKeyPair, issueCertificate, privateKeyToPem } from '../lib/x509.js';

const day = 86_400_000;
const policy = { rootLifetimeDays: 10, renewAtRemainingFraction: 0.2, stagingPeriodMs: day };
const identity = { trustDomain: 'cluster.local', namespace: 'ns', serviceAccount: 'sa' };

function leafFrom(root: RootOfTrust, now: Date): X509Certificate {
  const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const chain = issueWorkloadCertificate({ csr: parseCsr(buildCsr(keys)), identity, ttlSeconds: 3600, now }, signingCa(root));
  return new X509Certificate(chain[0] as string);
}

function verifiesToBundle(leaf: X509Certificate, bundle: string): boolean {
  return splitPems(bundle).some((pem) => {
    const root = new X509Certificate(pem);
    return leaf.checkIssued(root) && leaf.verify(root.publicKey);
  });
}

describe('rotateRoot', () => {
  it('stages a new root in the bundle before it signs, keeps old leaves verifying, then retires the old root', () => {
    const t0 = new Date();
    const initial = selfSignedRootOfTrust('cluster.local', t0, policy);
    expect(rotateRoot(initial, new Date(t0.getTime() + 5 * day), policy).step).toBe('none');

    const oldLeaf = leafFrom(initial, new Date(t0.getTime() + 8.5 * day));
    const staged = rotateRoot(initial, new Date(t0.getTime() + 8.5 * day), policy);
    expect(staged.step).toBe('staged');
    expect(staged.root.trustedRoots).toHaveLength(2);
    // Staged, not yet signing: new leaves still come from the old root.
    expect(staged.root.signer).toEqual(initial.signer);
    expect(rotateRoot(staged.root, new Date(t0.getTime() + 9 * day), policy).step).toBe('none');

    const promoted = rotateRoot(staged.root, new Date(t0.getTime() + 9.6 * day), policy);
    expect(promoted.step).toBe('promoted');
    expect(promoted.root.signer.certPem).toBe(staged.root.next?.certPem);
    const newLeaf = leafFrom(promoted.root, new Date(t0.getTime() + 9.6 * day));
    const overlapBundle = trustBundlePem(promoted.root);
    expect(verifiesToBundle(oldLeaf, overlapBundle)).toBe(true);
    expect(verifiesToBundle(newLeaf, overlapBundle)).toBe(true);
    expect(verifiesToBundle(newLeaf, trustBundlePem(initial))).toBe(false);

    const pruned = rotateRoot(promoted.root, new Date(t0.getTime() + 10.5 * day), policy);
    expect(pruned.step).toBe('pruned');
    expect(pruned.root.trustedRoots).toEqual([promoted.root.signer.certPem]);
  });

  it('never rotates a plugged-in CA: the user owns that root', () => {
    const keys = generateRsaKeyPair();
    const pem = issueCertificate({ commonName: 'user-root', isCA: true, notAfter: new Date(Date.now() + day) }, keys.publicKey, {
      selfSigningKey: keys.privateKey,
    });
    const plugged = pluggedRootOfTrust({
      'ca-cert.pem': pem,
      'ca-key.pem': privateKeyToPem(keys.privateKey),
      'root-cert.pem': pem,
      'cert-chain.pem': pem,
    });
    expect(plugged.chainAbove).toEqual([]);
    expect(rotateRoot(plugged, new Date(Date.now() + 0.99 * day), policy).step).toBe('none');
  });
});

describe('pluggedRootOfTrust', () => {
  it('signs as the intermediate and sends the chain up to the user root', () => {
    const rootKeys = generateRsaKeyPair();
    const rootPem = issueCertificate(
      { commonName: 'user-root', isCA: true, notAfter: new Date(Date.now() + 30 * day) },
      rootKeys.publicKey,
      {
        selfSigningKey: rootKeys.privateKey,
      },
    );
    const intermediateKeys = generateRsaKeyPair();
    const intermediatePem = issueCertificate(
      { commonName: 'cluster-1', isCA: true, notAfter: new Date(Date.now() + 10 * day) },
      intermediateKeys.publicKey,
      {
        certificatePem: rootPem,
        privateKey: rootKeys.privateKey,
      },
    );
    const plugged = pluggedRootOfTrust({
      'ca-cert.pem': intermediatePem,
      'ca-key.pem': privateKeyToPem(intermediateKeys.privateKey),
      'root-cert.pem': rootPem,
      'cert-chain.pem': intermediatePem + rootPem,
    });
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const chain = issueWorkloadCertificate({ csr: parseCsr(buildCsr(keys)), identity, ttlSeconds: 3600 }, signingCa(plugged));
    expect(chain.map((pem) => new X509Certificate(pem).subject ?? '')).toEqual(['', 'CN=cluster-1', 'CN=user-root']);
    expect(new X509Certificate(chain[0] as string).checkIssued(new X509Certificate(intermediatePem))).toBe(true);
    expect(trustBundlePem(plugged)).toBe(`${rootPem.trim()}\n`);
  });
});

describe('plugged root rotation helpers', () => {
  const rootA = testRoot('root-a');
  const rootB = testRoot('root-b');

  it("rootBundleChange follows istiod's subset rule: roots added or removed, never swapped", () => {
    expect(rootBundleChange([rootA.certPem], [rootA.certPem])).toBe('unchanged');
    expect(rootBundleChange([rootA.certPem], [rootA.certPem, rootB.certPem])).toBe('added');
    expect(rootBundleChange([rootA.certPem, rootB.certPem], [rootB.certPem])).toBe('removed');
    expect(rootBundleChange([rootA.certPem], [rootB.certPem])).toBe('unrelated');
    // The same root re-encoded (another line length) is the same root.
    expect(rootBundleChange([rootA.certPem], [`\n${rootA.certPem.replace(/\n/g, '\r\n')}`])).toBe('unchanged');
  });

  it('distributedRoots keeps a retained root only while a certificate it anchors lives, each root once', () => {
    const now = Date.now();
    expect(distributedRoots([rootB.certPem], [{ pem: rootA.certPem, untilMs: now + 1_000 }], now)).toEqual([rootB.certPem, rootA.certPem]);
    expect(distributedRoots([rootB.certPem], [{ pem: rootA.certPem, untilMs: now }], now)).toEqual([rootB.certPem]);
    expect(distributedRoots([rootA.certPem, rootB.certPem], [{ pem: rootA.certPem, untilMs: now + 1_000 }], now)).toEqual([
      rootA.certPem,
      rootB.certPem,
    ]);
  });

  it('rootOfChain finds the root a workload chain ends at or was signed by', () => {
    const intermediateB = testIntermediate(rootB, 'ca-b');
    const plugged = pluggedRootOfTrust(cacertsFiles(intermediateB, rootB, [rootA, rootB]));
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const chain = issueWorkloadCertificate({ csr: parseCsr(buildCsr(keys)), identity, ttlSeconds: 60 }, signingCa(plugged));
    expect(rootOfChain(chain, [rootA.certPem, rootB.certPem])).toBe(rootB.certPem);
    // cert-chain.pem without its root: the intermediate on top is matched to its issuer.
    expect(rootOfChain(chain.slice(0, -1), [rootA.certPem, rootB.certPem])).toBe(rootB.certPem);
    expect(rootOfChain(chain, [rootA.certPem])).toBeUndefined();
  });
});
