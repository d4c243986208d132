// Structure-aware mutation of a real PKCS#10 request: the DER is read as a tree of
// TLV nodes, one node is changed (tag, content, OID, children deleted, duplicated,
// swapped, wrapped) and the tree is re-encoded with correct lengths, so the mutation
// reaches the CA's checks past the DER reader; byte-level damage (truncation, flipped
// bits, impossible lengths) covers the reader itself.
import type { Random } from './seeded-random.js';

interface Node {
  tag: number;
  children?: Node[];
  content?: Buffer;
}

function parse(der: Buffer, offset = 0, end = der.length): Node[] {
  const nodes: Node[] = [];
  while (offset < end) {
    const tag = der[offset] as number;
    let length = der[offset + 1] as number;
    let start = offset + 2;
    if (length & 0x80) {
      const octets = length & 0x7f;
      length = 0;
      for (let i = 0; i < octets; i++) length = length * 256 + (der[start + i] as number);
      start += octets;
    }
    const content = der.subarray(start, start + length);
    nodes.push(tag & 0x20 ? { tag, children: parse(der, start, start + length) } : { tag, content: Buffer.from(content) });
    offset = start + length;
  }
  return nodes;
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function encode(node: Node): Buffer {
  const content = node.children ? Buffer.concat(node.children.map(encode)) : (node.content ?? Buffer.alloc(0));
  return Buffer.concat([Buffer.from([node.tag]), encodeLength(content.length), content]);
}

function allNodes(node: Node, into: Node[] = []): Node[] {
  into.push(node);
  for (const child of node.children ?? []) allNodes(child, into);
  return into;
}

const oidBytes = (dotted: string): Buffer => {
  const parts = dotted.split('.').map(Number);
  const out = [(parts[0] as number) * 40 + (parts[1] as number)];
  for (const part of parts.slice(2)) {
    const chunk: number[] = [];
    for (let n = part; ; n = Math.floor(n / 128)) {
      chunk.unshift((n % 128) | (chunk.length ? 0x80 : 0));
      if (n < 128) break;
    }
    out.push(...chunk);
  }
  return Buffer.from(out);
};

/** OIDs a hostile request might swap in: weak or unknown signature algorithms, other key types, other extensions. */
const hostileOids = [
  '1.2.840.113549.1.1.5', // sha1WithRSAEncryption
  '1.2.840.113549.1.1.4', // md5WithRSAEncryption
  '1.2.840.10045.4.1', // ecdsa-with-SHA1
  '1.3.101.112', // Ed25519
  '1.2.840.10040.4.1', // DSA
  '1.2.840.113549.1.1.10', // RSASSA-PSS
  '2.5.29.17', // subjectAltName
  '2.5.29.19', // basicConstraints
  '1.2.3.4.5.6.7.8.9',
];

const treeMutations: Array<(node: Node, random: Random) => string> = [
  (node, random) => {
    node.tag = random.int(256);
    return 'tag changed';
  },
  (node, random) => {
    node.children = undefined;
    node.content = random.bytes(random.int(40));
    return 'content replaced by random bytes';
  },
  (node, random) => {
    node.children = undefined;
    node.tag = 0x06;
    node.content = oidBytes(random.pick(hostileOids));
    return 'replaced by another OID';
  },
  (node) => {
    node.children = node.children ? [] : undefined;
    node.content = node.children ? undefined : Buffer.alloc(0);
    return 'emptied';
  },
  (node, random) => {
    if (!node.children?.length) return 'left alone';
    node.children.splice(random.int(node.children.length), 1);
    return 'child deleted';
  },
  (node, random) => {
    if (!node.children?.length) return 'left alone';
    const child = node.children[random.int(node.children.length)] as Node;
    node.children.push(structuredClone(child));
    return 'child duplicated';
  },
  (node, random) => {
    if (!node.children || node.children.length < 2) return 'left alone';
    const a = random.int(node.children.length);
    const b = random.int(node.children.length);
    [node.children[a], node.children[b]] = [node.children[b] as Node, node.children[a] as Node];
    return 'children swapped';
  },
  (node) => {
    const inner = { ...node };
    node.tag = 0x30;
    node.content = undefined;
    node.children = [inner];
    return 'wrapped in a SEQUENCE';
  },
  (node, random) => {
    node.children = undefined;
    node.tag = 0x02;
    node.content = random.pick([Buffer.from([0xff]), Buffer.alloc(600, 0x7f), Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 1])]);
    return 'replaced by an odd INTEGER';
  },
];

const byteMutations: Array<(der: Buffer, random: Random) => [Buffer, string]> = [
  (der, random) => [der.subarray(0, random.int(der.length)), 'truncated'],
  (der, random) => {
    const copy = Buffer.from(der);
    for (let i = 0; i < 1 + random.int(8); i++) {
      const at = random.int(copy.length);
      copy[at] = (copy[at] as number) ^ (1 << random.int(8));
    }
    return [copy, 'bits flipped'];
  },
  (der, random) => [Buffer.concat([der, random.bytes(1 + random.int(64))]), 'trailing garbage'],
  (der) => [Buffer.concat([Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), der.subarray(4)]), 'length of 4 GiB'],
  (der) => [Buffer.concat([Buffer.from([0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]), der]), 'length of nine octets'],
  (_der, random) => [random.bytes(1 + random.int(300)), 'random bytes'],
];

export const derToPem = (der: Buffer): string =>
  `-----BEGIN CERTIFICATE REQUEST-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END CERTIFICATE REQUEST-----\n`;

export const pemToDer = (pem: string): Buffer =>
  Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE REQUEST-----/g, '').replace(/\s+/g, ''), 'base64');

/** One mutation of a well-formed CSR (PEM in, PEM out) and what was done to it. */
export function mutateCsr(pem: string, random: Random): { pem: string; mutation: string } {
  const der = pemToDer(pem);
  if (random.next() < 0.35) {
    const [mutated, mutation] = random.pick(byteMutations)(der, random);
    return { pem: derToPem(mutated), mutation };
  }
  const [root] = parse(der);
  if (!root) throw new Error('the CSR to mutate is empty');
  const nodes = allNodes(root);
  const target = random.pick(nodes);
  const mutation = random.pick(treeMutations)(target, random);
  return { pem: derToPem(encode(root)), mutation: `node ${nodes.indexOf(target)}: ${mutation}` };
}
