import fastJsonPatch from 'fast-json-patch';
import type { V1ConfigMap } from '@kubernetes/client-node';
import {
  probeWebhookCalls,
  reviewProbeMutation,
  reviewProbeValidation,
  webhookProbeLabel,
  webhookProbeMutatedAnnotation,
} from './webhook-probe.js';

const review = (object: unknown, kind = 'ConfigMap', operation = 'CREATE') => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid: 'u1', kind: { group: '', version: 'v1', kind }, operation, namespace: 'weft-system', object },
});
const probe = (annotations?: Record<string, string>): V1ConfigMap => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { generateName: 'weft-webhook-probe-', labels: { [webhookProbeLabel]: 'weftd-0' }, ...(annotations ? { annotations } : {}) },
});
const patched = (object: V1ConfigMap, patch: string | undefined): V1ConfigMap =>
  fastJsonPatch.applyPatch(structuredClone(object), JSON.parse(Buffer.from(patch ?? '', 'base64').toString()) as fastJsonPatch.Operation[])
    .newDocument;

describe('webhook probe handlers', () => {
  it('the mutating probe marks a probe ConfigMap, and the validating probe refuses it saying both were called', () => {
    const mutation = reviewProbeMutation(review(probe())).response;
    expect(mutation).toMatchObject({ uid: 'u1', allowed: true, patchType: 'JSONPatch' });
    const marked = patched(probe(), mutation.patch);
    expect(marked.metadata?.annotations?.[webhookProbeMutatedAnnotation]).toBe('true');
    const validation = reviewProbeValidation(review(marked)).response;
    expect(validation.allowed).toBe(false);
    expect(validation.status?.message).toContain('were both called');
    // Existing annotations are kept.
    expect(patched(probe({ keep: 'me' }), reviewProbeMutation(review(probe({ keep: 'me' }))).response.patch).metadata?.annotations).toEqual(
      {
        keep: 'me',
        [webhookProbeMutatedAnnotation]: 'true',
      },
    );
  });

  it('an unmarked probe is refused saying the mutating webhook was not called', () => {
    const validation = reviewProbeValidation(review(probe())).response;
    expect(validation.allowed).toBe(false);
    expect(validation.status?.message).toContain('the mutating webhook was not');
  });

  it('admits unchanged what is not a probe creation, and refuses a malformed review naming the field', () => {
    const plain = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app', labels: { app: 'x' } } };
    for (const body of [review(plain), review(probe(), 'ConfigMap', 'UPDATE'), review(probe(), 'Secret')]) {
      expect(reviewProbeMutation(body).response).toEqual({ uid: 'u1', allowed: true });
      expect(reviewProbeValidation(body).response).toEqual({ uid: 'u1', allowed: true });
    }
    const malformed = reviewProbeValidation({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'u2' } });
    expect(malformed.response).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(malformed.response.status?.message).toContain('apiVersion');
  });
});

describe('probeWebhookCalls reads the API server answer', () => {
  // The API server's answer to a dry-run creation, as client-node raises it.
  const refusedWith = (message: string) => ({
    createNamespacedConfigMap: () => Promise.reject(Object.assign(new Error('HTTP 403'), { code: 403, body: JSON.stringify({ message }) })),
  });

  it('is called only when the refusal carries the validating webhook message with the mark', async () => {
    const both =
      reviewProbeValidation(review(patched(probe(), reviewProbeMutation(review(probe())).response.patch))).response.status?.message ?? '';
    const onlyValidating = reviewProbeValidation(review(probe())).response.status?.message ?? '';
    expect(
      await probeWebhookCalls(refusedWith(`admission webhook "probe.validation.weft.dev" denied the request: ${both}`), 'weft-system', 'p'),
    ).toEqual({
      called: true,
    });
    expect(
      await probeWebhookCalls(
        refusedWith(`admission webhook "probe.validation.weft.dev" denied the request: ${onlyValidating}`),
        'weft-system',
        'p',
      ),
    ).toMatchObject({
      called: false,
      apiError: false,
      problem: expect.stringContaining('MutatingWebhookConfiguration lags'),
    });
    const admitted = { createNamespacedConfigMap: () => Promise.resolve({}) };
    expect(await probeWebhookCalls(admitted, 'weft-system', 'p')).toMatchObject({ called: false, apiError: false });
    expect(await probeWebhookCalls(refusedWith('etcdserver: request timed out'), 'weft-system', 'p')).toMatchObject({
      called: false,
      apiError: true,
    });
  });

  it('asks for a dry run, in the given namespace, of a ConfigMap the probe webhooks select', async () => {
    let asked: unknown;
    await probeWebhookCalls({ createNamespacedConfigMap: (request) => ((asked = request), Promise.resolve({})) }, 'weft-system', 'weftd-0');
    expect(asked).toMatchObject({
      namespace: 'weft-system',
      dryRun: 'All',
      body: { metadata: { labels: { [webhookProbeLabel]: 'weftd-0' } } },
    });
  });
});
