// SDS against the real API server: gateway certificates (credentialName) from Kubernetes
// Secrets over ADS, to proxies that authenticate with a real ServiceAccount token, as
// istiod's SecretGen serves them: the proxy's own namespace only, a key pair only when its
// ServiceAccount may list Secrets there (SubjectAccessReview), pushes on Secret changes to
// the proxies holding the name, malformed Secrets reported by key, nothing of the key
// material in the log.
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api, RbacAuthorizationV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { TokenAuthenticator } from '../ca/server/token-authenticator.js';
import { LogLevels } from '../lib/logger.js';
import { serverCredential, tlsSecretData, type ServerCredential } from '../testing/fixtures/gateway-credentials.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { ProxyGroups } from './cache/proxy-groups.js';
import { KubeCredentials } from './credentials/kube-credentials.js';
import { aggregatedDiscoveryService, typeOf, typeUrls } from './protos.js';
import { AdsServer } from './server/ads-server.js';
import { SourceByType } from './server/source-by-type.js';

interface SecretResource {
  name: string;
  tls_certificate?: { certificate_chain: { inline_bytes: Buffer }; private_key: { inline_bytes: Buffer } };
  validation_context?: { trusted_ca: { inline_bytes: Buffer } };
}

const secretType = typeOf(typeUrls.secret);
const Ads = grpc.makeGenericClientConstructor(aggregatedDiscoveryService(), 'ADS');

/** One proxy's ADS stream asking for Secrets by name, ACKing every response as Envoy does; `responses` holds each, decoded. */
class SdsStream {
  readonly responses: SecretResource[][] = [];
  error: grpc.ServiceError | undefined;
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<object, { resources: Array<{ value: Buffer }>; nonce: string; version_info: string }>;
  private names: string[];

  constructor(port: number, token: string | undefined, namespace: string, pod: string, names: string[]) {
    this.names = names;
    this.client = new Ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    if (token) metadata.set('authorization', `Bearer ${token}`);
    this.call = (this.client as unknown as Record<string, (m: grpc.Metadata) => SdsStream['call']>)['StreamAggregatedResources']?.(
      metadata,
    ) as SdsStream['call'];
    this.call.on('data', (response: { resources?: Array<{ value: Buffer }>; nonce: string; version_info: string }) => {
      this.responses.push((response.resources ?? []).map((r) => secretType.toObject(secretType.decode(r.value)) as SecretResource));
      this.call.write({
        type_url: typeUrls.secret,
        resource_names: this.names,
        response_nonce: response.nonce,
        version_info: response.version_info,
      });
    });
    this.call.on('error', (error: grpc.ServiceError) => (this.error = error));
    this.call.write({
      node: {
        id: `router~10.244.9.40~${pod}.${namespace}~${namespace}.svc.cluster.local`,
        metadata: { fields: { NAMESPACE: { string_value: namespace } } },
      },
      type_url: typeUrls.secret,
      resource_names: names,
    });
  }

  /** Asks for another list of names (SotW: the request replaces the subscription). */
  ask(names: string[]): void {
    this.names = names;
    this.call.write({ type_url: typeUrls.secret, resource_names: names });
  }

  /** What the proxy holds now of `name`: the last response that carried it (a response carries only what changed, as istiod's). */
  held(name: string): SecretResource | undefined {
    return this.responses.flat().findLast((r) => r.name === name);
  }

  /** The first response after `after` whose resources satisfy `predicate`. */
  waitFor(what: string, predicate: (resources: SecretResource[]) => boolean, after = 0): Promise<SecretResource[]> {
    return eventually(what, async () => {
      if (this.error) throw this.error;
      return this.responses.slice(after).find(predicate);
    });
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

const chainOf = (resources: SecretResource[], name: string) =>
  resources.find((r) => r.name === name)?.tls_certificate?.certificate_chain.inline_bytes.toString();
const caOf = (resources: SecretResource[], name: string) =>
  resources.find((r) => r.name === name)?.validation_context?.trusted_ca.inline_bytes.toString();

describeWithCluster('SDS: gateway certificates from Kubernetes Secrets', (cluster) => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  let credentials: KubeCredentials;
  let ads: AdsServer;
  let port: number;
  let plaintextPort: number;
  const servers: grpc.Server[] = [];
  const streams: SdsStream[] = [];
  const logLines: string[] = [];
  const material: string[] = [];
  let first: ServerCredential;

  const tlsSecret = (namespace: string, name: string, credential: ServerCredential, type = 'kubernetes.io/tls'): V1Secret => {
    material.push(credential.keyPem, tlsSecretData(credential)['tls.key'] as string);
    return { metadata: { name, namespace }, type, data: tlsSecretData(credential, true) };
  };
  const token = async (namespace: string, serviceAccount: string) =>
    (await core.createNamespacedServiceAccountToken({ name: serviceAccount, namespace, body: { spec: { audiences: ['istio-ca'] } } }))
      .status?.token as string;
  const open = (p: number, tokenValue: string | undefined, namespace: string, pod: string, names: string[]) => {
    const stream = new SdsStream(p, tokenValue, namespace, pod, names);
    streams.push(stream);
    return stream;
  };
  const logged = (message: string) =>
    eventually(`log line ${JSON.stringify(message)}`, async () =>
      logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => String(l['msg']).includes(message)),
    );

  beforeAll(async () => {
    kc = cluster().kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await createNamespace(kc, 'gw');
    await createNamespace(kc, 'other');
    for (const name of ['ingress', 'plain']) await core.createNamespacedServiceAccount({ namespace: 'gw', body: { metadata: { name } } });
    // As a gateway's ServiceAccount is given it (Istio's gateway Role): read Secrets in its namespace.
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: 'gw',
      body: {
        metadata: { name: 'gateway-secrets' },
        rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'watch', 'list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: 'gw',
      body: {
        metadata: { name: 'gateway-secrets' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'gateway-secrets' },
        subjects: [{ kind: 'ServiceAccount', name: 'ingress', namespace: 'gw' }],
      },
    });
    first = serverCredential(['bookinfo.example.com']);
    await core.createNamespacedSecret({ namespace: 'gw', body: tlsSecret('gw', 'cred', first) });
    await core.createNamespacedSecret({ namespace: 'other', body: tlsSecret('other', 'cred', serverCredential(['other.example.com'])) });
    // A ServiceAccount-token Secret holding a valid key pair: never watched (istiod's field selector), so never served.
    const tokenSecret = tlsSecret('gw', 'sa-token', serverCredential(['token.example.com']), 'kubernetes.io/service-account-token');
    tokenSecret.metadata = { ...tokenSecret.metadata, annotations: { 'kubernetes.io/service-account.name': 'ingress' } };
    await core.createNamespacedSecret({ namespace: 'gw', body: tokenSecret });

    const log = new LogLevels('debug', { write: (line: string) => void logLines.push(line) }).root;
    credentials = new KubeCredentials(kc, log);
    await credentials.start();
    ads = new AdsServer(new SourceByType(new ProxyGroups(), { [typeUrls.secret]: credentials.source }), log);
    const authenticator = new TokenAuthenticator(kc, ['istio-ca']);
    const bind = async (implementation: grpc.UntypedServiceImplementation) => {
      const server = new grpc.Server();
      server.addService(aggregatedDiscoveryService(), implementation);
      servers.push(server);
      return new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
      );
    };
    // As weftd's 15012 (token authentication) and 15010 (none).
    port = await bind(ads.implementation((authorization) => authenticator.authenticate(authorization)));
    plaintextPort = await bind(ads.implementation());
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    for (const server of servers) server.forceShutdown();
    ads?.close();
    await credentials?.stop();
  });

  it("serves kubernetes://cred and its -cacert to a proxy whose token proves a ServiceAccount allowed to list its namespace's Secrets", async () => {
    const stream = open(port, await token('gw', 'ingress'), 'gw', 'ingress-1', ['kubernetes://cred', 'kubernetes://cred-cacert']);
    await stream.waitFor('the key pair', (r) => chainOf(r, 'kubernetes://cred') !== undefined);
    await stream.waitFor('the CA', (r) => caOf(r, 'kubernetes://cred-cacert') !== undefined);
    expect(chainOf([stream.held('kubernetes://cred') as SecretResource], 'kubernetes://cred')).toBe(first.certPem);
    expect(caOf([stream.held('kubernetes://cred-cacert') as SecretResource], 'kubernetes://cred-cacert')).toBe(first.ca.certPem);
    // The debug config dump never shows the key (istiod's redaction).
    const dump = JSON.stringify(ads.configDump('ingress-1.gw'));
    expect(dump).toContain(Buffer.from('[redacted]').toString('base64'));
    expect(dump).not.toContain(tlsSecretData(first)['tls.key']);
  });

  it("refuses another namespace's Secret, a ServiceAccount-token Secret, and every Secret on the plaintext port", async () => {
    const stream = open(port, await token('gw', 'ingress'), 'gw', 'ingress-2', [
      'kubernetes://other/cred',
      'kubernetes://sa-token',
      'kubernetes://cred',
    ]);
    // The answer that carries cred was decided together with the other two names.
    const served = await stream.waitFor('cred', (r) => chainOf(r, 'kubernetes://cred') !== undefined);
    expect(served.map((r) => r.name)).toEqual(['kubernetes://cred']);
    expect(await logged('unauthorized certificates')).toMatchObject({ resources: 'kubernetes://other/cred' });
    expect(await logged('gw/sa-token not found')).toMatchObject({ resource: 'kubernetes://sa-token' });

    const plaintext = open(plaintextPort, undefined, 'gw', 'ingress-3', ['kubernetes://cred']);
    const answer = await plaintext.waitFor('the first answer on the plaintext port', () => true);
    expect(answer).toEqual([]);
    await logged('connect over 15012');
  });

  it('refuses the key pair to a ServiceAccount the API server does not allow to list Secrets (SubjectAccessReview), but not the CA', async () => {
    const stream = open(port, await token('gw', 'plain'), 'gw', 'plain-1', ['kubernetes://cred', 'kubernetes://cred-cacert']);
    await stream.waitFor('the CA', (r) => caOf(r, 'kubernetes://cred-cacert') !== undefined);
    const denial = await eventually('the denial of gw/plain', async () =>
      logLines
        .map((l) => JSON.parse(l) as { reason?: string })
        .find((l) => l.reason?.startsWith('gw/plain is not authorized to list secrets in gw')),
    );
    expect(denial).toBeDefined();
    // An event after the verdict: a new CA in the Secret reaches this proxy, still without the key pair.
    const seen = stream.responses.length;
    const next = serverCredential(['bookinfo.example.com']);
    await core.replaceNamespacedSecret({ name: 'cred', namespace: 'gw', body: tlsSecret('gw', 'cred', next) });
    first = next;
    const pushed = await stream.waitFor('the new CA', (r) => caOf(r, 'kubernetes://cred-cacert') === next.ca.certPem, seen);
    expect(pushed.map((r) => r.name)).toEqual(['kubernetes://cred-cacert']);
    expect(stream.responses.flat().some((r) => r.name === 'kubernetes://cred')).toBe(false);
  });

  it('pushes a changed Secret to the proxies holding its name, and only to them', async () => {
    await core.createNamespacedSecret({ namespace: 'gw', body: tlsSecret('gw', 'cred2', serverCredential(['two.example.com'])) });
    const ingress = await token('gw', 'ingress');
    const holder = open(port, ingress, 'gw', 'ingress-4', ['kubernetes://cred']);
    const bystander = open(port, ingress, 'gw', 'ingress-5', ['kubernetes://cred2']);
    await holder.waitFor('cred', (r) => chainOf(r, 'kubernetes://cred') === first.certPem);
    await bystander.waitFor('cred2', (r) => chainOf(r, 'kubernetes://cred2') !== undefined);
    const bystanderSeen = bystander.responses.length;

    const renewed = serverCredential(['bookinfo.example.com']);
    await core.replaceNamespacedSecret({ name: 'cred', namespace: 'gw', body: tlsSecret('gw', 'cred', renewed) });
    const pushed = await holder.waitFor('the renewed certificate', (r) => chainOf(r, 'kubernetes://cred') === renewed.certPem);
    expect(pushed.map((r) => r.name)).toEqual(['kubernetes://cred']);
    first = renewed;
    // Then a change the bystander does hold: on its stream, it must come first (nothing was pushed for cred).
    const cred2 = serverCredential(['two.example.com']);
    await core.replaceNamespacedSecret({ name: 'cred2', namespace: 'gw', body: tlsSecret('gw', 'cred2', cred2) });
    await bystander.waitFor('cred2 renewed', (r) => chainOf(r, 'kubernetes://cred2') === cred2.certPem, bystanderSeen);
    expect(bystander.responses.slice(bystanderSeen).map((r) => r.map((s) => s.name))).toEqual([['kubernetes://cred2']]);
  });

  it('reports a malformed Secret naming the key, and keeps serving the others', async () => {
    await core.createNamespacedSecret({
      namespace: 'gw',
      body: {
        metadata: { name: 'broken', namespace: 'gw' },
        type: 'Opaque',
        data: { 'tls.crt': tlsSecretData(first)['tls.crt'] as string },
      },
    });
    const stream = open(port, await token('gw', 'ingress'), 'gw', 'ingress-6', ['kubernetes://broken', 'kubernetes://cred']);
    const served = await stream.waitFor('cred', (r) => chainOf(r, 'kubernetes://cred') !== undefined);
    expect(served.map((r) => r.name)).toEqual(['kubernetes://cred']);
    expect(await logged('Secret cannot be served over SDS')).toMatchObject({
      secret: 'gw/broken',
      resource: 'kubernetes://broken',
      problem: 'key "tls.key" is missing ("tls.crt" is present)',
    });
    // Fixed, it is pushed.
    const fixed = serverCredential(['broken.example.com']);
    await core.replaceNamespacedSecret({ name: 'broken', namespace: 'gw', body: tlsSecret('gw', 'broken', fixed, 'Opaque') });
    await stream.waitFor('the fixed Secret', (r) => chainOf(r, 'kubernetes://broken') === fixed.certPem);
  });

  it('never logs key material', () => {
    expect(logLines.length).toBeGreaterThan(0);
    const text = logLines.join('\n');
    expect(text).not.toContain('PRIVATE KEY');
    for (const secretText of material)
      for (const line of secretText.split('\n').filter((l) => l.length >= 32)) expect(text).not.toContain(line);
  });
});
