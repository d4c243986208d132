// A plugged cacerts Secret changed under a running CA, against a real apiserver: the
// reload without restart, Istio's refusal of a root swap with no overlap, the staging of
// a new intermediate and the retention of a removed root while certificates under it live.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { componentLogger } from '../lib/logger.js';
import { cacertsFiles, testIntermediate, testRoot, type TestCa } from '../testing/fixtures/plugged-ca.js';
import { createNamespace, eventually } from '../testing/jest/kube-helpers.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { CertificateAuthority } from './certificate-authority.js';
import { signLeafCertificate } from './pki/workload-certificate.js';
import { trustBundleConfigMap } from './trust-bundle-distributor.js';

const log = componentLogger('cacerts-reload-test');
const namespace = 'mesh-cacerts';

describeWithCluster('plugged cacerts reloaded by the running CA', (cluster) => {
  let kc: KubeConfig;
  let ca: CertificateAuthority | undefined;
  const core = () => kc.makeApiClient(CoreV1Api);
  const put = (files: Record<string, string>) =>
    core().replaceNamespacedSecret({ name: 'cacerts', namespace, body: { metadata: { name: 'cacerts' }, stringData: files } });
  const fingerprint = (ca: TestCa) => new X509Certificate(ca.certPem).fingerprint256;
  const rootsIn = (bundle: string) =>
    (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map(
      (pem) => new X509Certificate(pem).fingerprint256,
    );
  const configMapRoots = async () =>
    rootsIn((await core().readNamespacedConfigMap({ name: trustBundleConfigMap, namespace })).data?.['root-cert.pem'] ?? '');
  const signer = () => new X509Certificate(ca?.signingCa().certificatePem ?? '').subject;
  /** A workload certificate issued now by the CA's current signer, as the certificate service does it. */
  const issue = (ttlSeconds: number) => {
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const chain = signLeafCertificate(
      { spkiDer: keys.publicKey.export({ type: 'spki', format: 'der' }), uris: ['spiffe://cluster.local/ns/a/sa/b'], ttlSeconds },
      ca?.signingCa() as never,
    );
    ca?.recordIssued(chain);
    return chain;
  };

  afterAll(() => ca?.stop());

  it('reloads without restart, stages a new intermediate, keeps a removed root while it anchors a live certificate, refuses a swap', async () => {
    kc = cluster().kubeConfig();
    await createNamespace(kc, namespace);
    const [rootA, rootB, rootC] = [testRoot('root-a'), testRoot('root-b'), testRoot('root-c')];
    const [caA, caB, caC] = [testIntermediate(rootA, 'ca-a'), testIntermediate(rootB, 'ca-b'), testIntermediate(rootC, 'ca-c')];
    await core().createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'cacerts' }, stringData: cacertsFiles(caA, rootA, [rootA]) },
    });
    ca = await CertificateAuthority.start(
      kc,
      { namespace, trustDomain: 'cluster.local', mode: 'Plugged', pluggedSecretName: 'cacerts' },
      log,
    );
    let changes = 0;
    // Every bundle the CA sent out after a change, and every signer it switched to.
    const bundles: string[][] = [];
    const signers: string[] = [];
    ca.onChange(() => {
      changes++;
      bundles.push(rootsIn(ca?.trustBundle() ?? ''));
      signers.push(signer());
    });
    expect(
      await eventually('root A distributed', async () => ((await configMapRoots()).length === 1 ? await configMapRoots() : undefined)),
    ).toEqual([fingerprint(rootA)]);
    expect(signer()).toBe('CN=ca-a');
    // A workload certificate under A, living 6 s.
    issue(6);

    // Step 1: roots A and B, intermediate B. Both roots go out at once; B's intermediate waits for the A certificate to expire.
    await put(cacertsFiles(caB, rootB, [rootA, rootB]));
    await eventually('roots A and B distributed', async () => ((await configMapRoots()).length === 2 ? true : undefined));
    expect(signer()).toBe('CN=ca-a');
    const stagedChain = issue(8);
    expect(stagedChain.at(-1)).toBe(rootA.certPem);
    await eventually('intermediate B signing', async () => (signer() === 'CN=ca-b' ? true : undefined), 15_000);
    const changesAfterPromotion = changes;
    expect(changesAfterPromotion).toBeGreaterThanOrEqual(2);

    // Step 2: root A removed while the certificate issued during staging (8 s) still lives: A stays until it expires.
    await put(cacertsFiles(caB, rootB, [rootB]));
    await eventually('the removal reloaded', async () => (changes > changesAfterPromotion ? true : undefined));
    expect(rootsIn(ca.trustBundle())).toEqual([fingerprint(rootB), fingerprint(rootA)]);
    await eventually('root A gone once its last certificate expired', async () =>
      (await configMapRoots()).join() === fingerprint(rootB) ? true : undefined,
    );
    const notAfter = Date.parse(new X509Certificate(stagedChain[0] as string).validTo);
    expect(Date.now()).toBeGreaterThanOrEqual(notAfter);

    // A swap with no root in common is refused, as istiod refuses it; so is a Secret that fails the check.
    await put(cacertsFiles(caC, rootC, [rootC]));
    await put({ ...cacertsFiles(caB, rootB, [rootB]), 'ca-key.pem': 'garbage' });
    await put(cacertsFiles(caB, rootB, [rootA, rootB]));
    // The last Secret (A added back) is taken: the two before it were refused, not queued behind.
    await eventually('roots A and B again', async () => ((await configMapRoots()).length === 2 ? true : undefined));
    expect(await configMapRoots()).toEqual([fingerprint(rootA), fingerprint(rootB)]);
    expect(signer()).toBe('CN=ca-b');
    // Reloads run in order, so the swap and the bad Secret were handled before the last one: neither reached anyone.
    expect(bundles.flat()).not.toContain(fingerprint(rootC));
    expect(signers).not.toContain('CN=ca-c');
  }, 120_000);
});
