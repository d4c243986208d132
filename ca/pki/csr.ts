// PKCS#10 certificate signing requests: parsed, signature-checked, key-checked.
// Only what the CA needs; the CA decides the certificate's contents itself.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { DerError, children, content, decodeOid, readNode, whole } from './der.js';

export interface ParsedCsr {
  publicKey: KeyObject;
  /** SubjectPublicKeyInfo, DER, exactly as requested. */
  spkiDer: Buffer;
  keyDescription: string;
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  emails: string[];
  requestsCa: boolean;
}

export class CsrError extends Error {}

const signatureHashes: Record<string, string> = {
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
};
const extensionRequest = '1.2.840.113549.1.9.14';
const subjectAltName = '2.5.29.17';
const basicConstraints = '2.5.29.19';
const maxCsrBytes = 16 * 1024;

function pemToDer(pem: string): Buffer {
  const match = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(pem);
  if (!match) throw new CsrError('csr is not a PEM "CERTIFICATE REQUEST"');
  const der = Buffer.from((match[2] ?? '').replace(/\s+/g, ''), 'base64');
  if (der.length === 0) throw new CsrError('csr PEM has no content');
  return der;
}

export function parseCsr(pem: string): ParsedCsr {
  if (pem.length > maxCsrBytes) throw new CsrError(`csr is larger than ${maxCsrBytes} bytes`);
  try {
    return parse(pemToDer(pem));
  } catch (error) {
    if (error instanceof CsrError) throw error;
    if (error instanceof DerError) throw new CsrError(`csr is not valid DER: ${error.message}`);
    throw new CsrError(`csr could not be parsed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function parse(der: Buffer): ParsedCsr {
  const outer = readNode(der, 0);
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new CsrError('csr is not a single DER SEQUENCE');
  const [info, algorithm, signature] = children(der, outer);
  if (!info || !algorithm || !signature || signature.tag !== 0x03) throw new CsrError('csr lacks its info, algorithm or signature');
  const [, , spki, attributes] = children(der, info);
  if (!spki || spki.tag !== 0x30) throw new CsrError('csr lacks a subject public key');

  const spkiDer = whole(der, spki);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch {
    throw new CsrError('csr public key is not a supported key');
  }
  const keyDescription = checkKey(publicKey);

  const algorithmOid = decodeOid(content(der, children(der, algorithm)[0] ?? algorithm));
  const hash = signatureHashes[algorithmOid];
  if (!hash) throw new CsrError(`csr signature algorithm ${algorithmOid} is not supported (use SHA-256 with RSA or ECDSA)`);
  const signatureBits = content(der, signature);
  if (signatureBits[0] !== 0) throw new CsrError('csr signature has unused bits');
  const ok = verify(hash, whole(der, info), publicKey, signatureBits.subarray(1));
  if (!ok) throw new CsrError('csr signature does not verify with its own public key');

  const parsed: ParsedCsr = { publicKey, spkiDer, keyDescription, uris: [], dnsNames: [], ipAddresses: [], emails: [], requestsCa: false };
  if (attributes && attributes.tag === 0xa0) readExtensionRequest(der, attributes, parsed);
  return parsed;
}

function checkKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < 2048) throw new CsrError(`csr RSA key has ${bits} bits; at least 2048 are required`);
    if (bits > 8192) throw new CsrError(`csr RSA key has ${bits} bits; at most 8192 are accepted`);
    return `RSA-${bits}`;
  }
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve !== 'prime256v1') throw new CsrError(`csr EC key uses ${details.namedCurve}; only P-256 is accepted`);
    return 'ECDSA-P256';
  }
  throw new CsrError(`csr key type ${key.asymmetricKeyType} is not supported (use RSA 2048+ or ECDSA P-256)`);
}

function readExtensionRequest(der: Buffer, attributes: ReturnType<typeof readNode>, parsed: ParsedCsr): void {
  for (const attribute of children(der, attributes)) {
    const [oid, values] = children(der, attribute);
    if (!oid || !values || decodeOid(content(der, oid)) !== extensionRequest) continue;
    for (const extensions of children(der, values)) {
      for (const extension of children(der, extensions)) {
        const parts = children(der, extension);
        const id = decodeOid(content(der, parts[0] ?? extension));
        const valueNode = parts[parts.length - 1];
        if (!valueNode || valueNode.tag !== 0x04) continue;
        const value = content(der, valueNode);
        if (id === subjectAltName) readSubjectAltNames(value, parsed);
        if (id === basicConstraints) {
          const sequence = readNode(value, 0);
          const first = children(value, sequence)[0];
          parsed.requestsCa = first !== undefined && first.tag === 0x01 && value[first.contentStart] !== 0;
        }
      }
    }
  }
}

function readSubjectAltNames(value: Buffer, parsed: ParsedCsr): void {
  const names = readNode(value, 0);
  for (const name of children(value, names)) {
    const bytes = content(value, name);
    switch (name.tag) {
      case 0x86:
        parsed.uris.push(bytes.toString('utf8'));
        break;
      case 0x82:
        parsed.dnsNames.push(bytes.toString('utf8'));
        break;
      case 0x81:
        parsed.emails.push(bytes.toString('utf8'));
        break;
      case 0x87:
        parsed.ipAddresses.push(bytes.length === 4 ? [...bytes].join('.') : bytes.toString('hex'));
        break;
      default:
        parsed.uris.push(`unsupported-name-tag-${name.tag}`);
    }
  }
}
