// weftd's /debug/config_dump for one proxy: each subscribed type with the
// resources sent, decoded. Nested typed configs (google.protobuf.Any) arrive
// packed; they are unpacked here against Envoy's protos so tables can read them.
import { typeOf } from '../xds/protos.js';

export type Json = Record<string, unknown>;

export interface ConfigDump {
  nodeId: string;
  configs: Array<{ typeUrl: string; version?: string; resources: Json[] }>;
}

function unpack(typeUrl: string, base64: string): Json | undefined {
  try {
    const type = typeOf(typeUrl);
    return type.toObject(type.decode(Buffer.from(base64, 'base64')), { longs: String, enums: String, bytes: String }) as Json;
  } catch {
    return undefined; // a type Weft does not know: left packed
  }
}

/** Every `{type_url, value}` whose type is known becomes `{"@type": ..., ...fields}`, as Envoy's own dump shows it. */
export function expandAnys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(expandAnys);
  if (!value || typeof value !== 'object') return value;
  const record = value as Json;
  const keys = Object.keys(record);
  if (typeof record['type_url'] === 'string' && keys.every((k) => k === 'type_url' || k === 'value')) {
    const fields = unpack(record['type_url'], typeof record['value'] === 'string' ? record['value'] : '');
    if (fields) return { '@type': record['type_url'], ...(expandAnys(fields) as Json) };
    return record;
  }
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, expandAnys(v)]));
}

export function expandConfigDump(dump: ConfigDump): ConfigDump {
  return { ...dump, configs: dump.configs.map((config) => ({ ...config, resources: config.resources.map((r) => expandAnys(r) as Json) })) };
}

export function resourcesOf(dump: ConfigDump, typeUrl: string): Json[] {
  return dump.configs.filter((config) => config.typeUrl === typeUrl).flatMap((config) => config.resources);
}
