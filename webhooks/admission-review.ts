// AdmissionReview v1 in, AdmissionReview v1 out. Malformed input gets a clear
// refusal, never an exception; the patch is a diff of the pod before and after;
// Istio objects are validated by istio/validation.
import type { V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import {
  describeIssue,
  errorsOf,
  refusalMessage,
  validateIstioObject,
  validatesKind,
  warningsOf,
} from '../istio/validation/validate-istio-object.js';
import {
  injectionFailure,
  injectionRequests,
  injectionSkip,
  injectionSuccess,
  validationFailed,
  validationPassed,
} from '../lib/monitoring.js';
import { decideInjection } from './injection/decision.js';
import { structuralProblems } from './structural-schema.js';
import { injectPod, podShapeProblem } from './injection/inject-pod.js';
import type { InjectionConfig } from './injection/injection-config.js';

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  status?: { code: number; message: string; reason?: string };
  auditAnnotations?: Record<string, string>;
  /** Shown by kubectl as `Warning: ...`; Istio's validator sends its warnings the same way. */
  warnings?: string[];
}

export interface AdmissionReviewOut {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export interface AdmissionRequestIn {
  uid?: unknown;
  namespace?: unknown;
  operation?: unknown;
  kind?: { group?: string; version?: string; kind?: string };
  name?: unknown;
  object?: unknown;
}

const review = (response: AdmissionResponse): AdmissionReviewOut => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response,
});
const refuse = (uid: string, code: number, message: string) => review({ uid, allowed: false, status: { code, message } });

/** Checks the envelope (AdmissionReview v1 with a request.uid); returns the request or a ready refusal naming the field. */
export function readRequest(body: unknown): { request: AdmissionRequestIn & { uid: string } } | { refusal: AdmissionReviewOut } {
  const envelope = body as { apiVersion?: unknown; kind?: unknown; request?: AdmissionRequestIn } | null;
  const uid = typeof envelope?.request?.uid === 'string' ? envelope.request.uid : '';
  if (!envelope || typeof envelope !== 'object' || envelope.kind !== 'AdmissionReview') {
    const kind = envelope && typeof envelope === 'object' ? JSON.stringify(envelope.kind ?? null).slice(0, 64) : 'absent';
    return { refusal: refuse(uid, 400, `kind: expected AdmissionReview (admission.k8s.io/v1), got ${kind}`) };
  }
  if (envelope.apiVersion !== 'admission.k8s.io/v1') {
    return {
      refusal: refuse(
        uid,
        400,
        `apiVersion: AdmissionReview ${JSON.stringify(envelope.apiVersion ?? null).slice(0, 64)} is not supported; configure admissionReviewVersions: [v1]`,
      ),
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
  injectionRequests.inc();
  const out = injectionReview(body, namespaceLabels, config);
  if (!out.response.allowed) injectionFailure.inc();
  else if (out.response.patch) injectionSuccess.inc();
  else injectionSkip.inc();
  return out;
}

function injectionReview(
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
  // A pod the API server would refuse anyway is refused here with the field named, never injected half-way.
  const problem = podShapeProblem(pod);
  if (problem) return refuse(request.uid, 400, `request.object is not a valid Pod: ${problem}`);
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

/**
 * Istio's APIs, validated as istiod's validator does (istio/validation): refused with every problem,
 * each naming its field; admitted with warnings for deprecated forms. Other kinds and operations pass.
 */
export function reviewValidation(body: unknown): AdmissionReviewOut {
  const read = readRequest(body);
  if ('refusal' in read) return read.refusal;
  const { request } = read;
  const group = request.kind?.group ?? '';
  const apiVersion = `${group}/${request.kind?.version ?? ''}`;
  if ((request.operation !== 'CREATE' && request.operation !== 'UPDATE') || !validatesKind(apiVersion, request.kind?.kind)) {
    return review({ uid: request.uid, allowed: true });
  }
  const object = request.object;
  if (!object || typeof object !== 'object' || Array.isArray(object)) {
    return refuse(request.uid, 400, `request.object is not a ${request.kind?.kind ?? 'Kubernetes'} object`);
  }
  // Wrong JSON types are refused first, naming the field, as the API server's schema check would.
  const structural = structuralProblems(apiVersion, request.kind?.kind ?? '', (object as { spec?: unknown }).spec);
  if (structural.problems.length > 0) {
    validationFailed.inc({ group, version: request.kind?.version ?? '', resource: pluralOf(request), reason: 'invalid' });
    return review({
      uid: request.uid,
      allowed: false,
      status: {
        code: 422,
        reason: 'Invalid',
        message: `${request.kind?.kind}${nameOf(request)} is invalid: ${structural.problems.join('; ')}`,
      },
    });
  }
  let issues;
  try {
    // The request's kind decides which validator runs, whatever the object claims to be.
    issues = validateIstioObject({ ...object, spec: structural.spec, apiVersion, kind: request.kind?.kind });
  } catch (error) {
    return refuse(request.uid, 500, `Weft could not validate this object: ${error instanceof Error ? error.message : String(error)}`);
  }
  const warnings = warningsOf(issues).map(describeIssue);
  const errors = errorsOf(issues);
  const resource = { group, version: request.kind?.version ?? '', resource: pluralOf(request) };
  if (errors.length > 0) {
    validationFailed.inc({ ...resource, reason: 'invalid' });
    return review({
      uid: request.uid,
      allowed: false,
      status: { code: 422, reason: 'Invalid', message: `${request.kind?.kind}${nameOf(request)} is invalid: ${refusalMessage(errors)}` },
      ...(warnings.length > 0 ? { warnings } : {}),
    });
  }
  validationPassed.inc(resource);
  return review({ uid: request.uid, allowed: true, ...(warnings.length > 0 ? { warnings } : {}) });
}

/** Labelled as istiod's validator labels them: the plural resource (virtualservices). */
function pluralOf(request: AdmissionRequestIn): string {
  const resource = (request as { resource?: { resource?: unknown } }).resource?.resource;
  return typeof resource === 'string' ? resource : (request.kind?.kind?.toLowerCase() ?? '');
}

const nameOf = (request: AdmissionRequestIn): string => (typeof request.name === 'string' && request.name ? ` ${request.name}` : '');
