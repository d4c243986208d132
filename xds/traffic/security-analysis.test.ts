import { emptyIstioConfig } from '../model/istio-config.js';
import type { MeshModel } from '../model/mesh-model.js';
import { analyzeSecurity, statusOf } from './config-analysis.js';

const model = (istio: Partial<NonNullable<MeshModel['istio']>>, jwks?: Record<string, string>): MeshModel => ({
  clusterDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  trustDomain: 'cluster.local',
  services: [
    {
      name: 'echo',
      namespace: 'apps',
      ports: [{ name: 'grpc', port: 80, protocol: 'TCP' }],
      endpoints: [
        { address: '10.0.0.1', labels: { app: 'echo', version: 'v1' }, ports: { grpc: 9443 } },
        { address: '10.0.0.2', labels: { app: 'echo', version: 'v2' }, ports: { grpc: 9443 } },
      ],
    },
    // Outside the mesh: never a workload.
    {
      name: 'api.example.com',
      namespace: 'apps',
      hostname: 'api.example.com',
      meshExternal: true,
      ports: [],
      endpoints: [{ address: '1.2.3.4', labels: { app: 'other' }, ports: {} }],
    },
  ],
  istio: { ...emptyIstioConfig(), ...istio },
  ...(jwks ? { jwks } : {}),
});

const object = <Spec>(kind: string, name: string, spec: Spec, namespace = 'apps') => ({ kind, name, namespace, generation: 1, spec });

describe('security analysis', () => {
  it('warns that proxyless gRPC workloads do not enforce requestPrincipals, naming them, and accepts the policy', () => {
    const [verdict] = analyzeSecurity(
      model({
        authorizationPolicies: [
          object('AuthorizationPolicy', 'require-jwt', {
            selector: { matchLabels: { app: 'echo' } },
            action: 'ALLOW' as const,
            rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }],
          }),
        ],
      }),
    );
    expect(verdict).toMatchObject({ kind: 'AuthorizationPolicy', name: 'require-jwt', accepted: true });
    expect(verdict?.messages).toHaveLength(1);
    expect(verdict?.messages[0]).toMatchObject({ code: 'WEFT0001', name: 'PolicyNotEnforcedAsWritten', level: 'WARNING' });
    expect(verdict?.messages[0]?.message).toBe(
      'proxyless gRPC workloads (app=echo): rule 0: request.auth.principal: needs the JWT filter (RequestAuthentication), ' +
        'which proxyless gRPC does not have; the rule was left out, so it allows nothing',
    );
  });

  it('says nothing about a policy every target enforces, and names the namespace of a policy without selector', () => {
    const verdicts = analyzeSecurity(
      model({
        authorizationPolicies: [
          object('AuthorizationPolicy', 'by-principal', {
            rules: [{ from: [{ source: { principals: ['cluster.local/ns/apps/sa/client'] } }] }],
          }),
          object('AuthorizationPolicy', 'audit', { action: 'AUDIT' as const, rules: [{}] }),
        ],
      }),
    );
    expect(verdicts.find((v) => v.name === 'by-principal')).toMatchObject({ accepted: true, messages: [] });
    expect(verdicts.find((v) => v.name === 'audit')?.messages.map((m) => m.message)).toEqual([
      'proxyless gRPC workloads (all of namespace apps): AUDIT policies are not supported (gRPC has no RBAC LOG action); the policy is not applied',
    ]);
  });

  it('warns (IST0127) about a selector that matches no workload, of any security kind', () => {
    const selector = { matchLabels: { app: 'nothing' } };
    const verdicts = analyzeSecurity(
      model({
        authorizationPolicies: [object('AuthorizationPolicy', 'a', { selector, rules: [{}] })],
        peerAuthentications: [object('PeerAuthentication', 'p', { selector, mtls: { mode: 'STRICT' as const } })],
        requestAuthentications: [object('RequestAuthentication', 'r', { selector, jwtRules: [{ issuer: 'i', jwks: '{"keys":[]}' }] })],
        // A selector for the external service's "workload" matches nothing either.
        sidecars: [],
      }),
    );
    expect(verdicts).toHaveLength(3);
    for (const v of verdicts) {
      expect(v.accepted).toBe(true);
      expect(v.messages).toEqual([
        {
          code: 'IST0127',
          name: 'NoMatchingWorkloadsFound',
          level: 'WARNING',
          message: 'No matching workloads for this resource with the following labels: app=nothing',
        },
      ]);
    }
    const [other] = analyzeSecurity(
      model({ authorizationPolicies: [object('AuthorizationPolicy', 'a', { selector: { matchLabels: { app: 'other' } }, rules: [{}] })] }),
    );
    expect(other?.messages.map((m) => m.code)).toEqual(['IST0127']);
  });

  it("warns about port-level mTLS on a port the selected workloads do not serve (the Service's port, say)", () => {
    const [verdict] = analyzeSecurity(
      model({
        peerAuthentications: [
          object('PeerAuthentication', 'echo', {
            selector: { matchLabels: { app: 'echo' } },
            mtls: { mode: 'STRICT' as const },
            portLevelMtls: { '9443': { mode: 'PERMISSIVE' as const }, '80': { mode: 'DISABLE' as const } },
          }),
        ],
      }),
    );
    expect(verdict?.accepted).toBe(true);
    expect(verdict?.messages.map((m) => [m.code, m.level, m.message])).toEqual([
      [
        'WEFT0002',
        'WARNING',
        "spec.portLevelMtls[80]: no workload the policy selects (app=echo) serves port 80; port-level settings name the workload's port (the container port), not the Service's (9443 served)",
      ],
    ]);
  });

  const jwtPolicy = object('RequestAuthentication', 'jwt', {
    selector: { matchLabels: { app: 'echo' } },
    jwtRules: [{ issuer: 'https://issuer.example', jwksUri: 'https://issuer.example/keys' }, { issuer: 'https://discovered.example' }],
  });

  it('refuses a RequestAuthentication whose JWKS the control plane could not fetch, naming the URI and why', () => {
    const [verdict] = analyzeSecurity(
      model({ requestAuthentications: [jwtPolicy] }, { 'https://discovered.example': '{"keys":[{"kty":"RSA"}]}' }),
      {
        'https://issuer.example/keys': 'https://issuer.example/keys: HTTP 404',
      },
    );
    expect(verdict?.accepted).toBe(false);
    const errors = verdict?.messages.filter((m) => m.level === 'ERROR');
    expect(errors?.map((m) => [m.code, m.name, m.message])).toEqual([
      [
        'WEFT0003',
        'JwksNotFetched',
        'spec.jwtRules[0].jwksUri: the control plane could not fetch the JWKS at https://issuer.example/keys: https://issuer.example/keys: HTTP 404; tokens of issuer https://issuer.example cannot be verified',
      ],
    ]);
    // And gRPC has no JWT filter at all.
    expect(verdict?.messages.filter((m) => m.level === 'WARNING').map((m) => m.message)).toEqual([
      expect.stringMatching(/^proxyless gRPC workloads \(app=echo\): RequestAuthentication is not supported/),
    ]);
    const status = statusOf(verdict!, undefined, '2025-01-01T00:00:00Z') as {
      conditions: Array<Record<string, unknown>>;
      validationMessages: Array<Record<string, unknown>>;
    };
    expect(status.conditions[0]).toMatchObject({ type: 'Accepted', status: 'False', reason: 'JwksNotFetched' });
    expect(status.conditions[0]?.['message']).toContain('https://issuer.example/keys');
    // Weft's own codes have no page on Istio's site.
    expect(status.validationMessages[0]).toEqual({ type: { code: 'WEFT0003', name: 'JwksNotFetched' }, level: 'ERROR' });
  });

  it('accepts it once fetched, warns while a refresh fails, and checks nothing when nothing was fetched at all', () => {
    const jwks = { 'https://issuer.example/keys': '{"keys":[{"kty":"RSA"}]}', 'https://discovered.example': '{"keys":[{"kty":"RSA"}]}' };
    const onlyGrpc = (messages: Array<{ message: string }> | undefined) => messages?.filter((m) => !m.message.startsWith('proxyless gRPC'));
    const [fetched] = analyzeSecurity(model({ requestAuthentications: [jwtPolicy] }, jwks));
    expect(fetched?.accepted).toBe(true);
    expect(onlyGrpc(fetched?.messages)).toEqual([]);
    const [stale] = analyzeSecurity(model({ requestAuthentications: [jwtPolicy] }, jwks), {
      'https://discovered.example': 'https://discovered.example/.well-known/openid-configuration: HTTP 500',
    });
    expect(stale?.accepted).toBe(true);
    expect(onlyGrpc(stale?.messages)?.map((m) => m.message)).toEqual([
      'spec.jwtRules[1].issuer: the last refresh of the JWKS of issuer https://discovered.example (OpenID discovery) failed (https://discovered.example/.well-known/openid-configuration: HTTP 500); the keys fetched before are still used',
    ]);
    const [unchecked] = analyzeSecurity(model({ requestAuthentications: [jwtPolicy] }));
    expect(unchecked?.accepted).toBe(true);
  });
});
