// The CA against a real apiserver: real ServiceAccount tokens, real TokenReview,
// the root in a real Secret, the trust bundle in real ConfigMaps, and real gRPC.
import { execFile } from 'node:child_process';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureClusterBinaries } from '../testing/cluster/binaries.js';
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { buildCsr } from '../testing/fixtures/csr.js';
import { componentLogger } from '../lib/logger.js';
import { registry } from '../lib/monitoring.js';
import { CaSecretStore, caSecretName } from './ca-secret-store.js';
import { CertificateAuthority } from './certificate-authority.js';
import { splitPems } from './root-of-trust.js';
import { certificateServiceDefinition, certificateServiceImplementation } from './server/certificate-service.js';
import { TokenAuthenticator } from './server/token-authenticator.js';
import { trustBundleConfigMap } from './trust-bundle-distributor.js';

const log = componentLogger('ca-test');
const serviceName = 'weftd.weft-system.svc';

describeWithCluster('certificate authority', (cluster) => {
  let kc: KubeConfig;
  let ca: CertificateAuthority;
  let server: grpc.Server;
  let port: number;
  const Client = grpc.makeGenericClientConstructor(certificateServiceDefinition(), 'IstioCertificateService');
  const core = () => kc.makeApiClient(CoreV1Api);
  // Requests the server is checking the token of right now, and the most at once: what maxInFlight bounds.
  let authenticating = 0;
  let mostAuthenticating = 0;
  const maxInFlight = 16;

  beforeAll(async () => {
    kc = cluster().kubeConfig();
    await createNamespace(kc, 'weft-system');
    // Two replicas starting at the same moment end with one root.
    const [first, second] = await Promise.all([
      new CaSecretStore(cluster().kubeConfig().makeApiClient(CoreV1Api), 'weft-system').loadOrCreateSelfSigned('cluster.local'),
      new CaSecretStore(cluster().kubeConfig().makeApiClient(CoreV1Api), 'weft-system').loadOrCreateSelfSigned('cluster.local'),
    ]);
    expect(first.root.signer.certPem).toBe(second.root.signer.certPem);

    ca = await CertificateAuthority.start(kc, { namespace: 'weft-system', trustDomain: 'cluster.local', mode: 'SelfSigned' }, log);
    expect(ca.signingCa().certificatePem).toBe(first.root.signer.certPem);
    server = new grpc.Server();
    server.addService(
      certificateServiceDefinition(),
      certificateServiceImplementation({
        authenticate: async (authorization) => {
          authenticating++;
          mostAuthenticating = Math.max(mostAuthenticating, authenticating);
          try {
            return await new TokenAuthenticator(kc, ['istio-ca']).authenticate(authorization);
          } finally {
            authenticating--;
          }
        },
        signingCa: () => ca.signingCa(),
        trustDomain: 'cluster.local',
        ttl: { defaultSeconds: 86_400, maxSeconds: 7 * 86_400 },
        log,
        maxInFlight,
      }),
    );
    const serving = ca.servingCertificate([serviceName]);
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        '127.0.0.1:0',
        grpc.ServerCredentials.createSsl(null, [
          { cert_chain: Buffer.from(serving.certChainPem), private_key: Buffer.from(serving.privateKeyPem) },
        ]),
        (error, bound) => (error ? reject(error) : resolve(bound)),
      ),
    );
  });

  afterAll(async () => {
    ca?.stop();
    await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
  });

  function client(): grpc.Client {
    // The agent trusts the bundle and checks the control plane's DNS name, as it would on 15012.
    const credentials = grpc.credentials.createSsl(Buffer.from(ca.trustBundle()));
    return new Client(`127.0.0.1:${port}`, credentials, {
      'grpc.ssl_target_name_override': serviceName,
      'grpc.default_authority': serviceName,
    });
  }

  /** One CreateCertificate call; on its own connection unless `over` is given (which the caller closes). */
  async function createCertificate(request: object, token?: string, over?: grpc.Client): Promise<{ cert_chain: string[] }> {
    const metadata = new grpc.Metadata();
    if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
    const c = over ?? client();
    try {
      return await new Promise((resolve, reject) => {
        (
          c as unknown as Record<
            string,
            (r: object, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, v: { cert_chain: string[] }) => void) => void
          >
        )['CreateCertificate']?.(request, metadata, (error, value) => (error ? reject(error) : resolve(value)));
      });
    } finally {
      if (!over) c.close();
    }
  }

  async function refusal(request: object, token?: string): Promise<grpc.ServiceError> {
    return createCertificate(request, token).then(
      () => {
        throw new Error('expected a refusal, got a certificate');
      },
      (error: grpc.ServiceError) => error,
    );
  }

  async function serviceAccountToken(namespace: string, name: string, audience = 'istio-ca'): Promise<string> {
    await core()
      .createNamespacedServiceAccount({ namespace, body: { metadata: { name } } })
      .catch(() => undefined);
    const response = await core().createNamespacedServiceAccountToken({
      name,
      namespace,
      body: { spec: { audiences: [audience], expirationSeconds: 43_200 } },
    });
    return response.status?.token as string;
  }

  const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

  it("issues a chain whose leaf holds exactly the caller's SPIFFE ID and verifies to the distributed root", async () => {
    await createNamespace(kc, 'shop');
    const token = await serviceAccountToken('shop', 'cart');
    const keys = p256();
    const response = await createCertificate(
      { csr: buildCsr({ ...keys, uris: ['spiffe://cluster.local/ns/shop/sa/cart'] }), validity_duration: 3600 },
      token,
    );
    expect(response.cert_chain).toHaveLength(2);
    const leaf = new X509Certificate(response.cert_chain[0] as string);
    expect(leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/cart');

    const configMap = await eventually('the trust bundle in namespace shop', async () =>
      core().readNamespacedConfigMap({ name: trustBundleConfigMap, namespace: 'shop' }),
    );
    const roots = splitPems(configMap.data?.['root-cert.pem'] ?? '').map((pem) => new X509Certificate(pem));
    expect(roots.some((root) => leaf.checkIssued(root) && leaf.verify(root.publicKey))).toBe(true);
    expect(response.cert_chain[1]).toBe(configMap.data?.['root-cert.pem']);
  });

  it('clamps a huge TTL to the maximum and uses the default for 0', async () => {
    const token = await serviceAccountToken('shop', 'ttl');
    const clamped = await createCertificate({ csr: buildCsr(p256()), validity_duration: 10 * 365 * 86_400 }, token);
    const lifetime = new Date(new X509Certificate(clamped.cert_chain[0] as string).validTo).getTime() - Date.now();
    expect(lifetime).toBeLessThanOrEqual(7 * 86_400_000);
    expect(lifetime).toBeGreaterThan(6.9 * 86_400_000);
    const defaulted = await createCertificate({ csr: buildCsr(p256()), validity_duration: 0 }, token);
    const defaultLifetime = new Date(new X509Certificate(defaulted.cert_chain[0] as string).validTo).getTime() - Date.now();
    expect(Math.abs(defaultLifetime - 86_400_000)).toBeLessThan(120_000);
  });

  it('refuses every bad input with a clear status and issues nothing', async () => {
    await createNamespace(kc, 'bad');
    const token = await serviceAccountToken('bad', 'app');
    const csr = buildCsr(p256());
    const issuedBefore = (await registry.getSingleMetric('citadel_server_success_cert_issuance_count')?.get())?.values[0]?.value ?? 0;

    const cases: Array<[string, Promise<grpc.ServiceError>, grpc.status, string]> = [
      ['no token', refusal({ csr }), grpc.status.UNAUTHENTICATED, 'no bearer token'],
      [
        'wrong audience',
        refusal({ csr }, await serviceAccountToken('bad', 'other-audience', 'some-api')),
        grpc.status.UNAUTHENTICATED,
        'token rejected',
      ],
      ['forged token', refusal({ csr }, `${token.slice(0, -6)}AAAAAA`), grpc.status.UNAUTHENTICATED, 'token rejected'],
      ['malformed csr', refusal({ csr: 'not a csr' }, token), grpc.status.INVALID_ARGUMENT, 'csr is not a PEM'],
      [
        'mis-signed csr',
        refusal({ csr: buildCsr({ ...p256(), signingKey: p256().privateKey }) }, token),
        grpc.status.INVALID_ARGUMENT,
        'does not verify',
      ],
      [
        'another identity',
        refusal({ csr: buildCsr({ ...p256(), uris: ['spiffe://cluster.local/ns/kube-system/sa/admin'] }) }, token),
        grpc.status.PERMISSION_DENIED,
        'identities the caller does not hold',
      ],
      [
        'extra SANs',
        refusal({ csr: buildCsr({ ...p256(), dnsNames: ['bank.example'] }) }, token),
        grpc.status.PERMISSION_DENIED,
        'bank.example',
      ],
      ['CA:TRUE', refusal({ csr: buildCsr({ ...p256(), requestCa: true }) }, token), grpc.status.PERMISSION_DENIED, 'CA certificate'],
      ['negative TTL', refusal({ csr, validity_duration: -10 }, token), grpc.status.INVALID_ARGUMENT, 'not a positive number'],
    ];
    for (const [name, pending, code, detail] of cases) {
      const error = await pending;
      expect({ name, code: error.code }).toEqual({ name, code });
      expect(error.details).toContain(detail);
    }

    // A token whose ServiceAccount was deleted no longer authenticates.
    await core().deleteNamespacedServiceAccount({ name: 'app', namespace: 'bad' });
    const deleted = await refusal({ csr }, token);
    expect(deleted.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(deleted.details).toMatch(/no longer exists|token rejected/);

    const issuedAfter = (await registry.getSingleMetric('citadel_server_success_cert_issuance_count')?.get())?.values[0]?.value ?? 0;
    expect(issuedAfter).toBe(issuedBefore);
    const refused = await registry.getSingleMetric('weft_ca_csr_refused_total')?.get();
    const byReason = Object.fromEntries((refused?.values ?? []).map((v) => [v.labels['reason'], v.value]));
    expect(byReason['unauthenticated']).toBeGreaterThanOrEqual(4);
    expect(byReason['invalid_csr']).toBeGreaterThanOrEqual(2);
    expect(byReason['identity_mismatch']).toBeGreaterThanOrEqual(3);
  });

  it('sheds a flood with RESOURCE_EXHAUSTED, never checks more than maxInFlight tokens at once, and keeps serving', async () => {
    const token = await serviceAccountToken('shop', 'flood');
    const csr = buildCsr(p256());
    const shedCount = async () =>
      ((await registry.getSingleMetric('weft_ca_csr_refused_total')?.get())?.values ?? [])
        .filter((v) => v.labels['reason'] === 'overloaded' || v.labels['reason'] === 'caller_overloaded')
        .reduce((sum, v) => sum + v.value, 0);
    const shedBefore = await shedCount();
    mostAuthenticating = 0;
    // Over one connection all 120 requests reach the server before the first TokenReview returns
    // (a connection each would spread them over 120 TLS handshakes, and might shed nothing).
    const flooder = client();
    const results = await Promise.allSettled(Array.from({ length: 120 }, () => createCertificate({ csr }, token, flooder)));
    flooder.close();
    const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as grpc.ServiceError] : []));
    const issued = results.length - refusals.length;
    expect(issued).toBeGreaterThanOrEqual(1);
    // maxInFlight are admitted (16 of 120 measured); twice that leaves room for early finishers.
    expect(refusals.length).toBeGreaterThanOrEqual(120 - 2 * maxInFlight);
    for (const refusal of refusals) {
      expect({ code: refusal.code, details: refusal.details }).toEqual({
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: expect.stringContaining('retry with backoff'),
      });
    }
    expect(mostAuthenticating).toBeGreaterThan(0);
    expect(mostAuthenticating).toBeLessThanOrEqual(maxInFlight);
    expect((await shedCount()) - shedBefore).toBe(refusals.length);
    const after = await createCertificate({ csr }, token);
    expect(after.cert_chain).toHaveLength(2);
  });

  it('keeps the trust bundle in every namespace: new ones get it, edits and deletions are repaired', async () => {
    await createNamespace(kc, 'late-comer');
    const bundle = ca.trustBundle();
    await eventually('the bundle in a new namespace', async () => {
      const cm = await core().readNamespacedConfigMap({ name: trustBundleConfigMap, namespace: 'late-comer' });
      return cm.data?.['root-cert.pem'] === bundle ? cm : undefined;
    });
    await core().patchNamespacedConfigMap({
      name: trustBundleConfigMap,
      namespace: 'late-comer',
      body: [{ op: 'replace', path: '/data/root-cert.pem', value: 'tampered' }],
    });
    await eventually('the edited bundle to be repaired', async () => {
      const cm = await core().readNamespacedConfigMap({ name: trustBundleConfigMap, namespace: 'late-comer' });
      return cm.data?.['root-cert.pem'] === bundle ? cm : undefined;
    });
    await core().deleteNamespacedConfigMap({ name: trustBundleConfigMap, namespace: 'late-comer' });
    await eventually('the deleted bundle to be restored', async () =>
      core().readNamespacedConfigMap({ name: trustBundleConfigMap, namespace: 'late-comer' }),
    );
    // The CA key lives only in its Secret.
    const configMaps = await core().listConfigMapForAllNamespaces();
    for (const cm of configMaps.items) expect(JSON.stringify(cm.data ?? {})).not.toContain('PRIVATE KEY');
    const secret = await core().readNamespacedSecret({ name: caSecretName, namespace: 'weft-system' });
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']);
  });

  it("answers Istio's own agent code (citadel client, GenCSR) for RSA and ECDSA keys, and refuses it another identity", async () => {
    const { istioClient } = await ensureClusterBinaries(undefined, { allowBuild: false });
    const dir = cluster().workDir;
    writeFileSync(join(dir, 'roots.pem'), ca.trustBundle());
    writeFileSync(join(dir, 'istio-token'), await serviceAccountToken('shop', 'istio-agent'));
    // Asynchronous: the CA under test runs in this very process.
    const agent = (identity: string, ecc: boolean) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
        execFile(
          istioClient,
          [
            'ca',
            `--ca-address=127.0.0.1:${port}`,
            `--ca-san=${serviceName}`,
            `--root-cert=${join(dir, 'roots.pem')}`,
            `--token=${join(dir, 'istio-token')}`,
            `--identity=${identity}`,
            `--ecc=${ecc}`,
            '--ttl=3600',
          ],
          { encoding: 'utf8', timeout: 30_000 },
          (error, stdout, stderr) => resolve({ status: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
    for (const ecc of [false, true]) {
      const result = await agent('spiffe://cluster.local/ns/shop/sa/istio-agent', ecc);
      expect(result.stderr).toBe('');
      const chain = JSON.parse(result.stdout) as string[];
      const leaf = new X509Certificate(chain[0] as string);
      expect(leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/istio-agent');
      expect(leaf.publicKey.asymmetricKeyType).toBe(ecc ? 'ec' : 'rsa');
      expect(chain[chain.length - 1]).toBe(ca.trustBundle());
    }
    const impostor = await agent('spiffe://cluster.local/ns/kube-system/sa/admin', true);
    expect(impostor.status).not.toBe(0);
    expect(impostor.stderr).toContain('PermissionDenied');
  });

  it('lets two workloads holding issued certificates complete an mTLS call that checks each SPIFFE ID', async () => {
    const issue = async (namespace: string, account: string) => {
      const keys = p256();
      const { cert_chain } = await createCertificate({ csr: buildCsr(keys) }, await serviceAccountToken(namespace, account));
      return { chain: cert_chain.slice(0, -1).join(''), key: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
    };
    const serverIdentity = await issue('shop', 'inventory');
    const clientIdentity = await issue('shop', 'checkout');
    const bundle = Buffer.from(ca.trustBundle());
    const peers: string[] = [];
    const echo = new grpc.Server();
    const definition: grpc.ServiceDefinition = {
      Ping: {
        path: '/weft.test.Ping/Ping',
        requestStream: false,
        responseStream: false,
        requestSerialize: (v: string) => Buffer.from(v),
        requestDeserialize: (b: Buffer) => b.toString(),
        responseSerialize: (v: string) => Buffer.from(v),
        responseDeserialize: (b: Buffer) => b.toString(),
      },
    };
    echo.addService(definition, {
      Ping: (call: grpc.ServerUnaryCall<string, string>, callback: grpc.sendUnaryData<string>) => {
        const peer = call.getAuthContext()?.sslPeerCertificate?.subjectaltname ?? '';
        peers.push(peer);
        if (peer !== 'URI:spiffe://cluster.local/ns/shop/sa/checkout')
          callback({ code: grpc.status.PERMISSION_DENIED, details: `unexpected peer ${peer}` });
        else callback(null, `pong from inventory to ${peer}`);
      },
    });
    const echoPort = await new Promise<number>((resolve, reject) =>
      echo.bindAsync(
        '127.0.0.1:0',
        grpc.ServerCredentials.createSsl(
          bundle,
          [{ cert_chain: Buffer.from(serverIdentity.chain), private_key: Buffer.from(serverIdentity.key) }],
          true,
        ),
        (error, bound) => (error ? reject(error) : resolve(bound)),
      ),
    );
    try {
      const seenServer: string[] = [];
      const credentials = grpc.credentials.createSsl(bundle, Buffer.from(clientIdentity.key), Buffer.from(clientIdentity.chain), {
        // Mesh peers are named by SPIFFE ID, not DNS: check that instead of the hostname.
        checkServerIdentity: (_host, certificate) => {
          seenServer.push(certificate.subjectaltname ?? '');
          return certificate.subjectaltname === 'URI:spiffe://cluster.local/ns/shop/sa/inventory'
            ? undefined
            : new Error(`unexpected server ${certificate.subjectaltname}`);
        },
      });
      const PingClient = grpc.makeGenericClientConstructor(definition, 'Ping');
      const pinger = new PingClient(`127.0.0.1:${echoPort}`, credentials);
      const reply = await new Promise<string>((resolve, reject) =>
        (pinger as unknown as Record<string, (r: string, cb: (e: Error | null, v: string) => void) => void>)['Ping']?.('ping', (e, v) =>
          e ? reject(e) : resolve(v),
        ),
      );
      pinger.close();
      expect(reply).toBe('pong from inventory to URI:spiffe://cluster.local/ns/shop/sa/checkout');
      expect(seenServer).toEqual(['URI:spiffe://cluster.local/ns/shop/sa/inventory']);
      expect(peers).toEqual(['URI:spiffe://cluster.local/ns/shop/sa/checkout']);
    } finally {
      echo.forceShutdown();
    }
  });
});
