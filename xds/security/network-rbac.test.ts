// AuthorizationPolicy on TCP filter chains, as Istio's BuildTCP: what a connection
// can be judged on is kept, HTTP-only attributes are dropped from DENY and AUDIT rules,
// ALLOW rules naming them are left out, and CUSTOM policies follow their provider.
import type { IAuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import { authorizationFilters, type AuthorizationInput } from './authorization-policies.js';
import { networkRbacFilters } from './network-rbac.js';

const policy = (name: string, spec: Record<string, unknown>): IAuthorizationPolicy =>
  ({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: 'shop' },
    spec,
  }) as IAuthorizationPolicy;

const extensionProviders: AuthorizationInput['extensionProviders'] = {
  http: { envoyExtAuthzHttp: { service: 'authz.shop.svc.cluster.local', port: 8000 } },
  grpc: { envoyExtAuthzGrpc: { service: 'authz.shop.svc.cluster.local', port: 9000, failOpen: true } },
};

/** The network filters of a TCP chain serving `port`, decoded. */
function tcpFilters(policies: IAuthorizationPolicy[], port = 5432) {
  const authz = authorizationFilters({ policies, trustDomain: 'cluster.local', port, target: 'sidecar', extensionProviders, forTcp: true });
  return networkRbacFilters([...authz.custom, ...authz.rbac]).filters.map((f) => ({
    name: f.name,
    config: decodeStrictly(f.typed_config.type_url, f.typed_config.value) as Record<string, any>,
  }));
}

/** Envoy's RBAC matching for the matchers a TCP chain carries, for a connection from anyone. */
function matches(m: Record<string, any>): boolean {
  if (m['any']) return true;
  if (m['and_rules'] || m['and_ids']) return (m['and_rules']?.rules ?? m['and_ids'].ids).every(matches);
  if (m['or_rules'] || m['or_ids']) return (m['or_rules']?.rules ?? m['or_ids'].ids).some(matches);
  if (m['not_rule'] || m['not_id']) return !matches(m['not_rule'] ?? m['not_id']);
  throw new Error(`unexpected matcher ${JSON.stringify(m)}`);
}
const matchesAnyone = (rules: Record<string, any>) =>
  Object.values(rules['policies'] ?? {}).some((p: any) => p.permissions.some(matches) && p.principals.some(matches));

describe('AuthorizationPolicy on TCP chains', () => {
  it('drops the method of a DENY rule and keeps its port: a DENY of POSTs to 8080 denies nothing on 5432', () => {
    const [deny] = tcpFilters([
      policy('no-posts', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'], ports: ['8080'] } }] }] }),
    ]);
    expect(deny?.name).toBe('envoy.filters.network.rbac.DENY');
    expect(matchesAnyone(deny?.config['rules'])).toBe(false);
    // On the port it names the rule matches every connection: the method cannot be checked there.
    const [onPort] = tcpFilters(
      [policy('no-posts', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'], ports: ['8080'] } }] }] })],
      8080,
    );
    expect(matchesAnyone(onPort?.config['rules'])).toBe(true);
  });

  it('keeps what a connection has (principals, IPs) next to the dropped HTTP fields, for DENY and AUDIT', () => {
    const filters = tcpFilters([
      policy('audit', { action: 'AUDIT', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] }),
      policy('deny', {
        action: 'DENY',
        rules: [
          {
            from: [{ source: { ipBlocks: ['10.0.0.0/8'], requestPrincipals: ['*'] } }],
            when: [{ key: 'request.headers[x-a]', values: ['1'] }],
          },
        ],
      }),
    ]);
    expect(filters.map((f) => [f.name, f.config['stat_prefix'], f.config['rules'].action ?? 'ALLOW'])).toEqual([
      ['envoy.filters.network.rbac.AUDIT', 'tcp.', 'LOG'],
      ['envoy.filters.network.rbac.DENY', 'tcp.', 'DENY'],
    ]);
    expect(matchesAnyone(filters[0]?.config['rules'])).toBe(true);
    expect(filters[1]?.config['rules'].policies['ns[shop]-policy[deny]-rule[0]'].principals).toEqual([
      { and_ids: { ids: [{ or_ids: { ids: [{ direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 8 } } }] } }] } },
    ]);
  });

  it('leaves out ALLOW rules that need HTTP, so they allow no connection, and keeps the rest', () => {
    const [allow] = tcpFilters([
      policy('mixed', {
        rules: [{ to: [{ operation: { hosts: ['db.example.com'] } }] }, { from: [{ source: { namespaces: ['shop'] } }] }],
      }),
    ]);
    expect(Object.keys(allow?.config['rules'].policies)).toEqual(['ns[shop]-policy[mixed]-rule[1]']);
    const [none] = tcpFilters([policy('only-http', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] })]);
    expect(none?.config['rules'].policies ?? {}).toEqual({});
  });

  it('ignores a CUSTOM policy of an HTTP provider, and asks a gRPC provider through the network ext_authz filter', () => {
    expect(tcpFilters([policy('http', { action: 'CUSTOM', provider: { name: 'http' }, rules: [{}] })])).toEqual([]);
    const [shadow, extAuthz] = tcpFilters([policy('grpc', { action: 'CUSTOM', provider: { name: 'grpc' }, rules: [{}] })]);
    expect(shadow?.name).toBe('envoy.filters.network.rbac.CUSTOM.grpc');
    expect(shadow?.config['rules']).toBeUndefined();
    expect(Object.keys(shadow?.config['shadow_rules'].policies)).toEqual(['istio-ext-authz-grpc-ns[shop]-policy[grpc]-rule[0]']);
    expect(extAuthz).toEqual({
      name: 'envoy.filters.network.ext_authz.grpc',
      config: expect.objectContaining({
        stat_prefix: 'tcp.',
        failure_mode_allow: true,
        transport_api_version: 'V3',
        grpc_service: expect.objectContaining({
          envoy_grpc: { cluster_name: 'outbound|9000||authz.shop.svc.cluster.local', authority: 'authz.shop.svc.cluster.local' },
        }),
        filter_enabled_metadata: expect.objectContaining({ filter: 'envoy.filters.network.rbac' }),
      }),
    });
  });
});
