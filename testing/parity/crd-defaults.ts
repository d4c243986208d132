// The defaults the API server writes into a custom resource from its CRD's OpenAPI schema
// (apiextensions-apiserver's structural defaulting), for parity cases: Istio's fake API server
// stores objects as written, while both istiod and weftd read them from a real one, defaulted
// (an HTTPRoute match without `path` is `PathPrefix /`; a header match without `type` is `Exact`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

/** The part of an OpenAPI v3 schema defaulting walks. */
interface Schema {
  type?: string;
  default?: unknown;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
}

interface Crd {
  spec: { group: string; names: { kind: string }; versions: Array<{ name: string; schema?: { openAPIV3Schema?: Schema } }> };
}

const repositoryRoot = join(import.meta.dirname, '..', '..');
/** The Gateway API CRDs Weft vendors (crds/gateway-api/gateway-api.yaml). */
export const gatewayApiCrdFile = join(repositoryRoot, 'crds', 'gateway-api', 'gateway-api.yaml');

const schemasByFile = new Map<string, Map<string, Schema>>();

/** Each CRD version's schema in `file`, by `<group>/<version>/<kind>`. */
function schemasOf(file: string): Map<string, Schema> {
  let schemas = schemasByFile.get(file);
  if (schemas) return schemas;
  schemas = new Map();
  for (const document of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const crd = document.toJS() as Crd | null;
    if (!crd?.spec?.versions) continue;
    for (const version of crd.spec.versions) {
      const schema = version.schema?.openAPIV3Schema;
      if (schema) schemas.set(`${crd.spec.group}/${version.name}/${crd.spec.names.kind}`, schema);
    }
  }
  schemasByFile.set(file, schemas);
  return schemas;
}

/**
 * `object` (a custom resource, `apiVersion` `<group>/<version>`) with its CRD's defaults filled in,
 * as the API server stores it: a property absent from an object the schema describes takes the
 * schema's `default`, then defaulting continues inside it, through properties, array items and
 * additionalProperties. Returns a copy; the input is not changed. Throws naming the `apiVersion`
 * and `kind` when `file` (the Gateway API CRDs by default) has no CRD version for them.
 */
export function withCrdDefaults<T extends { apiVersion?: string; kind?: string }>(object: T, file = gatewayApiCrdFile): T {
  const schema = schemasOf(file).get(`${object.apiVersion}/${object.kind}`);
  if (!schema) throw new Error(`no CRD in ${file} serves apiVersion ${object.apiVersion} kind ${object.kind}`);
  return defaulted(structuredClone(object), schema) as T;
}

function defaulted(value: unknown, schema: Schema): unknown {
  if (Array.isArray(value)) {
    if (schema.items) for (let i = 0; i < value.length; i++) value[i] = defaulted(value[i], schema.items);
    return value;
  }
  if (value === null || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    if (object[name] === undefined && property.default !== undefined) object[name] = structuredClone(property.default);
    if (object[name] !== undefined) object[name] = defaulted(object[name], property);
  }
  if (typeof schema.additionalProperties === 'object') {
    for (const name of Object.keys(object)) {
      if (!(name in (schema.properties ?? {}))) object[name] = defaulted(object[name], schema.additionalProperties);
    }
  }
  return object;
}
