// Decodes xDS resources the way a proxy must: strictly against Envoy's protos,
// nested typed configs included, with nothing unknown or dropped.
import { typeOf } from '../../xds/protos.js';

/** Decodes every resource strictly against Envoy's protos, nested typed configs included, as a proxy would. */
export function decodeStrictly(typeUrl: string, bytes: Buffer): Record<string, unknown> {
  const type = typeOf(typeUrl);
  const message = type.decode(bytes);
  const problem = type.verify(message);
  if (problem) throw new Error(`${typeUrl}: ${problem}`);
  // Re-encoding the decoded message yields the same bytes: nothing was unknown or dropped.
  expect(Buffer.from(type.encode(message).finish()).equals(bytes)).toBe(true);
  const object = type.toObject(message, { longs: String, enums: String, defaults: false }) as Record<string, unknown>;
  return expandAnys(object);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function expandAnys(value: unknown): any {
  if (Array.isArray(value)) return value.map(expandAnys);
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (typeof record['type_url'] === 'string' && record['value'] instanceof Uint8Array) {
      return { '@type': record['type_url'], ...decodeStrictly(record['type_url'], Buffer.from(record['value'])) };
    }
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, expandAnys(v)]));
  }
  return value;
}
