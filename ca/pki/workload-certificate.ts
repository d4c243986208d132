// Workload certificates: the identity comes from the caller's authenticated
// ServiceAccount, never from the CSR; the CSR only supplies the public key.
// node-forge lays out the certificate, Node's crypto signs it, and the CSR's
// SubjectPublicKeyInfo is carried over byte for byte (RSA or ECDSA alike).
import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { generateRsaKeyPair, publicKeyToPem } from '../../lib/x509.js';
import type { ParsedCsr } from './csr.js';

export interface SigningCa {
  certificatePem: string;
  privateKey: KeyObject;
  /** Certificates above the signing CA, ending with the root (empty when the CA is the root). */
  chainAbovePems: string[];
}

export interface WorkloadIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

export interface TtlPolicy {
  defaultSeconds: number;
  maxSeconds: number;
}

export class IssueError extends Error {
  constructor(
    readonly kind: 'identity' | 'ttl' | 'ca-expired',
    message: string,
  ) {
    super(message);
  }
}

export function spiffeId(identity: WorkloadIdentity): string {
  return `spiffe://${identity.trustDomain}/ns/${identity.namespace}/sa/${identity.serviceAccount}`;
}

/** 0 means the default; above the maximum is clamped; negative or absurd is refused. */
export function effectiveTtlSeconds(requested: number, policy: TtlPolicy): number {
  if (!Number.isFinite(requested) || requested < 0)
    throw new IssueError('ttl', `validity_duration ${requested} is not a positive number of seconds`);
  if (requested > 100 * 365 * 86_400) throw new IssueError('ttl', `validity_duration ${requested} s is beyond any usable lifetime`);
  if (requested === 0) return policy.defaultSeconds;
  return Math.min(requested, policy.maxSeconds);
}

/** Refuses a CSR that asks for anything but the caller's own identity. */
export function checkRequestedIdentity(csr: ParsedCsr, identity: string): void {
  if (csr.requestsCa)
    throw new IssueError('identity', 'csr asks for a CA certificate (basicConstraints CA:TRUE); workloads get leaf certificates only');
  const others = [...csr.uris.filter((uri) => uri !== identity), ...csr.dnsNames, ...csr.ipAddresses, ...csr.emails];
  if (others.length > 0)
    throw new IssueError('identity', `csr asks for identities the caller does not hold: ${others.join(', ')}; the caller is ${identity}`);
}

let placeholderKey: forge.pki.PublicKey | undefined;
// forge insists on an RSA key object to lay out the TBS structure; the real key replaces it.
function placeholder(): forge.pki.PublicKey {
  placeholderKey ??= forge.pki.publicKeyFromPem(publicKeyToPem(generateRsaKeyPair(1024).publicKey));
  return placeholderKey;
}

// forge's typings only know the old boolean argument; the options form keeps BIT STRINGs raw.
const fromDerRaw = (der: Buffer): forge.asn1.Asn1 =>
  (forge.asn1.fromDer as unknown as (bytes: string, options: object) => forge.asn1.Asn1)(der.toString('binary'), {
    decodeBitStrings: false,
  });

const oids = {
  sha256WithRsa: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
};

function keyIdentifier(spkiDer: Buffer): Buffer {
  // RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value.
  const spki = fromDerRaw(spkiDer);
  const bitString = (spki.value as forge.asn1.Asn1[])[1];
  const keyBits = Buffer.from(String(bitString?.value ?? ''), 'binary').subarray(1);
  return createHash('sha1').update(keyBits).digest();
}

function octetString(bytes: Buffer): string {
  return forge.asn1
    .toDer(forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, bytes.toString('binary')))
    .getBytes();
}

export interface IssueInput {
  csr: ParsedCsr;
  identity: WorkloadIdentity;
  ttlSeconds: number;
  now?: Date;
}

/** Returns the chain leaf first, root last, as Istio's CreateCertificate does. */
export function issueWorkloadCertificate(input: IssueInput, ca: SigningCa): string[] {
  const uri = spiffeId(input.identity);
  checkRequestedIdentity(input.csr, uri);
  return signLeafCertificate(
    { spkiDer: input.csr.spkiDer, uris: [uri], ttlSeconds: input.ttlSeconds, ...(input.now ? { now: input.now } : {}) },
    ca,
  );
}

export interface LeafRequest {
  spkiDer: Buffer;
  uris?: string[];
  dnsNames?: string[];
  ttlSeconds: number;
  now?: Date;
}

/** Signs a leaf (serverAuth and clientAuth) for any public key; the chain comes back leaf first. */
export function signLeafCertificate(request: LeafRequest, ca: SigningCa): string[] {
  const caCert = forge.pki.certificateFromPem(ca.certificatePem);
  const now = request.now ?? new Date();
  const notAfter = new Date(Math.min(now.getTime() + request.ttlSeconds * 1000, caCert.validity.notAfter.getTime()));
  if (notAfter.getTime() <= now.getTime()) throw new IssueError('ca-expired', 'the signing CA has expired; rotate it before issuing');

  const cert = forge.pki.createCertificate();
  cert.publicKey = placeholder();
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  // A minute of slack for clocks that run slightly behind the CA's.
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = notAfter;
  cert.setSubject([]);
  cert.setIssuer(caCert.subject.attributes);
  const caSpkiDer = Buffer.from(forge.asn1.toDer(forge.pki.publicKeyToAsn1(caCert.publicKey)).getBytes(), 'binary');
  const caSki = caCert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  const authorityKeyId = caSki?.subjectKeyIdentifier ? Buffer.from(caSki.subjectKeyIdentifier, 'hex') : keyIdentifier(caSpkiDer);
  const akiValue = forge.asn1
    .toDer(
      forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.SEQUENCE, true, [
        forge.asn1.create(forge.asn1.Class.CONTEXT_SPECIFIC, 0, false, authorityKeyId.toString('binary')),
      ]),
    )
    .getBytes();
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    // The subject is empty, so the SAN is critical (RFC 5280 4.2.1.6), as Istio does.
    {
      name: 'subjectAltName',
      critical: true,
      altNames: [
        ...(request.uris ?? []).map((value) => ({ type: 6, value })),
        ...(request.dnsNames ?? []).map((value) => ({ type: 2, value })),
      ],
    },
    { id: oids.subjectKeyIdentifier, value: octetString(keyIdentifier(request.spkiDer)) },
    { id: oids.authorityKeyIdentifier, value: akiValue },
  ]);

  const ecdsa = ca.privateKey.asymmetricKeyType === 'ec';
  const algorithmOid = ecdsa ? oids.ecdsaWithSha256 : oids.sha256WithRsa;
  cert.siginfo.algorithmOid = algorithmOid;
  const { getTBSCertificate } = forge.pki as unknown as { getTBSCertificate: (c: forge.pki.Certificate) => forge.asn1.Asn1 };
  const tbs = getTBSCertificate(cert);
  const tbsFields = tbs.value as forge.asn1.Asn1[];
  const algorithm = algorithmIdentifier(algorithmOid, ecdsa);
  tbsFields[2] = algorithm;
  tbsFields[6] = fromDerRaw(request.spkiDer);
  const tbsDer = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, ca.privateKey);
  const certificate = forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.SEQUENCE, true, [
    tbs,
    algorithmIdentifier(algorithmOid, ecdsa),
    forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.BITSTRING, false, `\u0000${signature.toString('binary')}`),
  ]);
  const der = Buffer.from(forge.asn1.toDer(certificate).getBytes(), 'binary');
  const leafPem = `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
  return [leafPem, ca.certificatePem, ...ca.chainAbovePems];
}

function algorithmIdentifier(oid: string, ecdsa: boolean): forge.asn1.Asn1 {
  const parts = [forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OID, false, forge.asn1.oidToDer(oid).getBytes())];
  // RSA algorithms carry an explicit NULL; ECDSA ones must omit parameters (RFC 5758 3.2).
  if (!ecdsa) parts.push(forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.NULL, false, ''));
  return forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.SEQUENCE, true, parts);
}
