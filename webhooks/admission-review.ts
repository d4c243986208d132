// AdmissionReview v1 in, AdmissionReview v1 out. Malformed input gets a clear
// refusal, never an exception; the patch is a diff of the pod before and after.
import type { V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { decideInjection } from './injection/decision.js';
import { injectPod } from './injection/inject-pod.js';
import type { InjectionConfig } from './injection/injection-config.js';

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  status?: { code: number; message: string };
  auditAnnotations?: Record<string, string>;
}

export interface AdmissionReviewOut {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

interface AdmissionRequestIn {
  uid?: unknown;
  namespace?: unknown;
  operation?: unknown;
  kind?: { group?: string; version?: string; kind?: string };
  object?: unknown;
}

const review = (response: AdmissionResponse): AdmissionReviewOut => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response,
});
const refuse = (uid: string, code: number, message: string) => review({ uid, allowed: false, status: { code, message } });

/** Checks the envelope; returns the request or a ready refusal. */
function readRequest(body: unknown): { request: AdmissionRequestIn & { uid: string } } | { refusal: AdmissionReviewOut } {
  const envelope = body as { apiVersion?: unknown; kind?: unknown; request?: AdmissionRequestIn } | null;
  const uid = typeof envelope?.request?.uid === 'string' ? envelope.request.uid : '';
  if (!envelope || typeof envelope !== 'object' || envelope.kind !== 'AdmissionReview') {
    return { refusal: refuse(uid, 400, 'expected an AdmissionReview (admission.k8s.io/v1)') };
  }
  if (envelope.apiVersion !== 'admission.k8s.io/v1') {
    return {
      refusal: refuse(uid, 400, `AdmissionReview ${String(envelope.apiVersion)} is not supported; configure admissionReviewVersions: [v1]`),
    };
  }
  if (!uid) return { refusal: refuse('', 400, 'AdmissionReview has no request.uid') };
  return { request: { ...(envelope.request as AdmissionRequestIn), uid } };
}

export function reviewInjection(
  body: unknown,
  namespaceLabels: (namespace: string) => Record<string, string>,
  config: InjectionConfig,
): AdmissionReviewOut {
  const read = readRequest(body);
  if ('refusal' in read) return read.refusal;
  const { request } = read;
  if (request.kind?.kind !== 'Pod' || request.operation !== 'CREATE') {
    return review({ uid: request.uid, allowed: true, auditAnnotations: { injection: 'not a pod creation; nothing to inject' } });
  }
  const pod = request.object as V1Pod | undefined;
  if (!pod || typeof pod !== 'object' || !Array.isArray(pod.spec?.containers)) {
    return refuse(request.uid, 400, 'request.object is not a Pod with spec.containers');
  }
  const namespace = typeof request.namespace === 'string' && request.namespace ? request.namespace : (pod.metadata?.namespace ?? 'default');
  const decision = decideInjection(pod, namespace, namespaceLabels(namespace), config);
  if (!decision.inject)
    return review({ uid: request.uid, allowed: true, auditAnnotations: { injection: `not injected: ${decision.reason}` } });
  const injected = injectPod(pod, namespace, config);
  const patch = fastJsonPatch.compare(pod, injected);
  return review({
    uid: request.uid,
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
    auditAnnotations: { injection: `injected: ${decision.reason}` },
  });
}

/** Validation of Istio resources arrives with the traffic and security APIs; until then everything is admitted. */
export function reviewValidation(body: unknown): AdmissionReviewOut {
  const read = readRequest(body);
  if ('refusal' in read) return read.refusal;
  return review({ uid: read.request.uid, allowed: true });
}
