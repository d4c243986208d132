// Identity chaos: adversarial certificate requests against weftd's CA on 15012, over
// Istio's CSR API (istio.v1.auth.IstioCertificateService/CreateCertificate) with TLS
// as pilot-agent calls it. Tokens for another ServiceAccount than the CSR claims,
// expired, wrong audience, of a deleted pod or ServiceAccount, forged or unsigned;
// CSRs with extra SANs, a key that does not match the signature, oversized, malformed
// DER, unsupported keys; then a flood from one caller while another caller's
// legitimate requests are timed. Every issued certificate is checked against the
// identity its token really proves.
import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api } from '@kubernetes/client-node';
import { certificateServiceDefinition } from '../../ca/server/certificate-service.js';
import { buildCsr } from '../fixtures/csr.js';
import { byLabel, logProblemsSince, logSize, percentile, scrapeMetrics, weftdServiceName, type ChaosTarget } from './chaos-target.js';
import { derToPem, mutateCsr, pemToDer } from './csr-mutations.js';
import { seededRandom } from './seeded-random.js';
import { hostileTokens, requestToken } from './service-account-tokens.js';

export interface IdentityChaosOptions {
  /** Adversarial requests (hostile tokens and hostile CSRs). */
  adversarial: number;
  /** Requests of the flood from one caller, and how many it keeps in flight. */
  flood: number;
  floodConcurrency: number;
  /** Legitimate requests of another caller, one at a time, all while the flood goes on. */
  legitimate: number;
  seed: number;
  progress: (line: string) => void;
}

export interface IdentityFigures {
  requests: number;
  adversarial: number;
  /** Certificates whose identity is not the one the request's token proves (or issued on a token that proves none). */
  wrongIdentity: string[];
  /** Adversarial requests by category: sent, refused, issued (issued only where the token was valid and the CSR harmless). */
  categories: Map<string, { sent: number; refused: number; issued: number }>;
  /** Refusals the callers saw (any gRPC error), and the CA's own count of refusals by reason over the same run. */
  refusalsSeen: number;
  refusedByReason: Map<string, number>;
  /** Errors that did not come from the CA (transport, deadline). */
  transportErrors: string[];
  flood: { sent: number; issued: number; shed: number; other: number };
  legitimate: {
    sent: number;
    served: number;
    retries: number;
    p50Ms: number;
    p99Ms: number;
    failures: string[];
    /** The same caller, same requests, before the flood. */
    baselineP50Ms: number;
    baselineP99Ms: number;
  };
  weftdUp: boolean;
  logProblems: string[];
}

interface Attempt {
  category: string;
  token: string | undefined;
  csr: string;
  validity?: number;
  /** The SPIFFE ID the token proves, when it proves one. */
  identity: string | undefined;
  /** The key the CSR was built around: an issued leaf must carry exactly it. */
  keySpki: Buffer;
}

type Outcome = { ok: true; chain: string[]; ms: number } | { ok: false; code: number; details: string; ms: number };

const spiffe = (namespace: string, account: string) => `spiffe://cluster.local/ns/${namespace}/sa/${account}`;
const Client = grpc.makeGenericClientConstructor(certificateServiceDefinition(), 'IstioCertificateService');

function caClient(target: ChaosTarget): grpc.Client {
  return new Client(`${target.weftdIp}:15012`, grpc.credentials.createSsl(Buffer.from(target.trustBundle)), {
    'grpc.ssl_target_name_override': weftdServiceName,
    'grpc.default_authority': weftdServiceName,
  });
}

function createCertificate(client: grpc.Client, token: string | undefined, csr: string, validity = 3600): Promise<Outcome> {
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  const started = performance.now();
  return new Promise((resolve) => {
    (
      client as unknown as Record<
        string,
        (r: object, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v?: { cert_chain: string[] }) => void) => void
      >
    )['CreateCertificate']?.({ csr, validity_duration: validity }, metadata, { deadline: Date.now() + 30_000 }, (error, value) => {
      const ms = performance.now() - started;
      if (error) resolve({ ok: false, code: error.code, details: error.details, ms });
      else resolve({ ok: true, chain: value?.cert_chain ?? [], ms });
    });
  });
}

/** Why an issued chain is wrong for the attempt, or undefined when it is right. */
function wrongness(attempt: Attempt, chain: string[]): string | undefined {
  if (!attempt.identity) return `${attempt.category}: issued on a token that proves no identity`;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(chain[0] ?? '');
  } catch {
    return `${attempt.category}: issued a chain whose leaf does not parse`;
  }
  if (leaf.subjectAltName !== `URI:${attempt.identity}`) return `${attempt.category}: issued ${leaf.subjectAltName} to ${attempt.identity}`;
  if (leaf.ca) return `${attempt.category}: issued a CA certificate`;
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(attempt.keySpki))
    return `${attempt.category}: issued for a key the caller did not present`;
  return undefined;
}

async function runPool<T>(items: T[], concurrency: number, body: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        await body(items[index] as T, index);
      }
    }),
  );
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function identityChaos(target: ChaosTarget, options: IdentityChaosOptions): Promise<IdentityFigures> {
  const { progress } = options;
  const random = seededRandom(options.seed);
  const core = target.kubeConfig.makeApiClient(CoreV1Api);
  const ns = 'chaos-identity';
  await core.createNamespace({ body: { metadata: { name: ns } } });
  for (const name of ['alice', 'bob', 'ghost', 'legit'])
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
  await waitUntil('the default ServiceAccount', async () =>
    Boolean(await core.readNamespacedServiceAccount({ name: 'default', namespace: ns })),
  );

  const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const alice = p256();
  const spki = (key: KeyObject) => key.export({ type: 'spki', format: 'der' });
  const aliceSpki = spki(alice.publicKey);
  const aliceCsr = buildCsr(alice);
  const aliceToken = await requestToken(target.kubeConfig, ns, 'alice');
  const aliceId = spiffe(ns, 'alice');

  // Tokens that prove nothing the CA accepts.
  const badTokens: Record<string, string | undefined> = {
    ...hostileTokens(aliceToken, target.serviceAccountKeyPem, 'bob'),
    'wrong audience (a real token for another API)': await requestToken(target.kubeConfig, ns, 'alice', { audiences: ['vault'] }),
    "wrong audience (the API server's own)": await requestToken(target.kubeConfig, ns, 'alice', { audiences: [target.issuer] }),
    'no token': undefined,
    'empty bearer': '',
  };
  const ghostToken = await requestToken(target.kubeConfig, ns, 'ghost');
  await core.deleteNamespacedServiceAccount({ name: 'ghost', namespace: ns });
  badTokens['of a deleted ServiceAccount'] = ghostToken;

  // Bound tokens of a pod that is gone: one never used, one used (and so cached by the API server) just before the pod went.
  const podToken = async (name: string) => {
    const pod = await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name }, spec: { serviceAccountName: 'alice', containers: [{ name: 'app', image: 'registry.example/app:1' }] } },
    });
    return { name, token: await requestToken(target.kubeConfig, ns, 'alice', { pod: { name, uid: pod.metadata?.uid as string } }) };
  };
  const unused = await podToken('doomed-unused');
  const used = await podToken('doomed-used');
  const client = caClient(target);
  const before = await createCertificate(client, used.token, aliceCsr);
  if (!before.ok) throw new Error(`a bound token of a live pod was refused: ${before.details}`);
  for (const pod of [unused, used]) await core.deleteNamespacedPod({ name: pod.name, namespace: ns, gracePeriodSeconds: 0 });
  await waitUntil('the doomed pods to be gone', async () => (await core.listNamespacedPod({ namespace: ns })).items.length === 0);
  badTokens['bound to a deleted pod'] = unused.token;
  badTokens['bound to a deleted pod, used just before'] = used.token;

  // CSRs that ask for more than the caller's identity, or that the CA must not parse.
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const secp256k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
  const ed25519 = generateKeyPairSync('ed25519');
  const x25519 = generateKeyPairSync('x25519');
  const other = p256();
  const badCsrs: Record<string, () => { csr: string; keySpki: Buffer }> = {
    "another account's SPIFFE ID": () => ({ csr: buildCsr({ ...alice, uris: [spiffe(ns, 'bob')] }), keySpki: aliceSpki }),
    "another namespace's SPIFFE ID": () => ({ csr: buildCsr({ ...alice, uris: [spiffe('kube-system', 'admin')] }), keySpki: aliceSpki }),
    'own SPIFFE ID plus another': () => ({ csr: buildCsr({ ...alice, uris: [aliceId, spiffe(ns, 'bob')] }), keySpki: aliceSpki }),
    'another trust domain': () => ({ csr: buildCsr({ ...alice, uris: [`spiffe://evil.example/ns/${ns}/sa/alice`] }), keySpki: aliceSpki }),
    'extra DNS SAN': () => ({ csr: buildCsr({ ...alice, uris: [aliceId], dnsNames: ['bank.example'] }), keySpki: aliceSpki }),
    'wildcard DNS SAN': () => ({ csr: buildCsr({ ...alice, dnsNames: ['*.svc.cluster.local'] }), keySpki: aliceSpki }),
    'CA:TRUE': () => ({ csr: buildCsr({ ...alice, requestCa: true }), keySpki: aliceSpki }),
    'signed by another key': () => ({ csr: buildCsr({ ...alice, signingKey: other.privateKey }), keySpki: aliceSpki }),
    'another key than the signer': () => ({
      csr: buildCsr({ privateKey: alice.privateKey, publicKey: other.publicKey }),
      keySpki: spki(other.publicKey),
    }),
    'oversized (2,000 SANs)': () => ({
      csr: buildCsr({ ...alice, dnsNames: Array.from({ length: 2000 }, (_, i) => `name-${i}.example`) }),
      keySpki: aliceSpki,
    }),
    'oversized (1 MiB of PEM)': () => ({ csr: aliceCsr.replace('\n', `\n${'A'.repeat(1 << 20)}\n`), keySpki: aliceSpki }),
    'RSA-1024 key': () => ({ csr: buildCsr(rsa1024), keySpki: spki(rsa1024.publicKey) }),
    'P-384 key': () => ({ csr: buildCsr(p384), keySpki: spki(p384.publicKey) }),
    'secp256k1 key': () => ({ csr: buildCsr(secp256k1), keySpki: spki(secp256k1.publicKey) }),
    // Signed by an ECDSA key: the key type is what must be refused, before any signature check.
    'Ed25519 key': () => ({
      csr: buildCsr({ privateKey: alice.privateKey, publicKey: ed25519.publicKey }),
      keySpki: spki(ed25519.publicKey),
    }),
    'X25519 key': () => ({ csr: buildCsr({ privateKey: alice.privateKey, publicKey: x25519.publicKey }), keySpki: spki(x25519.publicKey) }),
    'not PEM': () => ({ csr: 'hello', keySpki: aliceSpki }),
    'PEM of nothing': () => ({ csr: derToPem(Buffer.alloc(0)), keySpki: aliceSpki }),
    'a certificate, not a request': () => ({
      csr: derToPem(pemToDer(target.trustBundle.replace(/CERTIFICATE-----/g, 'CERTIFICATE REQUEST-----'))),
      keySpki: aliceSpki,
    }),
  };

  // The adversarial requests, spread over the categories; DER mutations get the largest share.
  const tokenCategories = Object.keys(badTokens);
  const csrCategories = Object.keys(badCsrs);
  const attempts: Attempt[] = [];
  for (let i = 0; attempts.length < options.adversarial; i++) {
    if (i % 3 === 0) {
      const category = tokenCategories[(i / 3) % tokenCategories.length] as string;
      attempts.push({ category: `token ${category}`, token: badTokens[category], csr: aliceCsr, identity: undefined, keySpki: aliceSpki });
    } else if (i % 3 === 1) {
      const category = csrCategories[Math.floor(i / 3) % csrCategories.length] as string;
      const made = (badCsrs[category] as () => { csr: string; keySpki: Buffer })();
      attempts.push({ category: `csr ${category}`, token: aliceToken, csr: made.csr, identity: aliceId, keySpki: made.keySpki });
    } else {
      attempts.push({ category: 'csr malformed DER (structure-aware mutation)', token: aliceToken, ...mutatedCsr(), identity: aliceId });
    }
  }
  function mutatedCsr(): { csr: string; keySpki: Buffer } {
    const made = mutateCsr(aliceCsr, random);
    return { csr: made.pem, keySpki: aliceSpki };
  }
  // The first few go right after the pod deletion, inside the API server's token cache window.
  const cached = attempts.findIndex((a) => a.category === 'token bound to a deleted pod, used just before');
  if (cached > 0) attempts.unshift(...attempts.splice(cached, 1));

  const refusedBefore = byLabel(await scrapeMetrics(target), 'weft_ca_csr_refused_total', 'reason');
  const logOffset = logSize(target.weftd);
  const categories = new Map<string, { sent: number; refused: number; issued: number }>();
  const wrongIdentity: string[] = [];
  const transportErrors: string[] = [];
  let refusalsSeen = 0;
  // Codes the CA's handler answers with; anything else did not come from it.
  const caCodes = new Set([
    grpc.status.UNAUTHENTICATED,
    grpc.status.UNAVAILABLE,
    grpc.status.INVALID_ARGUMENT,
    grpc.status.PERMISSION_DENIED,
    grpc.status.FAILED_PRECONDITION,
    grpc.status.RESOURCE_EXHAUSTED,
    grpc.status.INTERNAL,
  ]);
  const record = (attempt: Attempt, outcome: Outcome) => {
    const entry = categories.get(attempt.category) ?? { sent: 0, refused: 0, issued: 0 };
    categories.set(attempt.category, entry);
    entry.sent++;
    if (outcome.ok) {
      entry.issued++;
      const wrong = wrongness(attempt, outcome.chain);
      if (wrong) wrongIdentity.push(wrong);
      return;
    }
    entry.refused++;
    refusalsSeen++;
    if (!caCodes.has(outcome.code) || /^(Received|Call cancelled|Deadline|No connection)/.test(outcome.details))
      transportErrors.push(`${attempt.category}: ${grpc.status[outcome.code]} ${outcome.details}`);
  };

  progress(`identity: ${attempts.length} adversarial certificate requests (seed ${options.seed})`);
  const started = Date.now();
  await runPool(attempts, 16, async (attempt, index) => {
    record(attempt, await createCertificate(client, attempt.token, attempt.csr, attempt.validity));
    if ((index + 1) % 1000 === 0)
      progress(`identity: ${index + 1}/${attempts.length} adversarial requests, ${Math.round((Date.now() - started) / 1000)} s`);
  });

  // The flood: one caller with a valid token, far more requests in flight than the CA takes at once;
  // meanwhile another workload asks for its certificate as pilot-agent does, retrying with backoff.
  progress(
    `identity: flood of ${options.flood} requests from one caller, ${options.floodConcurrency} in flight, with a legitimate caller timed`,
  );
  const floodClients = Array.from({ length: 4 }, () => caClient(target));
  const flood = { sent: 0, issued: 0, shed: 0, other: 0 };
  const legit = p256();
  const legitCsr = buildCsr(legit);
  const legitToken = await requestToken(target.kubeConfig, ns, 'legit');
  const legitClient = caClient(target);
  const legitimate = { sent: 0, served: 0, retries: 0, samples: [] as number[], failures: [] as string[] };
  // The same caller's latency with no flood, for comparison.
  const baseline: number[] = [];
  for (let i = 0; i < 20; i++) {
    const outcome = await createCertificate(legitClient, legitToken, legitCsr);
    if (outcome.ok) baseline.push(outcome.ms);
  }
  // The flood goes on until it has sent its share and the legitimate caller is done.
  let legitimateRunning = true;
  const floodDone = Promise.all(
    Array.from({ length: options.floodConcurrency }, async (_, worker) => {
      while (flood.sent < options.flood || legitimateRunning) {
        flood.sent++;
        const outcome = await createCertificate(floodClients[worker % floodClients.length] as grpc.Client, aliceToken, aliceCsr);
        if (outcome.ok) {
          flood.issued++;
          const wrong = wrongness(
            { category: 'flood', token: aliceToken, csr: aliceCsr, identity: aliceId, keySpki: aliceSpki },
            outcome.chain,
          );
          if (wrong) wrongIdentity.push(wrong);
        } else {
          refusalsSeen++;
          if (outcome.code === grpc.status.RESOURCE_EXHAUSTED) flood.shed++;
          else {
            flood.other++;
            if (flood.other <= 5) transportErrors.push(`flood: ${grpc.status[outcome.code]} ${outcome.details}`);
          }
        }
      }
    }),
  );
  const legitDone = (async () => {
    // Let the flood fill the CA first.
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let i = 0; i < options.legitimate; i++) {
      legitimate.sent++;
      const start = performance.now();
      let outcome = await createCertificate(legitClient, legitToken, legitCsr);
      // pilot-agent retries a refused CSR with backoff; shedding is only correct if the retry is served.
      for (let attempt = 1; !outcome.ok && outcome.code === grpc.status.RESOURCE_EXHAUSTED && attempt <= 5; attempt++) {
        refusalsSeen++;
        legitimate.retries++;
        await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
        outcome = await createCertificate(legitClient, legitToken, legitCsr);
      }
      if (outcome.ok) {
        legitimate.served++;
        legitimate.samples.push(performance.now() - start);
        const wrong = wrongness(
          { category: 'legitimate', token: legitToken, csr: legitCsr, identity: spiffe(ns, 'legit'), keySpki: spki(legit.publicKey) },
          outcome.chain,
        );
        if (wrong) wrongIdentity.push(wrong);
      } else {
        refusalsSeen++;
        legitimate.failures.push(`${grpc.status[outcome.code]} ${outcome.details}`);
      }
    }
  })().finally(() => {
    legitimateRunning = false;
  });
  const floodStarted = Date.now();
  const ticker = setInterval(
    () =>
      progress(
        `identity: flood ${flood.sent} sent (${flood.shed} shed), at least ${options.flood}, legitimate ${legitimate.served}/${legitimate.sent} served, ${Math.round((Date.now() - floodStarted) / 1000)} s`,
      ),
    10_000,
  );
  await Promise.all([floodDone, legitDone]);
  clearInterval(ticker);
  for (const c of [client, legitClient, ...floodClients]) c.close();

  const refusedAfter = byLabel(await scrapeMetrics(target), 'weft_ca_csr_refused_total', 'reason');
  const refusedByReason = new Map<string, number>();
  for (const [reason, value] of refusedAfter) {
    const delta = value - (refusedBefore.get(reason) ?? 0);
    if (delta > 0) refusedByReason.set(reason, delta);
  }
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
  return {
    requests: attempts.length + flood.sent + legitimate.sent + legitimate.retries + baseline.length + 1,
    adversarial: attempts.length,
    wrongIdentity,
    categories,
    refusalsSeen,
    refusedByReason,
    transportErrors,
    flood,
    legitimate: {
      sent: legitimate.sent,
      served: legitimate.served,
      retries: legitimate.retries,
      p50Ms: percentile(legitimate.samples, 50),
      p99Ms: percentile(legitimate.samples, 99),
      failures: legitimate.failures,
      baselineP50Ms: percentile(baseline, 50),
      baselineP99Ms: percentile(baseline, 99),
    },
    weftdUp: target.weftd.running,
    logProblems: logProblemsSince(target.weftd, logOffset),
  };
}
