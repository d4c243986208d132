// A minimal DER reader: enough to walk a PKCS#10 request and keep the exact bytes
// that were signed (re-encoding a parsed tree is not guaranteed to reproduce them).
export interface DerNode {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

export class DerError extends Error {}

export function readNode(der: Uint8Array, offset: number, limit = der.length): DerNode {
  if (offset + 2 > limit) throw new DerError('truncated DER');
  const tag = der[offset] as number;
  let length = der[offset + 1] as number;
  let contentStart = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4 || contentStart + octets > limit) throw new DerError('unsupported DER length');
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[contentStart + i] as number);
    contentStart += octets;
  }
  const end = contentStart + length;
  if (end > limit) throw new DerError('DER length runs past its container');
  return { tag, start: offset, contentStart, end };
}

export function children(der: Uint8Array, node: DerNode): DerNode[] {
  const nodes: DerNode[] = [];
  for (let offset = node.contentStart; offset < node.end;) {
    const child = readNode(der, offset, node.end);
    nodes.push(child);
    offset = child.end;
  }
  return nodes;
}

export function content(der: Uint8Array, node: DerNode): Buffer {
  return Buffer.from(der.subarray(node.contentStart, node.end));
}

export function whole(der: Uint8Array, node: DerNode): Buffer {
  return Buffer.from(der.subarray(node.start, node.end));
}

export function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0) throw new DerError('empty OID');
  const first = bytes[0] as number;
  const parts = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let value = 0;
  for (let i = 1; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}
