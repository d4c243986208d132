import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { generateRsaKeyPair, issueCertificate } from '../../lib/x509.js';
import { buildCsr } from '../../testing/fixtures/csr.js';
import { CsrError, parseCsr } from './csr.js';
import { IssueError, effectiveTtlSeconds, issueWorkloadCertificate, spiffeId, type SigningCa } from './workload-certificate.js';

const identity = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'cart' };
const uri = 'spiffe://cluster.local/ns/shop/sa/cart';
const rsa = () => generateRsaKeyPair();
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

function rootCa(): SigningCa {
  const keys = rsa();
  const pem = issueCertificate({ commonName: 'weft-root', isCA: true, notAfter: new Date(Date.now() + 365 * 86_400_000) }, keys.publicKey, {
    selfSigningKey: keys.privateKey,
  });
  return { certificatePem: pem, privateKey: keys.privateKey, chainAbovePems: [] };
}

describe('parseCsr', () => {
  it('reads the key and requested names of RSA and P-256 requests and checks their signatures', () => {
    const rsaCsr = parseCsr(buildCsr({ ...rsa(), uris: [uri] }));
    expect(rsaCsr.keyDescription).toBe('RSA-2048');
    expect(rsaCsr.uris).toEqual([uri]);
    const ecCsr = parseCsr(buildCsr({ ...p256(), uris: [uri], dnsNames: ['cart.shop.svc'] }));
    expect(ecCsr.keyDescription).toBe('ECDSA-P256');
    expect(ecCsr.dnsNames).toEqual(['cart.shop.svc']);
    expect(parseCsr(buildCsr({ ...p256(), requestCa: true })).requestsCa).toBe(true);
  });

  it('refuses malformed, mis-signed, weak and unsupported requests with a clear reason', () => {
    expect(() => parseCsr('hello')).toThrow(new CsrError('csr is not a PEM "CERTIFICATE REQUEST"'));
    expect(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----')).toThrow(CsrError);
    const keys = p256();
    expect(() => parseCsr(buildCsr({ ...keys, signingKey: p256().privateKey }))).toThrow(
      'csr signature does not verify with its own public key',
    );
    expect(() => parseCsr(buildCsr(generateRsaKeyPair(1024)))).toThrow('csr RSA key has 1024 bits; at least 2048 are required');
    expect(() => parseCsr(buildCsr(generateKeyPairSync('ec', { namedCurve: 'secp384r1' })))).toThrow('only P-256 is accepted');
    const valid = buildCsr(keys);
    const der = Buffer.from(valid.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const truncated = `-----BEGIN CERTIFICATE REQUEST-----\n${der.subarray(0, der.length - 10).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(() => parseCsr(truncated)).toThrow(CsrError);
    expect(() => parseCsr(valid.repeat(100))).toThrow('csr is larger than 16384 bytes');
  });
});

describe('issueWorkloadCertificate', () => {
  const ca = rootCa();
  const root = new X509Certificate(ca.certificatePem);

  it.each([
    ['RSA-2048', rsa],
    ['ECDSA P-256', p256],
  ])('issues a %s leaf carrying exactly the caller SPIFFE ID, verifying to the root', (_name, keys) => {
    const pair = keys();
    const chain = issueWorkloadCertificate({ csr: parseCsr(buildCsr({ ...pair, uris: [uri] })), identity, ttlSeconds: 3600 }, ca);
    expect(chain).toHaveLength(2);
    expect(chain[1]).toBe(ca.certificatePem);
    const leaf = new X509Certificate(chain[0] as string);
    expect(leaf.subjectAltName).toBe(`URI:${uri}`);
    expect(leaf.ca).toBe(false);
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.publicKey.export({ type: 'spki', format: 'der' })).toEqual(pair.publicKey.export({ type: 'spki', format: 'der' }));
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const lifetime = new Date(leaf.validTo).getTime() - Date.now();
    expect(lifetime).toBeGreaterThan(3500_000);
    expect(lifetime).toBeLessThanOrEqual(3600_000);
  });

  it('signs with an ECDSA CA key too', () => {
    const keys = p256();
    const forgeRoot = rootCa();
    // An EC intermediate is out of lib/x509's reach; sign leaves directly with an EC key under the RSA root's name.
    const ecCa: SigningCa = { certificatePem: forgeRoot.certificatePem, privateKey: keys.privateKey, chainAbovePems: [] };
    const chain = issueWorkloadCertificate({ csr: parseCsr(buildCsr({ ...p256(), uris: [uri] })), identity, ttlSeconds: 60 }, ecCa);
    expect(new X509Certificate(chain[0] as string).verify(keys.publicKey)).toBe(true);
  });

  it('takes the identity from the caller, refusing CSRs that ask for other names or for CA:TRUE', () => {
    const other = parseCsr(buildCsr({ ...p256(), uris: ['spiffe://cluster.local/ns/kube-system/sa/admin'] }));
    expect(() => issueWorkloadCertificate({ csr: other, identity, ttlSeconds: 60 }, ca)).toThrow(
      new IssueError(
        'identity',
        `csr asks for identities the caller does not hold: spiffe://cluster.local/ns/kube-system/sa/admin; the caller is ${uri}`,
      ),
    );
    const extraDns = parseCsr(buildCsr({ ...p256(), uris: [uri], dnsNames: ['evil.example'] }));
    expect(() => issueWorkloadCertificate({ csr: extraDns, identity, ttlSeconds: 60 }, ca)).toThrow('evil.example');
    const wantsCa = parseCsr(buildCsr({ ...p256(), uris: [uri], requestCa: true }));
    expect(() => issueWorkloadCertificate({ csr: wantsCa, identity, ttlSeconds: 60 }, ca)).toThrow('asks for a CA certificate');
    // No requested names at all is fine: the CA decides them.
    const bare = issueWorkloadCertificate({ csr: parseCsr(buildCsr(p256())), identity, ttlSeconds: 60 }, ca);
    expect(new X509Certificate(bare[0] as string).subjectAltName).toBe(`URI:${spiffeId(identity)}`);
  });

  it('never outlives its CA', () => {
    const keys = rsa();
    const shortRoot = issueCertificate({ commonName: 'short', isCA: true, notAfter: new Date(Date.now() + 600_000) }, keys.publicKey, {
      selfSigningKey: keys.privateKey,
    });
    const chain = issueWorkloadCertificate(
      { csr: parseCsr(buildCsr(p256())), identity, ttlSeconds: 86_400 },
      { certificatePem: shortRoot, privateKey: keys.privateKey, chainAbovePems: [] },
    );
    expect(new Date(new X509Certificate(chain[0] as string).validTo).getTime()).toBeLessThanOrEqual(Date.now() + 600_000);
  });
});

describe('effectiveTtlSeconds', () => {
  const policy = { defaultSeconds: 86_400, maxSeconds: 90 * 86_400 };
  it('uses the default for 0, clamps to the maximum, refuses negative and absurd values', () => {
    expect(effectiveTtlSeconds(0, policy)).toBe(86_400);
    expect(effectiveTtlSeconds(3600, policy)).toBe(3600);
    expect(effectiveTtlSeconds(365 * 86_400, policy)).toBe(90 * 86_400);
    expect(() => effectiveTtlSeconds(-5, policy)).toThrow('validity_duration -5 is not a positive number of seconds');
    expect(() => effectiveTtlSeconds(Number.MAX_SAFE_INTEGER, policy)).toThrow('beyond any usable lifetime');
  });
});
