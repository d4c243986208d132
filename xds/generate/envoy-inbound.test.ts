// Envoy's inbound side for each PeerAuthentication mode and with Istio's
// authorization and JWT examples: strictly decoded, golden-tested, and the
// properties a user relies on asserted.
import { join } from 'node:path';
import { stringify } from 'yaml';
import { expectMatchesGolden } from '../../testing/jest/golden.js';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import { ResourceEncoder, SnapshotCache } from '../cache/snapshot-cache.js';
import { emptyIstioConfig, type IstioConfig } from '../model/istio-config.js';
import type { MeshModel } from '../model/mesh-model.js';
import { typeUrls } from '../protos.js';
import { ProxyView } from '../traffic/proxy-view.js';
import { envoySidecarResources } from './envoy-sidecar-resources.js';

const jwks = JSON.stringify({
  keys: [
    {
      kty: 'RSA',
      kid: 'test',
      n: 'sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw',
      e: 'AQAB',
    },
  ],
});

function model(config: Partial<IstioConfig>): MeshModel {
  return {
    clusterDomain: 'cluster.local',
    rootNamespace: 'istio-system',
    trustDomain: 'cluster.local',
    services: [
      {
        name: 'echo',
        namespace: 'shop',
        selector: { app: 'echo' },
        ports: [
          { name: 'http-web', port: 80, protocol: 'TCP', targetPort: 8080, appProtocol: 'http' },
          { name: 'tcp-db', port: 5432, protocol: 'TCP', targetPort: 5432, appProtocol: 'tcp' },
        ],
        endpoints: [
          { address: '10.244.1.1', ports: { 'http-web': 8080, 'tcp-db': 5432 }, labels: { app: 'echo' }, serviceAccount: 'echo' },
        ],
      },
    ],
    istio: { ...emptyIstioConfig(), ...config },
  };
}

const policy = <S>(kind: string, name: string, spec: S, namespace = 'shop') => ({
  kind,
  name,
  namespace,
  creationTimestamp: '2026-01-01T00:00:00Z',
  spec,
});

function inbound(m: MeshModel): Record<string, any> {
  const cache = new SnapshotCache(new ResourceEncoder());
  cache.update(envoySidecarResources(new ProxyView(m, { kind: 'sidecar', namespace: 'shop', labels: { app: 'echo' } })));
  const listener = cache.resources({ id: 'test' }, typeUrls.listener, []).resources.find((r) => r.name === 'virtualInbound');
  return decodeStrictly(typeUrls.listener, listener!.resource.value);
}

const chainSummary = (listener: Record<string, any>) =>
  (listener['filter_chains'] as Array<Record<string, any>>).map((chain) => [
    chain['filter_chain_match']?.destination_port?.value ?? 'any',
    chain['filter_chain_match']?.transport_protocol ?? 'any',
    chain['transport_socket'] ? 'mtls' : 'plain',
  ]);

const cases: Record<string, Partial<IstioConfig>> = {
  permissive: {},
  strict: { peerAuthentications: [policy('PeerAuthentication', 'default', { mtls: { mode: 'STRICT' } })] },
  'port-level': {
    peerAuthentications: [
      policy('PeerAuthentication', 'default', { mtls: { mode: 'STRICT' } }, 'istio-system'),
      policy('PeerAuthentication', 'echo', {
        selector: { matchLabels: { app: 'echo' } },
        mtls: { mode: 'STRICT' },
        portLevelMtls: { '5432': { mode: 'DISABLE' } },
      }),
    ],
  },
  authorization: {
    authorizationPolicies: [
      policy('AuthorizationPolicy', 'allow-frontend', {
        selector: { matchLabels: { app: 'echo' } },
        action: 'ALLOW',
        rules: [
          {
            from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend'] } }],
            to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }],
          },
        ],
      }),
      policy('AuthorizationPolicy', 'deny-admin', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] }),
    ],
  },
  jwt: {
    requestAuthentications: [
      policy('RequestAuthentication', 'jwt', {
        selector: { matchLabels: { app: 'echo' } },
        jwtRules: [{ issuer: 'issuer-foo', jwksUri: 'https://example.com/.well-known/jwks.json', forwardOriginalToken: true }],
      }),
    ],
    authorizationPolicies: [
      policy('AuthorizationPolicy', 'require-jwt', {
        selector: { matchLabels: { app: 'echo' } },
        rules: [{ from: [{ source: { requestPrincipals: ['issuer-foo/*'] } }] }],
      }),
    ],
  },
};

describe('Envoy inbound', () => {
  it.each(Object.keys(cases))('%s decodes strictly and matches its golden file', (name) => {
    const m = { ...model(cases[name] ?? {}), jwks: { 'https://example.com/.well-known/jwks.json': jwks } };
    expectMatchesGolden(join(import.meta.dirname, 'testdata', 'inbound', `${name}.yaml`), stringify(inbound(m)));
  });

  it('PERMISSIVE takes mTLS and plaintext on each served port; STRICT only mTLS; a port-level DISABLE only plaintext', () => {
    // First the 15006 blackhole; last the catch-all for ports no Service names, in the workload's own mode.
    expect(chainSummary(inbound(model(cases['permissive']!)))).toEqual([
      [15006, 'any', 'plain'],
      [5432, 'tls', 'mtls'],
      [5432, 'raw_buffer', 'plain'],
      [8080, 'tls', 'mtls'],
      [8080, 'raw_buffer', 'plain'],
      ['any', 'tls', 'mtls'],
      ['any', 'raw_buffer', 'plain'],
    ]);
    // STRICT: plaintext finds no chain on any port, served or not.
    expect(chainSummary(inbound(model(cases['strict']!)))).toEqual([
      [15006, 'any', 'plain'],
      [5432, 'tls', 'mtls'],
      [8080, 'tls', 'mtls'],
      ['any', 'tls', 'mtls'],
    ]);
    expect(chainSummary(inbound(model(cases['port-level']!)))).toEqual([
      [15006, 'any', 'plain'],
      [5432, 'any', 'plain'],
      [8080, 'tls', 'mtls'],
      ['any', 'tls', 'mtls'],
    ]);
  });

  it('runs JWT, then DENY, then ALLOW before the router on HTTP ports, and forwards the caller identity', () => {
    const listener = inbound({ ...model(cases['jwt']!), jwks: { 'https://example.com/.well-known/jwks.json': jwks } });
    const http = (listener['filter_chains'] as Array<Record<string, any>>).find(
      (c) => c['filter_chain_match']?.destination_port?.value === 8080,
    );
    const hcm = http?.['filters'][0].typed_config;
    expect(hcm.http_filters.map((f: { name: string }) => f.name)).toEqual([
      'envoy.filters.http.jwt_authn',
      'envoy.filters.http.rbac.ALLOW',
      'envoy.filters.http.router',
    ]);
    expect(hcm.forward_client_cert_details).toBe('APPEND_FORWARD');
    // The JWKS the control plane fetched is inlined.
    expect(JSON.stringify(hcm.http_filters[0])).toContain('local_jwks');
    const both = inbound(model(cases['authorization']!));
    const http8080 = (both['filter_chains'] as Array<Record<string, any>>).find(
      (c) => c['filter_chain_match']?.destination_port?.value === 8080,
    );
    const names = (http8080?.['filters'][0].typed_config.http_filters as Array<{ name: string }>).map((f) => f.name);
    expect(names).toEqual(['envoy.filters.http.rbac.DENY', 'envoy.filters.http.rbac.ALLOW', 'envoy.filters.http.router']);
  });

  it('clients speak plaintext to servers whose PeerAuthentication disables mTLS, Istio mTLS to the rest', () => {
    const clusterOf = (m: MeshModel) => {
      const cache = new SnapshotCache(new ResourceEncoder());
      cache.update(
        envoySidecarResources(
          new ProxyView(
            { ...m, services: m.services.map((s) => ({ ...s, endpoints: s.endpoints.map((e) => ({ ...e, tlsMode: 'istio' })) })) },
            { kind: 'sidecar', namespace: 'other', labels: {} },
          ),
        ),
      );
      const cluster = cache.resources({ id: 'test' }, typeUrls.cluster, ['outbound|80||echo.shop.svc.cluster.local']).resources[0];
      return decodeStrictly(typeUrls.cluster, cluster!.resource.value);
    };
    const auto = clusterOf(model({}))['transport_socket_matches'] as Array<Record<string, any>>;
    expect(auto).toHaveLength(2);
    // The server must prove it runs as the service's identity.
    expect(auto[0]?.['transport_socket'].typed_config.common_tls_context.combined_validation_context.default_validation_context).toEqual({
      match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/shop/sa/echo' } }],
    });
    const disabled = clusterOf(model({ peerAuthentications: [policy('PeerAuthentication', 'default', { mtls: { mode: 'DISABLE' } })] }));
    expect(disabled['transport_socket_matches']).toBeUndefined();
    expect(disabled['transport_socket']).toBeUndefined();
  });

  it('enforces AuthorizationPolicy on TCP ports with network RBAC, failing closed where a rule needs HTTP', () => {
    const tcpChain = (listener: Record<string, any>) =>
      (listener['filter_chains'] as Array<Record<string, any>>).find((c) => c['filter_chain_match']?.destination_port?.value === 5432);
    const byPrincipal = inbound(
      model({
        authorizationPolicies: [
          policy('AuthorizationPolicy', 'db', {
            selector: { matchLabels: { app: 'echo' } },
            rules: [
              { from: [{ source: { principals: ['cluster.local/ns/shop/sa/api'] } }] },
              { to: [{ operation: { paths: ['/admin'] } }] },
            ],
          }),
        ],
      }),
    );
    const filters = tcpChain(byPrincipal)?.['filters'] as Array<Record<string, any>>;
    expect(filters.map((f) => f['name'])).toEqual(['envoy.filters.network.rbac.ALLOW', 'envoy.filters.network.tcp_proxy']);
    // The principal rule is kept; the path rule cannot match a TCP connection and is left out.
    expect(Object.keys(filters[0]?.['typed_config'].rules.policies)).toEqual(['ns[shop]-policy[db]-rule[0]']);
    const denyByPath = inbound(
      model({
        authorizationPolicies: [
          policy('AuthorizationPolicy', 'deny', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }),
        ],
      }),
    );
    const deny = (tcpChain(denyByPath)?.['filters'] as Array<Record<string, any>>)[0];
    expect(deny?.['typed_config'].rules).toEqual({
      action: 'DENY',
      policies: { 'deny-all-tcp': { permissions: [{ any: true }], principals: [{ any: true }] } },
    });
  });

  it('checks ports no Service names too: the workload mode and its policies apply there as well', () => {
    const listener = inbound(
      model({
        peerAuthentications: [policy('PeerAuthentication', 'default', { mtls: { mode: 'STRICT' } })],
        authorizationPolicies: [
          policy('AuthorizationPolicy', 'only-api', { rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/api'] } }] }] }),
        ],
      }),
    );
    const catchAll = (listener['filter_chains'] as Array<Record<string, any>>).at(-1);
    expect(catchAll?.['transport_socket']).toBeDefined();
    expect(catchAll?.['filters'].map((f: { name: string }) => f.name)).toEqual([
      'envoy.filters.network.rbac.ALLOW',
      'envoy.filters.network.tcp_proxy',
    ]);
  });

  it('gives ports an AuthorizationPolicy names their own chain, so a DENY on a port no Service names still holds', () => {
    const listener = inbound(
      model({
        authorizationPolicies: [
          policy('AuthorizationPolicy', 'no-debug', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['9999'] } }] }] }),
        ],
      }),
    );
    const debug = (listener['filter_chains'] as Array<Record<string, any>>).filter(
      (c) => c['filter_chain_match']?.destination_port?.value === 9999,
    );
    expect(debug).toHaveLength(2);
    for (const chain of debug) {
      expect(chain['filters'][0].name).toBe('envoy.filters.network.rbac.DENY');
      expect(Object.keys(chain['filters'][0].typed_config.rules.policies)).toHaveLength(1);
    }
  });
});
