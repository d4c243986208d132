// Admission chaos: fuzzed AdmissionReviews (admission-fuzz.ts) sent to weftd's webhook
// server on 15017 over HTTPS, trusting the webhook configuration's caBundle and
// checking weftd's serving name, as the API server calls it. Each answer is checked
// to be an AdmissionReview the API server would accept (its uid, `allowed`, a patch
// that applies to the object, a refusal with a status) and every refusal to name a
// field; weftd's process and log are watched for crashes and errors.
import { Agent, request } from 'node:https';
import { AdmissionregistrationV1Api, CoreV1Api } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { logProblemsSince, logSize, percentile, weftdServiceName, type ChaosTarget } from './chaos-target.js';
import { fuzzCases, injectionNamespace, loadSeeds, type FuzzCase } from './admission-fuzz.js';
import { seededRandom } from './seeded-random.js';

export interface AdmissionChaosOptions {
  reviews: number;
  concurrency: number;
  seed: number;
  repositoryRoot: string;
  progress: (line: string) => void;
}

export interface AdmissionFigures {
  sent: number;
  seeds: number;
  /** Distinct fields of the seeds' reviews given a wrong JSON type, and how many there are. */
  wrongTypeFields: number;
  fields: number;
  allowed: number;
  patched: number;
  refused: number;
  /** weftd exited during the run. */
  crashed: boolean;
  /** HTTP 500s, refusals saying the webhook itself failed, and error-level or non-JSON lines in weftd's log. */
  unhandled: string[];
  invalidReviews: string[];
  refusalsWithoutField: string[];
  /** Requests with no answer at all (connection refused or reset, timeout). */
  noAnswer: string[];
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A refusal names a field when its message carries a path of the review or its object. */
const namesField = (message: string): boolean =>
  /(^|[\s:'"(`])(apiVersion|kind|request(\.\w+)*|(request\.object\.)?(spec|metadata)(\.|\[|:|\s|$))/.test(message);

interface Answer {
  status: number;
  body: string;
  ms: number;
}

function post(agent: Agent, target: ChaosTarget, path: string, body: string): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.weftdIp,
        port: 15017,
        path: `${path}?timeout=10s`,
        method: 'POST',
        agent,
        servername: weftdServiceName,
        headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within the webhook timeout (10 s)')));
    req.on('error', reject);
    req.end(body);
  });
}

/** What is wrong with an answer as the API server would read it, or undefined. */
export function reviewProblem(sent: unknown, answer: { status: number; body: string }): string | undefined {
  if (answer.status !== 200) return `HTTP ${answer.status}: ${answer.body.slice(0, 200)}`;
  let out: { apiVersion?: unknown; kind?: unknown; response?: Record<string, unknown> };
  try {
    out = JSON.parse(answer.body) as typeof out;
  } catch {
    return 'the answer is not JSON';
  }
  if (out.apiVersion !== 'admission.k8s.io/v1' || out.kind !== 'AdmissionReview')
    return 'the answer is not an admission.k8s.io/v1 AdmissionReview';
  const response = out.response;
  if (!response || typeof response !== 'object') return 'the answer has no response';
  const request = (sent as { request?: { uid?: unknown; object?: unknown } } | null)?.request;
  const uid = request && typeof request === 'object' && typeof request.uid === 'string' ? request.uid : '';
  if (response['uid'] !== uid) return `response.uid ${JSON.stringify(response['uid'])} is not the request's ${JSON.stringify(uid)}`;
  if (typeof response['allowed'] !== 'boolean') return 'response.allowed is not a boolean';
  if (
    response['warnings'] !== undefined &&
    !(Array.isArray(response['warnings']) && response['warnings'].every((w) => typeof w === 'string'))
  )
    return 'response.warnings is not a list of strings';
  if (response['patch'] !== undefined) {
    if (response['patchType'] !== 'JSONPatch') return 'a patch without patchType JSONPatch';
    try {
      const ops = JSON.parse(Buffer.from(String(response['patch']), 'base64').toString('utf8')) as fastJsonPatch.Operation[];
      if (!Array.isArray(ops) || ops.some((op) => typeof op?.op !== 'string' || typeof op.path !== 'string'))
        return 'the patch is not a list of JSON Patch operations';
      // A key named __proto__ is an ordinary key to the API server, but fast-json-patch will not apply it in JavaScript.
      if (!ops.some((op) => /\/(__proto__|constructor|prototype)(\/|$)/.test(op.path)))
        fastJsonPatch.applyPatch(structuredClone(request?.object), ops, true);
    } catch (error) {
      return `the patch does not apply to the object: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  if (response['allowed'] === false) {
    const status = response['status'] as { code?: unknown; message?: unknown } | undefined;
    if (!status || typeof status.message !== 'string' || !status.message) return 'a refusal without status.message';
    if (typeof status.code !== 'number' || status.code < 400 || status.code > 599)
      return `a refusal with status.code ${String(status.code)}`;
  }
  return undefined;
}

export async function admissionChaos(target: ChaosTarget, options: AdmissionChaosOptions): Promise<AdmissionFigures> {
  const { progress } = options;
  const core = target.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: injectionNamespace, labels: { 'weft-injection': 'enabled' } } } });
  const hook = await target.kubeConfig
    .makeApiClient(AdmissionregistrationV1Api)
    .readMutatingWebhookConfiguration({ name: 'weft-sidecar-injector-weft-system' });
  const caBundle = hook.webhooks?.[0]?.clientConfig.caBundle;
  if (!caBundle) throw new Error('the injection webhook has no caBundle');
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency, ca: Buffer.from(caBundle, 'base64').toString('utf8') });
  // The injector reads namespace labels from its own watch: wait until it has seen the new namespace.
  await new Promise((resolve) => setTimeout(resolve, 2_000));

  const seeds = loadSeeds(options.repositoryRoot);
  const random = seededRandom(options.seed);
  const fieldCount = seeds.reduce((sum, seed) => sum + countFields(seed.review), 0);
  const cases = [...fuzzCases(seeds, random, options.reviews)];
  const figures: AdmissionFigures = {
    sent: 0,
    seeds: seeds.length,
    wrongTypeFields: new Set(cases.filter((c) => c.wrongTypeField).map((c) => `${c.mutation.split(':')[0]} ${c.wrongTypeField}`)).size,
    fields: fieldCount,
    allowed: 0,
    patched: 0,
    refused: 0,
    crashed: false,
    unhandled: [],
    invalidReviews: [],
    refusalsWithoutField: [],
    noAnswer: [],
    p50Ms: 0,
    p99Ms: 0,
    maxMs: 0,
  };
  const samples: number[] = [];
  const logOffset = logSize(target.weftd);
  progress(
    `admission: ${cases.length} fuzzed AdmissionReviews from ${seeds.length} real objects (seed ${options.seed}), ${options.concurrency} at a time`,
  );
  const started = Date.now();
  let next = 0;
  const send = async (fuzz: FuzzCase) => {
    let answer: Answer;
    const body = JSON.stringify(fuzz.review);
    try {
      answer = await post(agent, target, fuzz.path, body);
    } catch (error) {
      figures.noAnswer.push(`${fuzz.mutation}: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    figures.sent++;
    samples.push(answer.ms);
    if (answer.status >= 500) figures.unhandled.push(`${fuzz.mutation}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
    const problem = reviewProblem(fuzz.review, answer);
    if (problem) {
      figures.invalidReviews.push(`${fuzz.path} ${fuzz.mutation}: ${problem}`);
      return;
    }
    const response = (
      JSON.parse(answer.body) as { response: { allowed: boolean; patch?: string; status?: { code: number; message: string } } }
    ).response;
    if (response.allowed) {
      figures.allowed++;
      if (response.patch) figures.patched++;
      return;
    }
    figures.refused++;
    const message = response.status?.message ?? '';
    if (response.status && response.status.code >= 500)
      figures.unhandled.push(`${fuzz.path} ${fuzz.mutation}: refused with ${response.status.code} ${message.slice(0, 200)}`);
    if (!namesField(message)) figures.refusalsWithoutField.push(`${fuzz.path} ${fuzz.mutation}: ${message.slice(0, 200)}`);
  };
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < cases.length && target.weftd.running) {
        const index = next++;
        await send(cases[index] as FuzzCase);
        if ((index + 1) % 1000 === 0)
          progress(
            `admission: ${index + 1}/${cases.length} reviews, ${figures.refused} refused, ${figures.invalidReviews.length + figures.unhandled.length + figures.noAnswer.length} problems, ${Math.round((Date.now() - started) / 1000)} s`,
          );
      }
    }),
  );
  agent.destroy();
  figures.crashed = !target.weftd.running;
  figures.unhandled.push(...logProblemsSince(target.weftd, logOffset).map((line) => `weftd log: ${line.slice(0, 300)}`));
  figures.p50Ms = percentile(samples, 50);
  figures.p99Ms = percentile(samples, 99);
  figures.maxMs = percentile(samples, 100);
  await core.deleteNamespace({ name: injectionNamespace }).catch(() => undefined);
  return figures;
}

function countFields(value: unknown): number {
  if (Array.isArray(value)) return value.reduce<number>((sum, item) => sum + 1 + countFields(item), 0);
  if (value && typeof value === 'object') return Object.values(value).reduce<number>((sum, item) => sum + 1 + countFields(item), 0);
  return 0;
}
