// Istio's AuthorizationPolicy examples in, HTTP filters out: every case is
// generated for Envoy sidecars and proxyless gRPC, decoded strictly against
// Envoy's protos and compared with its golden file. The gRPC filters are also
// fed to grpc-js-xds's own RBAC filter parser, which then decides requests: the
// semantics below are checked on the real gRPC implementation.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { IAuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import { parseAllDocuments, stringify } from 'yaml';
import { expectMatchesGolden } from '../../testing/jest/golden.js';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import {
  authorizationFilters,
  rbacFilterType,
  type AuthorizationInput,
  type HttpFilter,
  type SecurityTarget,
} from './authorization-policies.js';
import { pathMatcher } from './matchers.js';

const testdata = join(import.meta.dirname, 'testdata');

const extensionProviders: AuthorizationInput['extensionProviders'] = {
  'my-custom-authz': {
    envoyExtAuthzHttp: {
      service: 'ext-authz.foo.svc.cluster.local',
      port: 8000,
      timeout: '2s',
      includeRequestHeadersInCheck: ['x-ext-authz'],
      headersToUpstreamOnAllow: ['x-ext-authz-*'],
      includeAdditionalHeadersInCheck: { 'x-weft': 'yes' },
    },
  },
  'sample-ext-authz-grpc': { envoyExtAuthzGrpc: { service: 'ext-authz.foo.svc.cluster.local', port: 9000, failOpen: false } },
};

function policiesOf(caseName: string): IAuthorizationPolicy[] {
  return parseAllDocuments(readFileSync(join(testdata, 'cases', `${caseName}.yaml`), 'utf8')).map((d) => d.toJS() as IAuthorizationPolicy);
}

function generate(caseName: string, target: SecurityTarget, port = 8080) {
  return authorizationFilters({
    policies: policiesOf(caseName),
    trustDomain: 'cluster.local',
    trustDomainAliases: caseName === 'matchers' ? ['old-td'] : [],
    port,
    target,
    extensionProviders,
  });
}

const decoded = (filters: HttpFilter[]) =>
  filters.map((f) => ({ name: f.name, typed_config: decodeStrictly(f.typed_config.type_url, f.typed_config.value) }));

const cases = [
  'reference-allow',
  'reference-deny',
  'allow-nothing',
  'allow-all',
  'deny-task',
  'http-traffic',
  'audit',
  'dry-run',
  'custom',
  'request-principals',
  'matchers',
];

// grpc-js-xds registers its RBAC filter only when this is set before it loads.
process.env['GRPC_XDS_EXPERIMENTAL_RBAC'] = 'true';
const require = createRequire(import.meta.url);
require('@grpc/grpc-js-xds'); // loads the proto definitions its filters' parsers need
const grpcHttpFilter = require('@grpc/grpc-js-xds/build/src/http-filter.js') as {
  validateTopLevelFilter(filter: { name: string; typed_config: unknown; is_optional: boolean }, client: boolean): boolean;
  parseTopLevelFilterConfig(config: unknown, client: boolean): { config: { apply(info: unknown): boolean } } | null;
};
(require('@grpc/grpc-js-xds/build/src/http-filter/rbac-filter.js') as { setup(): void }).setup();

interface Request {
  path?: string;
  method?: string;
  authority?: string;
  headers?: Record<string, string>;
  sourceIp?: string;
  destinationIp?: string;
  port?: number;
  /** The peer's SPIFFE id (mTLS). */
  principal?: string;
}

/** Runs the filters as grpc-js-xds's server does: each RBAC filter in order, the first refusal wins. */
function grpcAllows(filters: HttpFilter[], request: Request): boolean {
  const headers: Record<string, string> = {
    ':method': request.method ?? 'POST',
    ':authority': request.authority ?? 'httpbin.foo.svc.cluster.local:8080',
    ':path': request.path ?? '/',
    ...request.headers,
  };
  const info = {
    destinationIp: request.destinationIp ?? '10.96.0.10',
    destinationPort: request.port ?? 8080,
    sourceIp: request.sourceIp ?? '10.1.2.3',
    // grpc-js's Metadata: keys are case-insensitive.
    headers: { get: (name: string) => (headers[name.toLowerCase()] === undefined ? [] : [headers[name.toLowerCase()]]) },
    tls: request.principal !== undefined,
    peerCertificate: request.principal ? { subjectaltname: `URI:${request.principal}`, subject: {} } : null,
    urlPath: request.path ?? '/',
  };
  return filters.every((f) => {
    const parsed = grpcHttpFilter.parseTopLevelFilterConfig(f.typed_config, false);
    if (!parsed) throw new Error(`grpc-js-xds refuses ${f.name}`);
    return parsed.config.apply(info);
  });
}

describe.each(['sidecar', 'grpc'] as const)('Istio AuthorizationPolicy examples for %s proxies', (target) => {
  it.each(cases)('%s decodes strictly and matches its golden file', (caseName) => {
    const { custom, rbac, problems } = generate(caseName, target);
    expectMatchesGolden(
      join(testdata, 'golden', `${caseName}.${target}.yaml`),
      stringify({ custom: decoded(custom), rbac: decoded(rbac), problems }),
    );
  });
});

describe('proxyless gRPC gets only what grpc-js-xds implements', () => {
  // What grpc-js-xds's rbac.js parses into something other than "never matches" (NoneRule, Metadata) or refuses (LOG).
  const permissionKinds = new Set(['and_rules', 'or_rules', 'not_rule', 'any', 'header', 'url_path', 'destination_ip', 'destination_port']);
  const principalKinds = new Set([
    'and_ids',
    'or_ids',
    'not_id',
    'any',
    'authenticated',
    'source_ip',
    'direct_remote_ip',
    'remote_ip',
    'header',
    'url_path',
  ]);
  const stringKinds = new Set(['exact', 'prefix', 'suffix', 'safe_regex', 'contains', 'ignore_case']);

  function check(node: Record<string, any>, kinds: Set<string>, path: string): void {
    const [kind, ...others] = Object.keys(node);
    expect(others).toEqual([]);
    if (!kinds.has(kind as string)) throw new Error(`${path}: ${kind} is not implemented by grpc-js-xds`);
    const value = node[kind as string];
    if (kind === 'and_rules' || kind === 'or_rules') for (const r of value.rules) check(r, kinds, `${path}.${kind}`);
    if (kind === 'and_ids' || kind === 'or_ids') for (const r of value.ids) check(r, kinds, `${path}.${kind}`);
    if (kind === 'not_rule' || kind === 'not_id') check(value, kinds, `${path}.${kind}`);
    if (kind === 'authenticated') checkString(value.principal_name, path);
    if (kind === 'url_path') checkString(value.path, path);
    if (kind === 'header') {
      const { name, string_match, present_match, invert_match, ...rest } = value;
      expect([typeof name, rest]).toEqual(['string', {}]);
      if (string_match) checkString(string_match, path);
      else expect(present_match ?? invert_match).toBe(true);
    }
  }
  function checkString(matcher: Record<string, unknown>, path: string): void {
    for (const k of Object.keys(matcher)) if (!stringKinds.has(k)) throw new Error(`${path}: string matcher ${k}`);
  }

  it.each(cases)('%s: only supported principals and permissions, accepted by grpc-js-xds', (caseName) => {
    const { custom, rbac } = generate(caseName, 'grpc');
    expect(custom).toEqual([]);
    expect(new Set(rbac.map((f) => f.name)).size).toBe(rbac.length);
    for (const f of rbac) {
      expect(f.typed_config.type_url).toBe(rbacFilterType);
      const config = decodeStrictly(f.typed_config.type_url, f.typed_config.value) as Record<string, any>;
      expect(Object.keys(config)).toEqual(['rules']);
      expect(['ALLOW', 'DENY', undefined]).toContain(config['rules'].action);
      for (const [name, policy] of Object.entries(config['rules'].policies ?? {}) as Array<[string, any]>) {
        for (const p of policy.permissions) check(p, permissionKinds, `${name}.permissions`);
        for (const p of policy.principals) check(p, principalKinds, `${name}.principals`);
        expect(Object.keys(policy).sort()).toEqual(['permissions', 'principals']);
      }
      expect(grpcHttpFilter.validateTopLevelFilter({ name: f.name, typed_config: f.typed_config, is_optional: false }, false)).toBe(true);
    }
  });
});

describe('AuthorizationPolicy semantics', () => {
  it('allows everything without policies, and builds no filter', () => {
    for (const target of ['sidecar', 'grpc'] as const) {
      const result = authorizationFilters({ policies: [], trustDomain: 'cluster.local', port: 8080, target });
      expect(result).toEqual({ custom: [], rbac: [], problems: [] });
    }
  });

  it('denies everything with spec: {} and allows everything with rules: [{}]', () => {
    const nothing = generate('allow-nothing', 'grpc').rbac;
    expect(grpcAllows(nothing, { path: '/anything' })).toBe(false);
    const all = generate('allow-all', 'grpc').rbac;
    expect(grpcAllows(all, { path: '/anything', sourceIp: '192.0.2.1' })).toBe(true);
    // Same shapes for Envoy: an ALLOW filter whose only policy never matches.
    const [filter] = decoded(generate('allow-nothing', 'sidecar').rbac);
    expect(filter?.typed_config).toMatchObject({
      rules: {
        policies: {
          'ns[foo]-policy[allow-nothing]-rule[0]': { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] },
        },
      },
    });
    expect((filter?.typed_config['rules'] as Record<string, unknown>)['action']).toBeUndefined(); // ALLOW is the default (0)
  });

  it('orders CUSTOM, then AUDIT, DENY, ALLOW', () => {
    const { custom, rbac } = generate('custom', 'sidecar');
    expect(custom.map((f) => f.name)).toEqual([
      'envoy.filters.http.rbac.CUSTOM.my-custom-authz',
      'envoy.filters.http.ext_authz.my-custom-authz',
      'envoy.filters.http.rbac.CUSTOM.sample-ext-authz-grpc',
      'envoy.filters.http.ext_authz.sample-ext-authz-grpc',
    ]);
    expect(rbac.map((f) => f.name)).toEqual(['envoy.filters.http.rbac.DENY', 'envoy.filters.http.rbac.ALLOW']);
    const audited = generate('audit', 'sidecar').rbac;
    expect(decoded(audited)[0]?.typed_config).toMatchObject({ rules: { action: 'LOG' } });
  });

  it('DENY wins over ALLOW (the deny task)', () => {
    const { rbac } = generate('deny-task', 'grpc');
    expect(grpcAllows(rbac, { path: '/ip', headers: { 'x-token': 'admin' } })).toBe(true);
    expect(grpcAllows(rbac, { path: '/ip', headers: { 'x-token': 'guest' } })).toBe(false);
    expect(grpcAllows(rbac, { path: '/ip', method: 'GET', headers: { 'x-token': 'guest' } })).toBe(false);
    expect(grpcAllows(rbac, { path: '/headers', headers: { 'x-token': 'admin' } })).toBe(false);
  });

  it('matches principals as SPIFFE ids, with the HTTP traffic task', () => {
    const { rbac } = generate('http-traffic', 'grpc');
    expect(grpcAllows(rbac, { method: 'GET', principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage' })).toBe(true);
    expect(grpcAllows(rbac, { method: 'GET', principal: 'spiffe://cluster.local/ns/default/sa/reviews' })).toBe(false);
    expect(grpcAllows(rbac, { method: 'GET' })).toBe(false);
    // gRPC calls are POST: the GET rule never matches one (Istio's rule), which is reported.
    expect(grpcAllows(rbac, { principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage' })).toBe(false);
    expect(generate('http-traffic', 'grpc').problems).toEqual([
      { policy: 'default/details-viewer', message: expect.stringContaining('always POST') },
    ]);
  });

  it('translates principal, namespace and trust domain wildcards as Istio does', () => {
    const filter = decoded(generate('matchers', 'sidecar').rbac).find((f) => f.name === 'envoy.filters.http.rbac.ALLOW');
    const policy = (filter?.typed_config as any).rules.policies['ns[foo]-policy[matchers]-rule[0]'];
    const [principals, ...rest] = policy.principals[0].and_ids.ids;
    expect(principals.or_ids.ids.map((p: any) => p.authenticated.principal_name)).toEqual([
      { safe_regex: { regex: '.+' } },
      { prefix: 'spiffe://cluster.local/ns/foo/sa/' },
      { prefix: 'spiffe://old-td/ns/foo/sa/' },
      { safe_regex: { regex: 'spiffe://.*/sa/admin' } },
    ]);
    expect(rest[0].or_ids.ids[0].authenticated.principal_name).toEqual({ safe_regex: { regex: '.*/ns/prod-.*/.*' } });
    expect(rest[1].not_id.or_ids.ids[0].authenticated.principal_name).toEqual({ safe_regex: { regex: '.*/ns/prod-legacy/.*' } });
    const sa = policy.principals[1].and_ids.ids[0].or_ids.ids.map((p: any) => p.authenticated.principal_name.safe_regex.regex);
    expect(sa).toEqual(['spiffe://.+/ns/foo/(.+/|)sa/robot(/.+)?', 'spiffe://.+/ns/ops/(.+/|)sa/deployer(/.+)?']);
  });

  it('evaluates the matchers on grpc-js-xds: paths, templates, hosts, IPs, ports', () => {
    const { rbac, problems } = generate('matchers', 'grpc');
    const ok: Request = {
      path: '/api/v1/items/a/b',
      authority: 'shop.example.com',
      sourceIp: '10.1.2.3',
      principal: 'spiffe://cluster.local/ns/prod-a/sa/x',
      headers: { 'user-agent': 'curl/8.0' },
    };
    expect(grpcAllows(rbac, ok)).toBe(true);
    expect(grpcAllows(rbac, { ...ok, authority: 'SHOP.Example.COM' })).toBe(true);
    expect(grpcAllows(rbac, { ...ok, authority: 'internal.example.com' })).toBe(false);
    expect(grpcAllows(rbac, { ...ok, path: '/api/v1/items/' })).toBe(true); // {**} matches zero segments
    expect(grpcAllows(rbac, { ...ok, path: '/api/v1/x/items/a' })).toBe(false); // {*} is one segment
    expect(grpcAllows(rbac, { ...ok, path: '/api/v0/items/a' })).toBe(false); // notPaths
    expect(grpcAllows(rbac, { ...ok, path: '/data.json' })).toBe(true);
    expect(grpcAllows(rbac, { ...ok, sourceIp: '10.1.9.9' })).toBe(false); // notIpBlocks
    expect(grpcAllows(rbac, { ...ok, principal: 'spiffe://cluster.local/ns/prod-legacy/sa/x' })).toBe(false);
    expect(grpcAllows(rbac, { ...ok, principal: 'spiffe://cluster.local/ns/prod-a/sa/intruder' })).toBe(false);
    expect(grpcAllows(rbac, { ...ok, headers: { 'user-agent': 'wget' } })).toBe(false);
    // The deny-sni policy lost connection.sni on gRPC: it denies whenever x-debug is present.
    expect(grpcAllows(rbac, { ...ok, headers: { 'user-agent': 'curl/8.0', 'x-debug': '1' } })).toBe(false);
    expect(problems).toEqual(
      expect.arrayContaining([
        { policy: 'foo/matchers', message: expect.stringMatching(/rule 1: source\.rank: unknown condition key.*left out/) },
        { policy: 'foo/deny-sni', message: expect.stringMatching(/rule 1: connection\.sni.*matches more requests/) },
      ]),
    );
    // Served on another port, `ports: ["8080"]` never holds and the other `to` (9090) neither: nothing is allowed.
    expect(grpcAllows(generate('matchers', 'grpc', 9090).rbac, { ...ok, port: 9090 })).toBe(false);
  });

  it('fails closed on gRPC for what it cannot enforce', () => {
    const { rbac, problems } = generate('request-principals', 'grpc');
    // ALLOW rules on requestPrincipals are left out: only /healthz is allowed; the DENY on a missing token lost its
    // principal and denies /admin* to everyone.
    expect(grpcAllows(rbac, { path: '/healthz', authority: 'example.com' })).toBe(true);
    expect(grpcAllows(rbac, { path: '/status', authority: 'example.com' })).toBe(false);
    expect(grpcAllows(rbac, { path: '/admin/x' })).toBe(false);
    expect(problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/^proxyless gRPC: rule 0: request\.auth\.principal: .*left out/),
      expect.stringMatching(/^proxyless gRPC: rule 1: request\.auth\.principal: .*left out/),
      expect.stringMatching(/^proxyless gRPC: rule 0: not request\.auth\.principal: .*matches more requests/),
    ]);
    const custom = generate('custom', 'grpc');
    expect(grpcAllows(custom.rbac, { path: '/admin/users' })).toBe(false);
    expect(grpcAllows(custom.rbac, { path: '/headers' })).toBe(false);
    expect(grpcAllows(custom.rbac, { path: '/ok' })).toBe(true);
    const audit = generate('audit', 'grpc');
    expect(audit.rbac).toEqual([]);
    expect(audit.problems).toEqual([{ policy: 'ns1/anyname', message: expect.stringContaining('AUDIT policies are not supported') }]);
  });

  it('reads request principals and claims from the jwt_authn filter metadata on Envoy', () => {
    const [, allow] = decoded(generate('request-principals', 'sidecar').rbac);
    const rule = (allow?.typed_config as any).rules.policies['ns[foo]-policy[httpbin]-rule[0]'];
    expect(rule.principals[0].and_ids.ids[0]).toEqual({
      and_ids: {
        ids: [
          {
            metadata: {
              filter: 'envoy.filters.http.jwt_authn',
              path: [{ key: 'payload' }, { key: 'iss' }],
              value: { string_match: { exact: 'issuer-foo' } },
            },
          },
          {
            metadata: {
              filter: 'envoy.filters.http.jwt_authn',
              path: [{ key: 'payload' }, { key: 'sub' }],
              value: { string_match: { safe_regex: { regex: '.+' } } },
            },
          },
        ],
      },
    });
    expect(rule.permissions[0].and_rules.rules[0].or_rules.rules[0].header).toEqual({
      name: ':authority',
      string_match: { exact: 'example.com', ignore_case: true },
    });
  });

  it('sends CUSTOM requests to the provider only when a CUSTOM rule matched, and denies for an unknown provider', () => {
    const { custom, rbac, problems } = generate('custom', 'sidecar');
    const [shadow, extAuthz] = decoded(custom);
    expect(shadow?.typed_config).toMatchObject({
      shadow_rules: { action: 'DENY', policies: { 'istio-ext-authz-my-custom-authz-ns[istio-system]-policy[ext-authz]-rule[0]': {} } },
      shadow_rules_stat_prefix: 'istio_ext_authz_',
    });
    expect(extAuthz?.typed_config).toMatchObject({
      http_service: {
        server_uri: { uri: 'http://ext-authz.foo.svc.cluster.local', cluster: 'outbound|8000||ext-authz.foo.svc.cluster.local' },
      },
      filter_enabled_metadata: {
        filter: 'envoy.filters.http.rbac',
        path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
        value: { string_match: { prefix: 'istio-ext-authz-my-custom-authz' } },
      },
    });
    const deny = decoded(rbac)[0]?.typed_config as any;
    expect(Object.keys(deny.rules.policies)).toContain('ns[foo]-policy[ext-authz-missing]-rule[0]-deny-due-to-bad-CUSTOM-action');
    expect(problems).toEqual([{ policy: 'foo/ext-authz-missing', message: expect.stringContaining('"not-defined" is not defined') }]);
  });

  it('keeps dry-run policies in shadow rules on Envoy and leaves them out on gRPC', () => {
    const [deny] = decoded(generate('dry-run', 'sidecar').rbac);
    expect(Object.keys((deny?.typed_config as any).rules.policies)).toEqual(['ns[foo]-policy[deny-delete]-rule[0]']);
    expect(Object.keys((deny?.typed_config as any).shadow_rules.policies)).toEqual(['ns[foo]-policy[dry-run-example]-rule[0]']);
    expect(generate('dry-run', 'grpc').problems).toContainEqual({
      policy: 'foo/dry-run-example',
      message: expect.stringContaining('dry-run'),
    });
  });

  it('turns path templates into the regex of Envoy uri_template', () => {
    expect(pathMatcher('/foo/{*}/bar/{**}')).toEqual({
      safe_regex: { regex: "/foo/[a-zA-Z0-9._~%!$&'()+,;:@=-]+/bar/[a-zA-Z0-9._~%!$&'()+,;:@=/-]*" },
    });
    expect(pathMatcher('/v1.2/{*}')).toEqual({ safe_regex: { regex: "/v1\\.2/[a-zA-Z0-9._~%!$&'()+,;:@=-]+" } });
    expect(pathMatcher('/info*')).toEqual({ prefix: '/info' });
    expect(pathMatcher('*.json')).toEqual({ suffix: '.json' });
    expect(pathMatcher('*')).toEqual({ safe_regex: { regex: '.+' } });
  });
});
