// security.istio.io objects in a real cluster: the control plane fetches a
// RequestAuthentication's JWKS (from a key server on loopback) and inlines it
// into a sidecar's jwt_authn filter; a jwksUri nobody serves makes the policy
// Accepted=False; an AuthorizationPolicy proxyless gRPC cannot enforce as
// written says so in its status.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { componentLogger } from '../lib/logger.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { installIstioCrds } from '../testing/jest/xds-harness.js';
import { decodeStrictly } from '../testing/jest/xds-decode.js';
import { ProxyGroups } from './cache/proxy-groups.js';
import { KubeMeshModel } from './model/kube-mesh-model.js';
import { typeUrls } from './protos.js';

const log = componentLogger('security-status-test');
const ns = 'authn';
const kid = 'weft-itest-key';
const jwks = JSON.stringify({
  keys: [
    {
      kty: 'RSA',
      alg: 'RS256',
      use: 'sig',
      kid,
      n: 'xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ',
      e: 'AQAB',
    },
  ],
});

describeWithCluster('status of security.istio.io objects', (cluster) => {
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let groups: ProxyGroups;
  let model: KubeMeshModel;
  let keyServer: Server;
  let keyServerUrl: string;
  let unreachableUrl: string;

  beforeAll(async () => {
    kc = cluster().kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    await installIstioCrds(cluster());

    // The identity provider's key server, on loopback inside the sandbox.
    keyServer = createServer((req, res) =>
      req.url === '/jwks' ? res.writeHead(200, { 'content-type': 'application/json' }).end(jwks) : res.writeHead(404).end(),
    );
    await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve));
    keyServerUrl = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/jwks`;
    // A port nothing listens on any more.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    unreachableUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/jwks`;
    await new Promise((resolve) => closed.close(resolve));

    groups = new ProxyGroups();
    model = new KubeMeshModel(kc, groups, log, 'cluster.local', 'istio-system', { writeStatus: true, trustDomain: 'cluster.local' });
    await model.start();

    await createNamespace(kc, ns);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: 'echo' },
        spec: { selector: { app: 'echo' }, ports: [{ name: 'http-web', port: 80, targetPort: 8080 }] },
      },
    });
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'echo', labels: { app: 'echo' } },
        spec: { containers: [{ name: 'echo', image: 'registry.example/echo:1', ports: [{ name: 'http', containerPort: 8080 }] }] },
      },
    });
  });

  afterAll(async () => {
    await model?.stop();
    keyServer?.closeAllConnections();
    await new Promise((resolve) => keyServer?.close(resolve));
  });

  const create = (plural: string, kind: string, name: string, spec: object) =>
    custom.createNamespacedCustomObject({
      group: 'security.istio.io',
      version: 'v1',
      namespace: ns,
      plural,
      body: { apiVersion: 'security.istio.io/v1', kind, metadata: { name, namespace: ns }, spec },
    });
  const remove = (plural: string, name: string) =>
    custom.deleteNamespacedCustomObject({ group: 'security.istio.io', version: 'v1', namespace: ns, plural, name });
  type Status = {
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
    validationMessages?: Array<{ type: { code: string; name: string }; level: string }>;
  };
  const statusOf = async (plural: string, name: string) =>
    (
      (await custom.getNamespacedCustomObject({ group: 'security.istio.io', version: 'v1', namespace: ns, plural, name })) as {
        status?: Status;
      }
    ).status;
  const accepted = async (plural: string, name: string) => (await statusOf(plural, name))?.conditions?.find((c) => c.type === 'Accepted');

  /** The jwt_authn providers of the echo workload's sidecar, decoded strictly from its inbound listener. */
  function jwtProviders(): Record<string, { issuer?: string; local_jwks?: { inline_string?: string } }> | undefined {
    const node = { id: `sidecar~10.244.0.250~echo.${ns}~${ns}.svc.cluster.local`, metadata: { NAMESPACE: ns, LABELS: { app: 'echo' } } };
    const release = groups.connected(node);
    try {
      for (const { resource } of groups.resources(node, typeUrls.listener, []).resources) {
        const listener = decodeStrictly(typeUrls.listener, Buffer.from(resource.value));
        const found = JSON.stringify(listener).includes('jwt_authn') ? findJwtAuthn(listener) : undefined;
        if (found) return found;
      }
      return undefined;
    } finally {
      release();
    }
  }

  it("inlines the keys fetched from a RequestAuthentication's jwksUri, and refuses one whose keys cannot be fetched", async () => {
    await create('requestauthentications', 'RequestAuthentication', 'jwt', {
      selector: { matchLabels: { app: 'echo' } },
      jwtRules: [{ issuer: 'https://issuer.weft.test', jwksUri: keyServerUrl }],
    });
    const provider = await eventually('the fetched keys in the sidecar config', async () =>
      Object.values(jwtProviders() ?? {}).find(
        (p) => p.issuer === 'https://issuer.weft.test' && p.local_jwks?.inline_string?.includes(kid),
      ),
    );
    expect(JSON.parse(provider.local_jwks?.inline_string ?? '')).toEqual(JSON.parse(jwks));
    const ok = await eventually('the policy to be accepted', async () => {
      const condition = await accepted('requestauthentications', 'jwt');
      return condition?.status === 'True' ? condition : undefined;
    });
    // Accepted, with the warning that proxyless gRPC workloads have no JWT filter.
    expect(ok.message).toContain('proxyless gRPC workloads (app=echo)');

    await create('requestauthentications', 'RequestAuthentication', 'unreachable', {
      selector: { matchLabels: { app: 'echo' } },
      jwtRules: [{ issuer: 'https://gone.weft.test', jwksUri: unreachableUrl }],
    });
    const refused = await eventually('the unreachable jwksUri to be reported', async () => {
      const condition = await accepted('requestauthentications', 'unreachable');
      return condition?.status === 'False' ? condition : undefined;
    });
    expect(refused.reason).toBe('JwksNotFetched');
    expect(refused.message).toContain(`could not fetch the JWKS at ${unreachableUrl}`);
    expect(refused.message).toContain('ECONNREFUSED');
    // The other policy is not affected.
    expect((await accepted('requestauthentications', 'jwt'))?.status).toBe('True');
    await remove('requestauthentications', 'unreachable');
    await remove('requestauthentications', 'jwt');
  });

  it('says in its status that proxyless gRPC workloads do not enforce requestPrincipals', async () => {
    await create('authorizationpolicies', 'AuthorizationPolicy', 'require-jwt', {
      selector: { matchLabels: { app: 'echo' } },
      rules: [{ from: [{ source: { requestPrincipals: ['https://issuer.weft.test/*'] } }] }],
    });
    const condition = await eventually('the warning in the status', async () => {
      const found = await accepted('authorizationpolicies', 'require-jwt');
      return found?.message.includes('proxyless gRPC') ? found : undefined;
    });
    expect(condition.status).toBe('True');
    expect(condition.message).toContain('proxyless gRPC workloads (app=echo): rule 0:');
    expect((await statusOf('authorizationpolicies', 'require-jwt'))?.validationMessages).toEqual([
      { type: { code: 'WEFT0001', name: 'PolicyNotEnforcedAsWritten' }, level: 'WARNING' },
    ]);

    await create('authorizationpolicies', 'AuthorizationPolicy', 'nobody', {
      selector: { matchLabels: { app: 'nobody' } },
      rules: [{}],
    });
    await eventually('a selector matching no workload to be reported', async () =>
      (await statusOf('authorizationpolicies', 'nobody'))?.validationMessages?.some((m) => m.type.code === 'IST0127') ? true : undefined,
    );
    await remove('authorizationpolicies', 'nobody');
    await remove('authorizationpolicies', 'require-jwt');
  });
});

/** The providers of the first jwt_authn filter anywhere in a decoded resource. */
function findJwtAuthn(value: unknown): Record<string, { issuer?: string; local_jwks?: { inline_string?: string } }> | undefined {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = findJwtAuthn(item);
      if (found) return found;
    }
    return undefined;
  }
  if (!value || typeof value !== 'object') return undefined;
  const record = value as Record<string, unknown>;
  if (String(record['@type']).endsWith('jwt_authn.v3.JwtAuthentication'))
    return record['providers'] as Record<string, { issuer?: string; local_jwks?: { inline_string?: string } }>;
  for (const child of Object.values(record)) {
    const found = findJwtAuthn(child);
    if (found) return found;
  }
  return undefined;
}
