import { X509Certificate, createPrivateKey } from 'node:crypto';
import { generateRsaKeyPair, issueCertificate, privateKeyToPem } from './x509.js';

const inOneDay = () => new Date(Date.now() + 24 * 3600 * 1000);

describe('issueCertificate', () => {
  const caKeys = generateRsaKeyPair();
  const caPem = issueCertificate({ commonName: 'test-ca', isCA: true, notAfter: inOneDay() }, caKeys.publicKey, {
    selfSigningKey: caKeys.privateKey,
  });
  const ca = new X509Certificate(caPem);

  it('makes a self-signed CA certificate that verifies with its own key', () => {
    expect(ca.ca).toBe(true);
    expect(ca.subject).toBe('CN=test-ca');
    expect(ca.issuer).toBe(ca.subject);
    expect(ca.verify(caKeys.publicKey)).toBe(true);
  });

  it('issues a leaf that chains to its issuer and carries the requested names and usages', () => {
    const leafKeys = generateRsaKeyPair();
    const notAfter = inOneDay();
    const pem = issueCertificate(
      {
        commonName: 'workload',
        organizations: ['system:masters'],
        dnsNames: ['svc.example'],
        ipAddresses: ['10.244.1.7', '::1'],
        uris: ['spiffe://cluster.local/ns/shop/sa/cart'],
        usages: ['serverAuth', 'clientAuth'],
        notAfter,
      },
      leafKeys.publicKey,
      { certificatePem: caPem, privateKey: caKeys.privateKey },
    );
    const leaf = new X509Certificate(pem);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(caKeys.publicKey)).toBe(true);
    expect(leaf.verify(leafKeys.publicKey)).toBe(false);
    expect(leaf.subject).toBe('CN=workload\nO=system:masters');
    expect(leaf.subjectAltName).toBe(
      'DNS:svc.example, URI:spiffe://cluster.local/ns/shop/sa/cart, IP Address:10.244.1.7, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(Math.abs(new Date(leaf.validTo).getTime() - notAfter.getTime())).toBeLessThan(1000);
    expect(leaf.checkPrivateKey(createPrivateKey(privateKeyToPem(leafKeys.privateKey)))).toBe(true);
  });

  it('gives every certificate a distinct positive serial number', () => {
    const keys = generateRsaKeyPair();
    const serials = new Set(
      [1, 2, 3].map(
        (n) =>
          new X509Certificate(
            issueCertificate({ commonName: `c${n}`, notAfter: inOneDay() }, keys.publicKey, { selfSigningKey: keys.privateKey }),
          ).serialNumber,
      ),
    );
    expect(serials.size).toBe(3);
    for (const serial of serials) expect(parseInt(serial.slice(0, 2), 16)).toBeLessThan(0x80);
  });

  it('refuses an IP SAN that is not an address', () => {
    const keys = generateRsaKeyPair();
    expect(() =>
      issueCertificate({ commonName: 'x', ipAddresses: ['not-an-ip'], notAfter: inOneDay() }, keys.publicKey, {
        selfSigningKey: keys.privateKey,
      }),
    ).toThrow("'not-an-ip' is not an IP address");
  });
});
