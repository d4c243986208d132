// Istio's RequestAuthentication examples in, Envoy's jwt_authn filter out, for
// both kinds of proxy, decoded strictly and compared with golden files; then the
// whole inbound filter list (CUSTOM, jwt_authn, RBAC, router) as one strictly
// decoded HttpConnectionManager.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IAuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import type { IRequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';
import { parseAllDocuments, stringify } from 'yaml';
import { expectMatchesGolden } from '../../testing/jest/golden.js';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import { encodeResource } from '../protos.js';
import { authorizationFilters, type SecurityTarget } from './authorization-policies.js';
import { requestAuthenticationFilters, unresolvedJwks } from './request-authentication.js';

const testdata = join(import.meta.dirname, 'testdata');
const fetchedJwks = {
  'https://example.com/.well-known/jwks.json':
    '{"keys":[{"kty":"EC","crv":"P-256","kid":"example","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}',
  'issuer-bar': '{"keys":[]}',
};

function objectsOf<T>(file: string): T[] {
  return parseAllDocuments(readFileSync(join(testdata, 'cases', file), 'utf8')).map((d) => d.toJS() as T);
}

const generate = (caseName: string, target: SecurityTarget) =>
  requestAuthenticationFilters({ policies: objectsOf<IRequestAuthentication>(`${caseName}.yaml`), target, fetchedJwks });

const decoded = (result: ReturnType<typeof generate>) =>
  result.filters.map((f) => ({
    name: f.name,
    typed_config: decodeStrictly(f.typed_config.type_url, f.typed_config.value) as Record<string, any>,
  }));

const cases = ['jwt-reference', 'jwt-single', 'jwt-unresolved'];

describe.each(['sidecar', 'grpc'] as const)('Istio RequestAuthentication examples for %s proxies', (target) => {
  it.each(cases)('%s decodes strictly and matches its golden file', (caseName) => {
    const result = generate(caseName, target);
    expectMatchesGolden(
      join(testdata, 'golden', `${caseName}.${target}.yaml`),
      stringify({ filters: decoded(result), problems: result.problems }),
    );
  });
});

describe('RequestAuthentication semantics', () => {
  it('accepts a request without a token but not one with an invalid token (one provider)', () => {
    const [filter] = decoded(generate('jwt-single', 'sidecar'));
    expect(filter?.name).toBe('envoy.filters.http.jwt_authn');
    expect(filter?.typed_config['rules']).toEqual([
      { match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] } } },
    ]);
    expect(filter?.typed_config['providers']['origins-0']).toMatchObject({
      issuer: 'example.com',
      local_jwks: { inline_string: fetchedJwks['https://example.com/.well-known/jwks.json'] },
      payload_in_metadata: 'payload',
    });
  });

  it('sorts rules by issuer and ORs the providers with the AND of "valid if present"', () => {
    const [filter] = decoded(generate('jwt-reference', 'sidecar'));
    const providers = filter?.typed_config['providers'];
    expect(Object.entries(providers).map(([name, p]: [string, any]) => `${name}=${p.issuer}`)).toEqual([
      'origins-0=issuer-bar',
      'origins-1=issuer-foo',
      'origins-2=testing@secure.istio.io',
    ]);
    const either = (name: string) => ({ requires_any: { requirements: [{ provider_name: name }, { allow_missing: {} }] } });
    expect(filter?.typed_config['rules'][0].requires.requires_any.requirements).toEqual([
      { provider_name: 'origins-0' },
      { provider_name: 'origins-1' },
      { provider_name: 'origins-2' },
      { requires_all: { requirements: [either('origins-0'), either('origins-1'), either('origins-2')] } },
    ]);
    // A jwksUri the control plane did not fetch is left to Envoy, through the mesh's outbound cluster.
    expect(providers['origins-0'].remote_jwks).toEqual({
      http_uri: {
        uri: 'https://issuer-bar.example.com:8443/keys',
        cluster: 'outbound|8443||issuer-bar.example.com',
        timeout: { seconds: '2' },
      },
      cache_duration: { seconds: '300' },
    });
    expect(providers['origins-2']).toMatchObject({
      from_headers: [{ name: 'x-jwt-assertion', value_prefix: 'Bearer ' }],
      from_params: ['my_token'],
      from_cookies: ['session'],
      forward: true,
      forward_payload_header: 'x-jwt-payload',
      claim_to_headers: [{ header_name: 'x-jwt-claim-group', claim_name: 'group' }],
      normalize_payload_in_metadata: { space_delimited_claims: ['permission', 'roles', 'scope'] },
    });
  });

  it('rejects every token of an issuer whose keys are unknown, and says so', () => {
    const result = generate('jwt-unresolved', 'sidecar');
    const providers = decoded(result)[0]?.typed_config['providers'];
    expect(providers['origins-1'].local_jwks.inline_string).toBe(unresolvedJwks);
    expect(providers['origins-0'].local_jwks.inline_string).toBe('{"keys":[]}');
    expect(result.problems).toEqual([{ policy: 'foo/httpbin', message: expect.stringContaining('issuer-foo') }]);
  });

  it('gives proxyless gRPC no filter, and a problem per policy', () => {
    const result = generate('jwt-reference', 'grpc');
    expect(result.filters).toEqual([]);
    expect(result.problems.map((p) => p.policy)).toEqual(['foo/httpbin', 'istio-system/req-authn-for-all']);
  });

  it('composes with the authorization filters into one strictly decoded HttpConnectionManager', () => {
    const authz = authorizationFilters({
      policies: [
        ...objectsOf<IAuthorizationPolicy>('request-principals.yaml'),
        ...objectsOf<IAuthorizationPolicy>('custom.yaml').filter((p) => p.metadata?.name === 'ext-authz'),
      ],
      trustDomain: 'cluster.local',
      port: 8080,
      target: 'sidecar',
      extensionProviders: { 'my-custom-authz': { envoyExtAuthzGrpc: { service: 'ext-authz.foo.svc.cluster.local', port: 9000 } } },
    });
    const jwt = generate('jwt-single', 'sidecar');
    const router = {
      name: 'envoy.filters.http.router',
      typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router', value: Buffer.alloc(0) },
    };
    const hcmType = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
    const hcm = {
      stat_prefix: 'inbound_0.0.0.0_8080',
      route_config: {
        name: 'inbound|8080||',
        virtual_hosts: [{ name: 'inbound', domains: ['*'], routes: [{ match: { prefix: '/' }, non_forwarding_action: {} }] }],
      },
      http_filters: [...authz.custom, ...jwt.filters, ...authz.rbac, router],
    };
    const decodedHcm = decodeStrictly(hcmType, encodeResource(hcmType, hcm));
    expect((decodedHcm['http_filters'] as Array<{ name: string }>).map((f) => f.name)).toEqual([
      'envoy.filters.http.rbac.CUSTOM.my-custom-authz',
      'envoy.filters.http.ext_authz.my-custom-authz',
      'envoy.filters.http.jwt_authn',
      'envoy.filters.http.rbac.DENY',
      'envoy.filters.http.rbac.ALLOW',
      'envoy.filters.http.router',
    ]);
  });
});
