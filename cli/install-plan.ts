// `weft install`, pure: what to apply. install.yaml's objects (CRDs first, since
// the rest may need them) and a MeshInstallation from --profile, -f and --set,
// checked against the CRD's schema so a typo fails here, naming the field.
import { parse } from 'yaml';
import { meshInstallationApi } from '../api/mesh-installation.js';
import { CliError } from './cli-error.js';

export type Json = Record<string, unknown>;

export interface Schema {
  type?: string;
  enum?: unknown[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
}

export interface InstallationInput {
  name: string;
  profile?: string;
  /** `path.to.field=value`, relative to spec. */
  sets: string[];
  /** A MeshInstallation (or just its spec) to start from, as read from -f. */
  base?: Json;
}

/** The MeshInstallation spec schema inside Weft's CRDs. */
export function meshInstallationSpecSchema(crds: Json[]): Schema {
  const crd = crds.find((c) => (c['spec'] as { names?: { kind?: string } } | undefined)?.names?.kind === meshInstallationApi.kind);
  const versions = ((crd?.['spec'] as { versions?: Array<{ name: string; schema?: { openAPIV3Schema?: Schema } }> }) ?? {}).versions ?? [];
  const schema = versions.find((v) => v.name === meshInstallationApi.version)?.schema?.openAPIV3Schema?.properties?.['spec'];
  if (!schema) throw new Error(`the ${meshInstallationApi.kind} CRD (${meshInstallationApi.version}) was not found among Weft's CRDs`);
  return schema;
}

function fieldSchema(schema: Schema, path: string[], source = '--set'): Schema {
  let current = schema;
  for (const [index, key] of path.entries()) {
    const next = current.properties?.[key] ?? (typeof current.additionalProperties === 'object' ? current.additionalProperties : undefined);
    if (!next) {
      const here = ['spec', ...path.slice(0, index)].join('.');
      const known = Object.keys(current.properties ?? {}).sort();
      throw new CliError(
        `${source}: ${here} has no field ${key}${known.length ? ` (it has: ${known.join(', ')})` : ''}; see \`kubectl explain meshinstallation.spec\``,
      );
    }
    current = next;
  }
  return current;
}

/** A --set value as the schema types it: strings stay strings ("1" for a revision), numbers and booleans are parsed. */
function typedValue(raw: string, schema: Schema, field: string): unknown {
  let value: unknown = raw;
  if (schema.type === 'integer' || schema.type === 'number') {
    value = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(value) || (schema.type === 'integer' && !Number.isInteger(value))) {
      throw new CliError(`--set ${field}=${raw}: expected ${schema.type === 'integer' ? 'an integer' : 'a number'}`);
    }
  } else if (schema.type === 'boolean') {
    if (raw !== 'true' && raw !== 'false') throw new CliError(`--set ${field}=${raw}: expected true or false`);
    value = raw === 'true';
  } else if (schema.type === 'object' || schema.type === 'array') {
    value = parse(raw);
  }
  if (schema.enum && !schema.enum.includes(value)) {
    throw new CliError(`--set ${field}=${raw}: must be one of ${schema.enum.join(', ')}`);
  }
  return value;
}

function setAt(target: Json, path: string[], value: unknown): void {
  let current = target;
  for (const key of path.slice(0, -1)) {
    const next = current[key];
    if (!next || typeof next !== 'object' || Array.isArray(next)) current[key] = {};
    current = current[key] as Json;
  }
  current[path.at(-1) as string] = value;
}

/** The MeshInstallation to apply: -f, then --profile, then each --set in order. The CRD's defaults fill the rest. */
export function meshInstallationFrom(input: InstallationInput, specSchema: Schema): Json {
  const base = input.base ?? {};
  const baseSpec = (base['kind'] === meshInstallationApi.kind || typeof base['spec'] === 'object' ? base['spec'] : base) as
    Json | undefined;
  const spec: Json = structuredClone(baseSpec ?? {});
  const metadataName = ((base['metadata'] as { name?: string } | undefined)?.name ?? input.name) || 'default';
  if (input.profile !== undefined) spec['profile'] = typedValue(input.profile, fieldSchema(specSchema, ['profile']), 'profile');
  for (const expression of input.sets) {
    const equals = expression.indexOf('=');
    if (equals <= 0) throw new CliError(`--set ${expression}: expected path=value, for example --set meshConfig.trustDomain=example.org`);
    const field = expression.slice(0, equals).replace(/^spec\./, '');
    const path = field.split('.');
    if (path.some((key) => key === '')) throw new CliError(`--set ${expression}: the path has an empty part`);
    setAt(spec, path, typedValue(expression.slice(equals + 1), fieldSchema(specSchema, path), field));
  }
  // Validate what -f brought too (the API server would drop unknown fields silently).
  const check = (value: unknown, path: string[]): void => {
    const schema = fieldSchema(specSchema, path, '-f');
    if (schema.properties && value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, child] of Object.entries(value)) check(child, [...path, key]);
    }
  };
  for (const [key, value] of Object.entries(spec)) check(value, [key]);
  return {
    apiVersion: meshInstallationApi.apiVersion,
    kind: meshInstallationApi.kind,
    metadata: { name: metadataName },
    spec,
  };
}

/** install.yaml's objects in apply order: CustomResourceDefinitions first, then the rest as listed. */
export function applyOrder<T extends { kind?: string }>(manifests: T[]): { crds: T[]; rest: T[] } {
  return {
    crds: manifests.filter((m) => m.kind === 'CustomResourceDefinition'),
    rest: manifests.filter((m) => m.kind !== 'CustomResourceDefinition'),
  };
}
