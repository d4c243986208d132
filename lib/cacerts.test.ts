import { generateRsaKeyPair, issueCertificate, privateKeyToPem } from './x509.js';
import { checkCaSecret } from './cacerts.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const inDays = (days: number) => new Date(Date.now() + days * 86_400_000);

function pluggedCa(options: { isCA?: boolean; wrongKey?: boolean; notAfter?: Date } = {}) {
  const root = generateRsaKeyPair();
  const rootPem = issueCertificate({ commonName: 'root', isCA: true, notAfter: inDays(365) }, root.publicKey, {
    selfSigningKey: root.privateKey,
  });
  const intermediate = generateRsaKeyPair();
  const caPem = issueCertificate(
    { commonName: 'intermediate', isCA: options.isCA ?? true, notAfter: options.notAfter ?? inDays(30), notBefore: inDays(-2) },
    intermediate.publicKey,
    { certificatePem: rootPem, privateKey: root.privateKey },
  );
  const keyPem = privateKeyToPem(options.wrongKey ? generateRsaKeyPair().privateKey : intermediate.privateKey);
  return { 'ca-cert.pem': b64(caPem), 'ca-key.pem': b64(keyPem), 'root-cert.pem': b64(rootPem), 'cert-chain.pem': b64(caPem + rootPem) };
}

describe('checkCaSecret', () => {
  it('accepts an Istio cacerts Secret with an intermediate CA and its key', () => {
    expect(checkCaSecret('cacerts', pluggedCa())).toBeUndefined();
  });

  it('names the missing keys', () => {
    const { ['ca-key.pem']: _dropped, ...partial } = pluggedCa();
    expect(checkCaSecret('cacerts', partial)).toBe(
      "Secret cacerts lacks ca-key.pem; it needs all of ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem (Istio's cacerts layout)",
    );
    expect(checkCaSecret('cacerts', undefined)).toContain('lacks ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem');
  });

  it('refuses a key that does not match, a non-CA certificate, garbage and expiry, without echoing the key', () => {
    const mismatched = pluggedCa({ wrongKey: true });
    const message = checkCaSecret('cacerts', mismatched) ?? '';
    expect(message).toBe('Secret cacerts: ca-key.pem does not match ca-cert.pem');
    expect(message).not.toContain('PRIVATE KEY');
    expect(checkCaSecret('cacerts', pluggedCa({ isCA: false }))).toContain('is not a CA certificate');
    expect(checkCaSecret('cacerts', { ...pluggedCa(), 'ca-cert.pem': b64('nonsense') })).toContain('is not a PEM certificate');
    expect(checkCaSecret('cacerts', { ...pluggedCa(), 'ca-key.pem': b64('nonsense') })).toContain('ca-key.pem is not a PEM private key');
    expect(checkCaSecret('cacerts', pluggedCa({ notAfter: inDays(-1) }))).toContain('expired');
  });
});

describe('checkCaSecret during a root rotation', () => {
  // Imported lazily: the fixture builds on this module's neighbours.
  const fixtures = () => import('../testing/fixtures/plugged-ca.js');

  it('accepts root-cert.pem with the old and the new root and an intermediate of the new one', async () => {
    const { testRoot, testIntermediate, cacertsFiles, secretData } = await fixtures();
    const [oldRoot, newRoot] = [testRoot('old-root'), testRoot('new-root')];
    expect(checkCaSecret('cacerts', secretData(cacertsFiles(testIntermediate(newRoot, 'new-ca'), newRoot, [oldRoot, newRoot])))).toBe(
      undefined,
    );
  });

  it('refuses a ca-cert.pem that no root in root-cert.pem anchors, as Istio verifies the plugged chain', async () => {
    const { testRoot, testIntermediate, cacertsFiles, secretData } = await fixtures();
    const [oldRoot, newRoot] = [testRoot('old-root'), testRoot('new-root')];
    // The operator dropped the old root while the intermediate still comes from it.
    expect(checkCaSecret('cacerts', secretData(cacertsFiles(testIntermediate(oldRoot, 'old-ca'), oldRoot, [newRoot])))).toBe(
      'Secret cacerts: ca-cert.pem does not chain through cert-chain.pem to any root in root-cert.pem',
    );
  });
});
