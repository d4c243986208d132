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

/** Per chain: destination port, transport, ALPNs matched, whether it terminates mTLS, HTTP or TCP filters, its name. */
const chainSummary = (listener: Record<string, any>) =>
  (listener['filter_chains'] as Array<Record<string, any>>).map((chain) => [
    chain['filter_chain_match']?.destination_port?.value ?? 'any',
    chain['filter_chain_match']?.transport_protocol ?? 'any',
    (chain['filter_chain_match']?.application_protocols ?? []).join(',') || '-',
    chain['transport_socket'] ? 'mtls' : 'plain',
    chain['filters'].at(-1).name === 'envoy.filters.network.http_connection_manager' ? 'http' : 'tcp',
    chain['name'],
  ]);

const istioHttp = 'istio-http/1.0,istio-http/1.1,istio-h2';
const anyIstio = 'istio,istio-peer-exchange,istio-http/1.0,istio-http/1.1,istio-h2';
const plainHttp = 'http/1.1,h2c';
const blackhole = [15006, 'any', '-', 'plain', 'tcp', 'virtualInbound-blackhole'];
/** Istio's passthrough chains for ports no Service names (detection, PERMISSIVE). */
const permissivePassthrough = [
  ['any', 'tls', istioHttp, 'mtls', 'http', 'virtualInbound-catchall-http'],
  ['any', 'raw_buffer', plainHttp, 'plain', 'http', 'virtualInbound-catchall-http'],
  ['any', 'tls', 'istio-peer-exchange,istio', 'mtls', 'tcp', 'virtualInbound'],
  ['any', 'raw_buffer', '-', 'plain', 'tcp', 'virtualInbound'],
  ['any', 'tls', '-', 'plain', 'tcp', 'virtualInbound'],
];
const strictPassthrough = [
  ['any', 'tls', istioHttp, 'mtls', 'http', 'virtualInbound-catchall-http'],
  ['any', 'tls', '-', 'mtls', 'tcp', 'virtualInbound'],
];

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

  it('chains each port as istiod does: PERMISSIVE tells Istio mTLS, other TLS and plaintext apart; STRICT only mTLS; DISABLE only plaintext', () => {
    // The 15006 blackhole, the passthrough chains, then the served ports: 5432 (tcp-db) as TCP, 8080 (http-web) as HTTP.
    expect(chainSummary(inbound(model(cases['permissive']!)))).toEqual([
      blackhole,
      ...permissivePassthrough,
      [5432, 'tls', anyIstio, 'mtls', 'tcp', '0.0.0.0_5432'],
      [5432, 'tls', '-', 'plain', 'tcp', '0.0.0.0_5432'],
      [5432, 'raw_buffer', '-', 'plain', 'tcp', '0.0.0.0_5432'],
      [8080, 'tls', anyIstio, 'mtls', 'http', '0.0.0.0_8080'],
      [8080, 'raw_buffer', '-', 'plain', 'http', '0.0.0.0_8080'],
    ]);
    // STRICT: plaintext finds no chain on any port, served or not.
    expect(chainSummary(inbound(model(cases['strict']!)))).toEqual([
      blackhole,
      ...strictPassthrough,
      [5432, 'tls', '-', 'mtls', 'tcp', '0.0.0.0_5432'],
      [8080, 'tls', '-', 'mtls', 'http', '0.0.0.0_8080'],
    ]);
    expect(chainSummary(inbound(model(cases['port-level']!)))).toEqual([
      blackhole,
      ...strictPassthrough,
      [5432, 'raw_buffer', '-', 'plain', 'tcp', '0.0.0.0_5432'],
      [8080, 'tls', '-', 'mtls', 'http', '0.0.0.0_8080'],
    ]);
  });

  it('detects the protocol of a port no name or appProtocol declares, and proxies a declared TCP port as bytes', () => {
    const m = model({});
    const echo = m.services[0]!;
    m.services[0] = {
      ...echo,
      ports: [
        { name: 'web', port: 80, protocol: 'TCP', targetPort: 8080 },
        { name: 'db', port: 5432, protocol: 'TCP', targetPort: 5432, appProtocol: 'tcp' },
      ],
    };
    const listener = inbound(m);
    const summary = chainSummary(listener);
    // 8080 has Istio's detection chains: HTTP for what the HTTP inspector or the client's ALPN says is HTTP, TCP for the rest.
    expect(summary.filter((chain) => chain[0] === 8080)).toEqual(
      permissivePassthrough.map(([, transport, alpns, tls, kind]) => [8080, transport, alpns, tls, kind, '0.0.0.0_8080']),
    );
    const db = (listener['filter_chains'] as Array<Record<string, any>>).filter(
      (c) => c['filter_chain_match']?.destination_port?.value === 5432,
    );
    for (const chain of db) {
      expect(chain['filters'].at(-1).typed_config).toMatchObject({ cluster: 'inbound|5432||', stat_prefix: 'inbound|5432||' });
    }
    // The HTTP inspector runs only where a chain needs it: not on the TCP port, whose client may speak first.
    const inspectors = listener['listener_filters'] as Array<Record<string, any>>;
    expect(inspectors.map((f) => f['name'])).toEqual([
      'envoy.filters.listener.original_dst',
      'envoy.filters.listener.tls_inspector',
      'envoy.filters.listener.http_inspector',
    ]);
    expect(inspectors[2]?.['filter_disabled']).toEqual({
      or_match: {
        rules: [{ destination_port_range: { start: 5432, end: 5433 } }, { destination_port_range: { start: 15006, end: 15007 } }],
      },
    });
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
    // As Istio on TCP: the HTTP-only field is dropped from the DENY rule, which then matches every connection.
    const deny = (tcpChain(denyByPath)?.['filters'] as Array<Record<string, any>>)[0];
    expect(deny?.['typed_config']).toEqual({
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
      stat_prefix: 'tcp.',
      rules: {
        action: 'DENY',
        policies: {
          'ns[shop]-policy[deny]-rule[0]': {
            permissions: [{ and_rules: { rules: [{ any: true }] } }],
            principals: [{ and_ids: { ids: [{ any: true }] } }],
          },
        },
      },
    });
    expect(deniedOn(tcpChain(denyByPath))).toBe(true);
  });

  it('denies nothing on TCP for a DENY of POSTs to another port: the method is dropped, the port still decides', () => {
    const listener = inbound(
      model({
        authorizationPolicies: [
          policy('AuthorizationPolicy', 'no-posts', {
            action: 'DENY',
            rules: [{ to: [{ operation: { methods: ['POST'], ports: ['8080'] } }] }],
          }),
        ],
      }),
    );
    const chains = listener['filter_chains'] as Array<Record<string, any>>;
    const db = chains.filter((c) => c['filter_chain_match']?.destination_port?.value === 5432);
    const passthrough = chains.filter(
      (c) => c['filter_chain_match']?.destination_port === undefined && c['filters'].at(-1).name === 'envoy.filters.network.tcp_proxy',
    );
    expect(db.length).toBeGreaterThan(0);
    expect(passthrough.length).toBeGreaterThan(0);
    for (const chain of [...db, ...passthrough]) expect([chain['name'], deniedOn(chain)]).toEqual([chain['name'], false]);
    // On the HTTP port the rule holds whole: POSTs are denied there.
    const web = chains.find((c) => c['filter_chain_match']?.destination_port?.value === 8080);
    const hcm = web?.['filters'][0].typed_config;
    const rbac = hcm.http_filters.find((f: { name: string }) => f.name === 'envoy.filters.http.rbac.DENY');
    expect(JSON.stringify(rbac.typed_config.rules)).toContain('"exact":"POST"');
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
    const catchAll = (listener['filter_chains'] as Array<Record<string, any>>).filter((c) => c['name'] === 'virtualInbound');
    expect(catchAll).toHaveLength(1);
    expect(catchAll[0]?.['transport_socket']).toBeDefined();
    expect(catchAll[0]?.['filters'].map((f: { name: string }) => f.name)).toEqual([
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
    // Istio's passthrough chains (detection, PERMISSIVE) on that port: the DENY holds on TCP and HTTP ones alike.
    expect(debug.map((c) => c['name'])).toEqual([
      'virtualInbound-catchall-http',
      'virtualInbound-catchall-http',
      'virtualInbound',
      'virtualInbound',
      'virtualInbound',
    ]);
    for (const chain of debug) {
      const deny =
        chain['name'] === 'virtualInbound'
          ? chain['filters'][0]
          : chain['filters'][0].typed_config.http_filters.find((f: { name: string }) => f.name === 'envoy.filters.http.rbac.DENY');
      expect(deny?.name).toMatch(/rbac\.DENY$/);
      expect(Object.keys(deny.typed_config.rules.policies)).toHaveLength(1);
    }
  });
});

/**
 * Whether a chain's network RBAC DENY filter denies a connection from anyone: Envoy's
 * matching, for the matchers a TCP chain carries (ports are decided when the chain is built).
 */
function deniedOn(chain: Record<string, any> | undefined): boolean {
  const deny = (chain?.['filters'] as Array<Record<string, any>>).find((f) => f['name'] === 'envoy.filters.network.rbac.DENY');
  if (!deny) return false;
  const matches = (m: Record<string, any>): boolean => {
    if (m['any']) return true;
    if (m['and_rules']) return m['and_rules'].rules.every(matches);
    if (m['and_ids']) return m['and_ids'].ids.every(matches);
    if (m['or_rules']) return m['or_rules'].rules.some(matches);
    if (m['or_ids']) return m['or_ids'].ids.some(matches);
    if (m['not_rule']) return !matches(m['not_rule']);
    if (m['not_id']) return !matches(m['not_id']);
    throw new Error(`unexpected matcher ${JSON.stringify(m)}`);
  };
  return Object.values(deny['typed_config'].rules.policies as Record<string, any>).some(
    (p) => p.permissions.some(matches) && p.principals.some(matches),
  );
}
