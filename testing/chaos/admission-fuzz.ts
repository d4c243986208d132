// Structure-aware fuzzing of AdmissionReviews, from real objects: the injector's pods
// (webhooks/injection/testdata) and Istio's documented examples (xds/traffic and
// xds/security cases, istio/validation's docs examples), each wrapped as the API
// server sends it. First a sweep gives every field of every review (the envelope
// included) a value of each wrong JSON type in turn; then random mutations stack one
// to four changes: deletions, boundary numbers, odd strings, huge lists, deep
// nesting, an object sent to the other webhook.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Random } from './seeded-random.js';

export type WebhookPath = '/inject' | '/validate';

export interface FuzzCase {
  path: WebhookPath;
  review: unknown;
  /** What was done to the real object, for the report. */
  mutation: string;
  /** The field given a wrong JSON type by the sweep (`request.object.spec.hosts[0]`), if any. */
  wrongTypeField?: string;
}

export interface Seed {
  path: WebhookPath;
  name: string;
  review: Record<string, unknown>;
}

export const injectionNamespace = 'chaos-inject';

const plurals: Record<string, string> = {
  VirtualService: 'virtualservices',
  DestinationRule: 'destinationrules',
  ServiceEntry: 'serviceentries',
  Sidecar: 'sidecars',
  WorkloadEntry: 'workloadentries',
  WorkloadGroup: 'workloadgroups',
  Gateway: 'gateways',
  PeerAuthentication: 'peerauthentications',
  AuthorizationPolicy: 'authorizationpolicies',
  RequestAuthentication: 'requestauthentications',
  Telemetry: 'telemetries',
};

function podReview(pod: unknown, uid: string): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'CREATE',
      namespace: injectionNamespace,
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts'] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

function istioReview(object: Record<string, unknown>, uid: string, update: boolean): Record<string, unknown> {
  const [group, version] = String(object['apiVersion']).split('/');
  const kind = String(object['kind']);
  const metadata = (object['metadata'] ?? {}) as { name?: string; namespace?: string };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group, version, kind },
      resource: { group, version, resource: plurals[kind] ?? `${kind.toLowerCase()}s` },
      operation: update ? 'UPDATE' : 'CREATE',
      name: metadata.name,
      namespace: metadata.namespace ?? 'default',
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters'] },
      object,
      oldObject: update ? object : null,
      dryRun: false,
    },
  };
}

/** Every real object the fuzzing starts from, as AdmissionReviews. */
export function loadSeeds(repositoryRoot: string): Seed[] {
  const seeds: Seed[] = [];
  const yamlDocs = (file: string) =>
    parseAllDocuments(readFileSync(file, 'utf8'))
      .map((doc) => doc.toJS() as unknown)
      .filter((doc): doc is Record<string, unknown> => typeof doc === 'object' && doc !== null);
  const injection = join(repositoryRoot, 'webhooks', 'injection', 'testdata');
  seeds.push({ path: '/inject', name: 'deployment-pod', review: podReview(yamlDocs(join(injection, 'deployment-pod.yaml'))[0], 'seed') });
  for (const file of readdirSync(join(injection, 'golden')).sort()) {
    // Each golden file holds a pod as the injector returned it: already injected pods are real objects too.
    const pod = yamlDocs(join(injection, 'golden', file))[0]?.['pod'];
    if (pod) seeds.push({ path: '/inject', name: `golden ${file}`, review: podReview(pod, 'seed') });
  }
  const istioDirs = [
    join(repositoryRoot, 'xds', 'traffic', 'testdata', 'cases'),
    join(repositoryRoot, 'xds', 'security', 'testdata', 'cases'),
    join(repositoryRoot, 'istio', 'validation', 'testdata', 'istio-docs'),
  ];
  for (const dir of istioDirs) {
    for (const file of readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .sort()) {
      for (const [i, object] of yamlDocs(join(dir, file)).entries()) {
        if (!/\.istio\.io\//.test(String(object['apiVersion']))) continue;
        seeds.push({ path: '/validate', name: `${file}#${i} ${String(object['kind'])}`, review: istioReview(object, 'seed', i % 2 === 1) });
      }
    }
  }
  return seeds;
}

type Segment = string | number;

/**
 * Every field path below the root of `value`: object keys and list indexes, depth first; no
 * deeper than 40 levels and no further than the 50th item of a list, so what a mutation nested
 * or multiplied is itself a field, not thousands.
 */
export function fieldPaths(value: unknown, prefix: Segment[] = [], into: Segment[][] = []): Segment[][] {
  if (prefix.length >= 40) return into;
  if (Array.isArray(value)) {
    value.slice(0, 50).forEach((item, i) => {
      into.push([...prefix, i]);
      fieldPaths(item, [...prefix, i], into);
    });
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      // A `__proto__` key (from the prototype-keys mutation) stays as it is: assigning to it would change the prototype.
      if (key === '__proto__') continue;
      into.push([...prefix, key]);
      fieldPaths(item, [...prefix, key], into);
    }
  }
  return into;
}

export const describePath = (path: Segment[]): string =>
  path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');

function setAt(root: unknown, path: Segment[], value: unknown): void {
  let node = root as Record<Segment, unknown>;
  for (const segment of path.slice(0, -1)) node = node[segment] as Record<Segment, unknown>;
  const last = path[path.length - 1] as Segment;
  if (value === deleted) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else Reflect.deleteProperty(node, last);
  } else Object.defineProperty(node, last, { value, writable: true, enumerable: true, configurable: true });
}

const getAt = (root: unknown, path: Segment[]): unknown =>
  path.reduce<unknown>((node, segment) => (node as Record<Segment, unknown> | undefined)?.[segment], root);

const deleted = Symbol('deleted');

const jsonType = (value: unknown): string => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value);

/** A value of each JSON type; the sweep gives a field every one its own type is not. */
const wrongTypeValues: Array<[string, unknown]> = [
  ['string', 'chaos'],
  ['number', 7],
  ['boolean', true],
  ['null', null],
  ['array', ['chaos', 1]],
  ['object', { chaos: 1 }],
];

/** Mutations of the random phase: each takes the value at a field and returns its replacement (or `deleted`). */
const valueMutations: Array<[string, (value: unknown, random: Random) => unknown]> = [
  ['deleted', () => deleted],
  ['wrong type', (value, random) => random.pick(wrongTypeValues.filter(([type]) => type !== jsonType(value)))[1]],
  ['empty', (value) => (Array.isArray(value) ? [] : typeof value === 'object' && value ? {} : typeof value === 'string' ? '' : 0)],
  [
    'boundary number',
    (_value, random) => random.pick([0, -1, -2147483649, 2147483648, 9007199254740992, 1e308, -1e308, 0.000001, 65536, 4294967296]),
  ],
  [
    'odd string',
    (_value, random) =>
      random.pick([
        '',
        ' ',
        'x'.repeat(100_000),
        '\u0000',
        '💥\u202e',
        '../../etc/passwd',
        '*',
        '**',
        '(',
        '[a-',
        '${{}}',
        '%00',
        'true',
        '-1',
        '1e400',
        '0x10',
        '300s',
        '-5s',
        '1.5.6.7/99',
        '::1/129',
        'spiffe://cluster.local/ns/kube-system/sa/admin',
        'UPPER_case.Host',
        '__proto__',
        'constructor',
      ]),
  ],
  [
    'huge list',
    (value, random) =>
      Array.from({ length: random.pick([1000, 5000]) }, () =>
        Array.isArray(value) && value.length > 0 ? structuredClone(value[0]) : 'chaos',
      ),
  ],
  [
    'deep nesting',
    (_value, random) => {
      let nested: unknown = 'bottom';
      for (let i = 0; i < random.pick([100, 1000, 5000]); i++) nested = random.next() < 0.5 ? [nested] : { a: nested };
      return nested;
    },
  ],
  ['prototype keys', () => JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}') as unknown],
  ['duplicated list item', (value) => (Array.isArray(value) && value.length > 0 ? [...value, structuredClone(value[0])] : value)],
];

/**
 * `count` fuzzed reviews from `seeds`: about 60% from the wrong-type sweep (every field of
 * every seed, each wrong type in turn, in a seeded order so a short run samples them all),
 * the rest random stacks of one to four mutations. Each review gets a fresh uid.
 */
export function* fuzzCases(seeds: Seed[], random: Random, count: number): Generator<FuzzCase> {
  const fields = seeds.flatMap((seed) => fieldPaths(seed.review).map((path) => ({ seed, path })));
  for (let i = fields.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [fields[i], fields[j]] = [fields[j] as (typeof fields)[number], fields[i] as (typeof fields)[number]];
  }
  const sweep = Math.round(count * 0.6);
  let made = 0;
  for (let round = 0; made < sweep; round++) {
    for (const { seed, path } of fields) {
      if (made >= sweep) break;
      const own = jsonType(getAt(seed.review, path));
      const choices = wrongTypeValues.filter(([type]) => type !== own);
      const [type, value] = choices[round % choices.length] as [string, unknown];
      const review = structuredClone(seed.review);
      setAt(review, path, structuredClone(value));
      made++;
      yield {
        path: seed.path,
        review: withUid(review, made, path),
        mutation: `${seed.name}: ${describePath(path)} as ${type}`,
        wrongTypeField: describePath(path),
      };
    }
  }
  while (made < count) {
    const seed = random.pick(seeds);
    const review = structuredClone(seed.review);
    const done: string[] = [];
    for (let n = 1 + random.int(4); n > 0; n--) {
      // Fields of the object are most often worth changing; the envelope less so.
      const inside = fieldPaths(review).filter((p) => random.next() < 0.15 || p[1] === 'object');
      if (inside.length === 0) break;
      const path = random.pick(inside);
      const [name, mutate] = random.pick(valueMutations);
      const replacement = mutate(getAt(review, path), random);
      setAt(review, path, replacement === deleted ? deleted : structuredClone(replacement));
      done.push(`${describePath(path)} ${name}`);
    }
    // The API server never sends more than its own request limit (3 MiB); neither does the fuzzing.
    if (JSON.stringify(review).length > 2_000_000) continue;
    // Now and then the object goes to the other webhook, as a misconfigured webhook would send it.
    const path: WebhookPath = random.next() < 0.05 ? (seed.path === '/inject' ? '/validate' : '/inject') : seed.path;
    made++;
    yield {
      path,
      review: withUid(review, made, undefined),
      mutation: `${seed.name}: ${done.join(', ')}${path !== seed.path ? ` to ${path}` : ''}`,
    };
  }
}

/** A fresh uid per review unless the fuzzing changed the uid field itself. */
function withUid(review: unknown, n: number, changed: Segment[] | undefined): unknown {
  const request = (review as { request?: unknown }).request;
  const uidChanged = changed !== undefined && changed[0] === 'request' && (changed.length === 1 || changed[1] === 'uid');
  if (!uidChanged && request && typeof request === 'object' && !Array.isArray(request) && (request as { uid?: unknown }).uid === 'seed') {
    (request as { uid: string }).uid = `chaos-${n}`;
  }
  return review;
}
