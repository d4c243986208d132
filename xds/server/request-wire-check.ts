// The protobuf wire format of an incoming xDS request, checked against its message
// type before it is decoded. protobufjs decodes a field sent with the wrong wire type
// as garbage (or throws "index out of range"), reads invalid UTF-8 lossily and recurses
// without limit into nested messages; gRPC then answers a decoder's exception with
// INTERNAL "Error deserializing request", naming nothing. A request that fails this
// check is handed to the stream as `{ malformed }` instead, which ends it with
// INVALID_ARGUMENT naming the field (`node.id: wire type 5 (32-bit), expected 2
// (length-delimited)`). The rules are protobuf's encoding spec
// (https://protobuf.dev/programming-guides/encoding/): a field's wire type follows its
// declared type, repeated scalars may also come packed, strings are UTF-8, and fields
// the type does not declare are skipped.
import { isUtf8 } from 'node:buffer';
import protobuf from 'protobufjs';
import { checkNames, checkRequest, ProtocolError, type DiscoveryRequest } from './ads-stream.js';
import type { DeltaDiscoveryRequest } from './delta-stream.js';

/** Nesting deeper than this is refused (protobuf C++'s default recursion limit is 100). */
export const maxMessageDepth = 100;

const wireNames = ['varint', '64-bit', 'length-delimited', 'group start', 'group end', '32-bit'];
const wireName = (wire: number) => `${wire} (${wireNames[wire] ?? 'invalid'})`;

/** The wire type a field of this declared type must use (packed repeated scalars use 2 as well). */
function expectedWire(field: protobuf.Field): number {
  if (field.resolvedType instanceof protobuf.Enum) return 0;
  switch (field.type) {
    case 'double':
    case 'fixed64':
    case 'sfixed64':
      return 1;
    case 'float':
    case 'fixed32':
    case 'sfixed32':
      return 5;
    case 'int32':
    case 'int64':
    case 'uint32':
    case 'uint64':
    case 'sint32':
    case 'sint64':
    case 'bool':
      return 0;
    default:
      return 2; // string, bytes, messages
  }
}

// Proto field names (protobufjs keeps Envoy's, but gives google.protobuf's camelCase: structValue is struct_value).
const at = (path: string, name: string) => {
  const proto = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return path ? `${path}.${proto}` : proto;
};
/** A path as an error shows it: deep ones (nested Structs) keep their start. */
const shown = (path: string) => (path.length <= 160 ? path : `${path.slice(0, 160)}...`);

/**
 * The first problem in `bytes` read as a `type` message, as `<field path>: <what is wrong>`
 * (paths use proto field names: `node.metadata.fields["LABELS"]`, `resource_names[2]`),
 * or undefined when every field has its declared wire type, lengths fit, strings are
 * UTF-8 and nesting stays within `maxMessageDepth`.
 */
export function wireProblem(type: protobuf.Type, bytes: Uint8Array, path = '', depth = 0): string | undefined {
  if (depth > maxMessageDepth) return `${shown(path)}: nested deeper than ${maxMessageDepth} messages`;
  const reader = protobuf.Reader.create(bytes);
  const seen = new Map<number, number>();
  while (reader.pos < reader.len) {
    let tag: number;
    try {
      tag = reader.uint32();
    } catch {
      return `${path || 'message'}: truncated`;
    }
    const number = tag >>> 3;
    const wire = tag & 7;
    const field = type.fieldsById[number];
    if (number === 0) return `${path || 'message'}: field number 0 (not a protobuf message)`;
    let name = field ? at(path, field.name) : at(path, `<field ${number}>`);
    if (field?.repeated && !field.map) {
      const index = seen.get(number) ?? 0;
      seen.set(number, index + 1);
      name = `${name}[${index}]`;
    }
    if (field) {
      const expected = expectedWire(field);
      const packed = field.repeated && expected !== 2 && wire === 2;
      if (wire !== expected && !packed) return `${name}: wire type ${wireName(wire)}, expected ${wireName(expected)}`;
      if (wire === 2) {
        let length: number;
        try {
          length = reader.uint32();
        } catch {
          return `${name}: truncated`;
        }
        if (reader.pos + length > reader.len) return `${name}: truncated (length ${length}, ${reader.len - reader.pos} bytes left)`;
        const payload = bytes.subarray(reader.pos, reader.pos + length);
        reader.pos += length;
        const problem = packed ? undefined : payloadProblem(field, payload, name, depth);
        if (problem) return problem;
        continue;
      }
    }
    try {
      reader.skipType(wire);
    } catch {
      return `${name}: truncated, or wire type ${wireName(wire)} is not valid`;
    }
  }
  return undefined;
}

function payloadProblem(field: protobuf.Field, payload: Uint8Array, name: string, depth: number): string | undefined {
  if (field.map) return mapEntryProblem(field as unknown as protobuf.MapField, payload, name, depth);
  if (field.type === 'string') return isUtf8(payload) ? undefined : `${name}: not valid UTF-8`;
  if (field.resolvedType instanceof protobuf.Type) return wireProblem(field.resolvedType, payload, name, depth + 1);
  return undefined;
}

/** A map entry is a message of `key = 1` and `value = 2`; its path names the key (`fields["LABELS"]`). */
function mapEntryProblem(field: protobuf.MapField, payload: Uint8Array, name: string, depth: number): string | undefined {
  const reader = protobuf.Reader.create(payload);
  let entryKey = '?';
  let value: Uint8Array | undefined;
  while (reader.pos < reader.len) {
    let tag: number;
    try {
      tag = reader.uint32();
    } catch {
      return `${name}: truncated`;
    }
    const wire = tag & 7;
    if (tag >>> 3 === 1 && field.keyType === 'string') {
      if (wire !== 2) return `${name} key: wire type ${wireName(wire)}, expected ${wireName(2)}`;
      try {
        const bytes = reader.bytes();
        if (!isUtf8(bytes)) return `${name} key: not valid UTF-8`;
        entryKey = Buffer.from(bytes).toString('utf8');
      } catch {
        return `${name} key: truncated`;
      }
      continue;
    }
    if (tag >>> 3 === 2 && field.resolvedType instanceof protobuf.Type) {
      if (wire !== 2) return `${name} value: wire type ${wireName(wire)}, expected ${wireName(2)}`;
      try {
        value = reader.bytes();
      } catch {
        return `${name} value: truncated`;
      }
      continue;
    }
    try {
      reader.skipType(wire);
    } catch {
      return `${name}: truncated`;
    }
  }
  if (value && field.resolvedType instanceof protobuf.Type)
    return wireProblem(field.resolvedType, value, `${name}[${JSON.stringify(entryKey.slice(0, 64))}]`, depth + 1);
  return undefined;
}

/**
 * A gRPC request deserializer that never throws: a request whose wire format is wrong
 * (see `wireProblem`), or that the decoder still cannot read, becomes `{ malformed }`
 * carrying the problem, for the stream to refuse naming the field.
 */
export function checkedDeserializer(type: () => protobuf.Type, decode: (bytes: Buffer) => unknown): (bytes: Buffer) => unknown {
  return (bytes: Buffer) => {
    const problem = wireProblem(type(), bytes);
    if (problem) return { malformed: problem };
    try {
      return decode(bytes);
    } catch (error) {
      return { malformed: `${failingField(type(), bytes, decode)}: ${error instanceof Error ? error.message : String(error)}` };
    }
  };
}

/** The top-level field whose value alone makes `decode` throw (each decoded on its own), or `message`. */
function failingField(type: protobuf.Type, bytes: Buffer, decode: (bytes: Buffer) => unknown): string {
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const tag = reader.uint32();
    reader.skipType(tag & 7);
    try {
      decode(bytes.subarray(start, reader.pos));
    } catch {
      return type.fieldsById[tag >>> 3]?.name ?? `<field ${tag >>> 3}>`;
    }
  }
  return 'message';
}

/**
 * Why a stream's first request cannot be served, as the stream refuses it when it handles it
 * (AdsStream and DeltaStream `handle`: the same fields, the same messages), or undefined. On
 * 15012 a stream's first request is checked with this as soon as it arrives, while the caller's
 * token waits for its review: a malformed one is refused at once with INVALID_ARGUMENT. That
 * costs nothing, reveals nothing of the mesh (the message names a field of the request), and
 * serves nothing before authentication; a request that passes still waits for it. Found by
 * `make chaos` at 2,000 proxies: malformed requests waited behind the fleet's token reviews.
 */
export function firstRequestProblem(request: DiscoveryRequest | DeltaDiscoveryRequest, delta: boolean): string | undefined {
  const kind = delta ? 'DeltaDiscoveryRequest' : 'DiscoveryRequest';
  try {
    checkRequest(kind, request, true);
    if (!request.node?.id) return `node.id: the first ${kind} on a stream must carry node.id`;
    if (!request.type_url)
      return delta
        ? 'type_url: missing (every DeltaDiscoveryRequest names its type)'
        : 'type_url: missing (this server speaks ADS: every request names its type)';
    if (delta) {
      checkNames((request as DeltaDiscoveryRequest).resource_names_subscribe ?? [], 'resource_names_subscribe');
      checkNames((request as DeltaDiscoveryRequest).resource_names_unsubscribe ?? [], 'resource_names_unsubscribe');
    } else checkNames((request as DiscoveryRequest).resource_names ?? []);
    return undefined;
  } catch (error) {
    if (error instanceof ProtocolError) return error.message;
    throw error;
  }
}
