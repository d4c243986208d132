// X.509 certificates: built with node-forge (which models the ASN.1), signed with
// Node's crypto (about 100 times faster than forge's pure-JS RSA).
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface CertificateRequest {
  commonName: string;
  organizations?: string[];
  isCA?: boolean;
  /** Subject alternative names: DNS names, IP addresses and URIs (SPIFFE IDs). */
  dnsNames?: string[];
  ipAddresses?: string[];
  uris?: string[];
  usages?: Array<'serverAuth' | 'clientAuth'>;
  notBefore?: Date;
  notAfter: Date;
}

export interface Issuer {
  certificatePem: string;
  privateKey: KeyObject;
}

export function generateRsaKeyPair(modulusLength = 2048): KeyPair {
  return generateKeyPairSync('rsa', { modulusLength });
}

export function privateKeyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function publicKeyToPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * Issues a certificate for `subjectPublicKey`. Without `issuer` the certificate is
 * self-signed and `selfSigningKey` must be the private half of `subjectPublicKey`.
 */
export function issueCertificate(
  request: CertificateRequest,
  subjectPublicKey: KeyObject,
  signer: Issuer | { selfSigningKey: KeyObject },
): string {
  if (subjectPublicKey.asymmetricKeyType !== 'rsa') {
    throw new Error('issueCertificate: only RSA subject keys are supported');
  }
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyToPem(subjectPublicKey));
  // A positive 128-bit serial: RFC 5280 asks for at most 20 octets and no sign bit.
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = request.notBefore ?? new Date(Date.now() - 60_000);
  cert.validity.notAfter = request.notAfter;

  const subject: forge.pki.CertificateField[] = [{ name: 'commonName', value: request.commonName }];
  for (const organization of request.organizations ?? []) {
    subject.push({ name: 'organizationName', value: organization });
  }
  cert.setSubject(subject);

  let signingKey: KeyObject;
  let issuerKeyId: string | undefined;
  if ('selfSigningKey' in signer) {
    cert.setIssuer(subject);
    signingKey = signer.selfSigningKey;
  } else {
    const issuerCert = forge.pki.certificateFromPem(signer.certificatePem);
    cert.setIssuer(issuerCert.subject.attributes);
    signingKey = signer.privateKey;
    // The authority key id must equal the issuer's subject key id, byte for byte.
    const issuerSki = issuerCert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
    issuerKeyId = issuerSki?.subjectKeyIdentifier
      ? forge.util.hexToBytes(issuerSki.subjectKeyIdentifier)
      : forge.pki.getPublicKeyFingerprint(issuerCert.publicKey).getBytes();
  }

  const extensions: object[] = [
    { name: 'basicConstraints', cA: request.isCA === true, critical: true },
    request.isCA
      ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }
      : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ];
  if (issuerKeyId !== undefined) {
    extensions.push({ name: 'authorityKeyIdentifier', keyIdentifier: issuerKeyId });
  }
  const usages = request.usages ?? [];
  if (usages.length > 0) {
    extensions.push({
      name: 'extKeyUsage',
      serverAuth: usages.includes('serverAuth'),
      clientAuth: usages.includes('clientAuth'),
    });
  }
  const altNames = subjectAltNames(request);
  if (altNames.length > 0) {
    // Critical when the subject is empty of meaning, as SPIFFE requires for URI SANs.
    extensions.push({ name: 'subjectAltName', altNames, critical: (request.uris ?? []).length > 0 });
  }
  cert.setExtensions(extensions);

  const sha256WithRsa = forge.pki.oids['sha256WithRSAEncryption'] as string;
  cert.siginfo.algorithmOid = sha256WithRsa;
  cert.signatureOid = sha256WithRsa;
  // node-forge exports getTBSCertificate at run time; its typings omit it.
  const { getTBSCertificate } = forge.pki as unknown as { getTBSCertificate: (c: forge.pki.Certificate) => forge.asn1.Asn1 };
  const tbsDer = forge.asn1.toDer(getTBSCertificate(cert)).getBytes();
  cert.signature = sign('sha256', Buffer.from(tbsDer, 'binary'), signingKey).toString('binary');
  // forge writes CRLF line ends; PEM everywhere else in Weft (and in Istio's files) uses LF.
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

function subjectAltNames(request: CertificateRequest): object[] {
  const names: object[] = [];
  for (const dns of request.dnsNames ?? []) names.push({ type: 2, value: dns });
  for (const uri of request.uris ?? []) names.push({ type: 6, value: uri });
  for (const ip of request.ipAddresses ?? []) {
    if (isIP(ip) === 0) throw new Error(`issueCertificate: '${ip}' is not an IP address`);
    names.push({ type: 7, ip });
  }
  return names;
}
