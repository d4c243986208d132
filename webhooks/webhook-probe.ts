// Proof that the API server itself calls weftd's webhooks. A handshake with the caBundle read
// back (webhook-readiness.ts) shows the stored configuration would work, but the API server
// admits through its own cache of webhook configurations, which can lag the stored object by
// seconds: a pod created in that window is stored without a sidecar (seen in `make chaos`, 1 in
// 100 rounds). So weftd also asks the API server to dry-run the creation of a ConfigMap
// labelled `weft.dev/webhook-probe` in its own namespace: the probe webhook of the injector's
// MutatingWebhookConfiguration marks it, the probe webhook of the ValidatingWebhookConfiguration
// refuses it saying whether the mark is there. Only that refusal, with the mark, proves both
// configurations are live in the API server for this weftd. Dry-run: nothing is stored; the
// refusal keeps a real creation from storing one either.
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { webhookProbe } from '../api/labels.js';
import { readRequest, type AdmissionReviewOut } from './admission-review.js';

/** The label that routes a ConfigMap to the probe webhooks (their objectSelector). */
export const webhookProbeLabel = webhookProbe.label;
/** The annotation the mutating probe webhook adds. */
export const webhookProbeMutatedAnnotation = 'weft.dev/webhook-probe-mutated';
/** Paths of the probe webhooks on weftd's webhook server. */
export const webhookProbePaths = { mutate: webhookProbe.mutatePath, validate: webhookProbe.validatePath } as const;

const calledBoth = 'weft webhook probe: the mutating and validating webhooks were both called';
const calledValidatingOnly = 'weft webhook probe: the validating webhook was called, the mutating webhook was not';

const review = (response: AdmissionReviewOut['response']): AdmissionReviewOut => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response,
});

/**
 * The probe ConfigMap of a review, or the answer for anything else: a malformed review's
 * refusal naming the field, or admission unchanged for what is not a probe's creation.
 */
function probeOf(body: unknown): { uid: string; probe: V1ConfigMap } | { answer: AdmissionReviewOut } {
  const read = readRequest(body);
  if ('refusal' in read) return { answer: read.refusal };
  const { request } = read;
  const object = request.object as V1ConfigMap | undefined;
  const isProbe = !!object && typeof object === 'object' && typeof object.metadata?.labels?.[webhookProbeLabel] === 'string';
  if (request.kind?.kind !== 'ConfigMap' || request.operation !== 'CREATE' || !isProbe)
    return { answer: review({ uid: request.uid, allowed: true }) };
  return { uid: request.uid, probe: object };
}

/**
 * The mutating probe webhook: a ConfigMap creation labelled `weft.dev/webhook-probe` gets
 * the `weft.dev/webhook-probe-mutated` annotation (a JSONPatch); anything else is admitted
 * unchanged. Malformed reviews are refused naming the field, as the other webhooks do.
 */
export function reviewProbeMutation(body: unknown): AdmissionReviewOut {
  const found = probeOf(body);
  if ('answer' in found) return found.answer;
  const { uid, probe } = found;
  const marked = {
    ...probe,
    metadata: { ...probe.metadata, annotations: { ...probe.metadata?.annotations, [webhookProbeMutatedAnnotation]: 'true' } },
  };
  const patch = Buffer.from(JSON.stringify(fastJsonPatch.compare(probe, marked))).toString('base64');
  return review({ uid, allowed: true, patchType: 'JSONPatch', patch });
}

/**
 * The validating probe webhook: a ConfigMap creation labelled `weft.dev/webhook-probe` is
 * refused (403), the message saying whether the mutating probe marked it; anything else is
 * admitted. Validating webhooks run after every mutating one, so the mark is seen if it was made.
 */
export function reviewProbeValidation(body: unknown): AdmissionReviewOut {
  const found = probeOf(body);
  if ('answer' in found) return found.answer;
  const mutated = found.probe.metadata?.annotations?.[webhookProbeMutatedAnnotation] === 'true';
  return review({ uid: found.uid, allowed: false, status: { code: 403, message: mutated ? calledBoth : calledValidatingOnly } });
}

/** The API calls the probe makes; a CoreV1Api gives the real one. */
export type ProbeApi = Pick<CoreV1Api, 'createNamespacedConfigMap'>;

/** The probe's outcome: both webhooks called, or the problem; `apiError` when the API server itself failed the request. */
export type ProbeOutcome = { called: true } | { called: false; problem: string; apiError: boolean };

/**
 * Asks the API server to dry-run a probe ConfigMap's creation in `namespace` (weftd's own,
 * the only one the probe webhooks select; `caller` labels it, e.g. the pod name) and reads
 * the outcome: `called` when both of weftd's webhook configurations were called, else the
 * problem in words a user can act on. Needs `create` on ConfigMaps in `namespace` (weftd
 * has it for the trust bundle). Never throws.
 */
export async function probeWebhookCalls(api: ProbeApi, namespace: string, caller: string): Promise<ProbeOutcome> {
  const body: V1ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { generateName: 'weft-webhook-probe-', namespace, labels: { [webhookProbeLabel]: caller } },
  };
  try {
    await api.createNamespacedConfigMap({ namespace, body, dryRun: 'All' });
    return {
      called: false,
      apiError: false,
      problem:
        "the API server admitted a probe without calling weftd's webhooks: its cache of webhook configurations does not have them yet",
    };
  } catch (error) {
    const text = errorText(error);
    if (text.includes(calledBoth)) return { called: true };
    if (text.includes(calledValidatingOnly))
      return {
        called: false,
        apiError: false,
        problem:
          "the API server called weftd's validating webhook but not its injection webhook: its cache of the MutatingWebhookConfiguration lags",
      };
    return {
      called: false,
      apiError: true,
      problem: `the webhook probe (a dry-run ConfigMap creation in ${namespace}) failed: ${text.slice(0, 300)}`,
    };
  }
}

function errorText(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const message = (JSON.parse(body) as { message?: unknown }).message;
      if (typeof message === 'string') return message;
    } catch {
      return body;
    }
  }
  return error instanceof Error ? error.message : String(error);
}
