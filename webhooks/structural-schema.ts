// The JSON type checks the API server makes against a CRD's structural schema before a
// validating webhook is called (crds/istio, Istio's CRDs unchanged). The webhook makes
// them itself so that a wrong type (a number where Istio's API has a string) gets a
// refusal naming the field instead of reaching the semantic validators, which read typed
// objects. Nulls are dropped as the API server prunes them from non-nullable fields
// (Kubernetes docs, "Defaulting and Nullable"); a null list item is refused, as there.
import { readWeftCrds } from '../api/crds.js';

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  nullable?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

let schemas: Map<string, Schema> | undefined;

/** The served schema of `group/version` `kind` among the vendored CRDs, if there is one. */
function schemaOf(apiVersion: string, kind: string): Schema | undefined {
  if (!schemas) {
    schemas = new Map();
    for (const crd of readWeftCrds() as Array<{
      spec?: { group?: string; names?: { kind?: string }; versions?: Array<{ name?: string; schema?: { openAPIV3Schema?: Schema } }> };
    }>) {
      for (const version of crd.spec?.versions ?? []) {
        const schema = version.schema?.openAPIV3Schema;
        if (schema) schemas.set(`${crd.spec?.group}/${version.name} ${crd.spec?.names?.kind}`, schema);
      }
    }
  }
  return schemas.get(`${apiVersion} ${kind}`);
}

const jsonType = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;

function check(value: unknown, schema: Schema, path: string, problems: string[]): unknown {
  if (problems.length >= 10) return value;
  if (schema['x-kubernetes-int-or-string']) {
    if (typeof value !== 'string' && !Number.isInteger(value))
      problems.push(`${path}: must be an integer or a string, got ${jsonType(value)}`);
    return value;
  }
  const type = schema.type;
  const actual = jsonType(value);
  if (type && !(type === actual || (type === 'number' && actual === 'integer'))) {
    problems.push(`${path}: must be of type ${type}, got ${actual}`);
    return value;
  }
  if (Array.isArray(value)) {
    return value.map((item, i) => {
      if (item === null && !schema.items?.nullable) {
        problems.push(`${path}[${i}]: must not be null`);
        return item;
      }
      return schema.items ? check(item, schema.items, `${path}[${i}]`, problems) : item;
    });
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (item === null && !schema.properties?.[key]?.nullable) continue;
      const child = schema.properties?.[key] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      // Fields the schema does not know are pruned by the API server; the validators ignore them.
      Object.defineProperty(out, key, {
        value: child ? check(item, child, `${path}.${key}`, problems) : item,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}

/**
 * `spec` of an object of `apiVersion` `kind` checked against its CRD's structural schema.
 * Returns the problems (`spec.http[0].timeout: must be of type string, got integer`, at most
 * ten) and the spec as the API server would store it (non-nullable nulls dropped). Kinds
 * without a vendored CRD come back unchanged, with no problems.
 */
export function structuralProblems(apiVersion: string, kind: string, spec: unknown): { problems: string[]; spec: unknown } {
  const crd = schemaOf(apiVersion, kind);
  if (!crd) {
    const served = [...(schemas ?? new Map<string, Schema>()).keys()].filter(
      (key) => key.endsWith(` ${kind}`) && key.startsWith(`${apiVersion.split('/')[0]}/`),
    );
    // A kind Istio serves, asked for in a version it does not: the API server would never send it.
    if (served.length > 0)
      return {
        problems: [
          `request.kind.version: ${JSON.stringify(apiVersion.split('/').slice(1).join('/')).slice(0, 64)} is not a served version of ${kind} (${served.map((key) => key.split(' ')[0]).join(', ')})`,
        ],
        spec,
      };
    return { problems: [], spec };
  }
  const schema = crd.properties?.['spec'];
  if (!schema || spec === undefined || spec === null) return { problems: [], spec };
  const problems: string[] = [];
  const checked = check(spec, schema, 'spec', problems);
  return { problems, spec: checked };
}
