import { reviewValidation } from './admission-review.js';

const request = (kind: { group: string; version: string; kind: string }, object: unknown, operation = 'CREATE') => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid: 'u1', kind, name: 'reviews', namespace: 'shop', operation, object },
});
const vsKind = { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' };
const split = (a: number, b: number) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews' },
  spec: {
    hosts: ['reviews'],
    http: [
      {
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: a },
          { destination: { host: 'reviews', subset: 'v2' }, weight: b },
        ],
      },
    ],
  },
});

describe('reviewValidation', () => {
  it('admits a valid VirtualService', () => {
    expect(reviewValidation(request(vsKind, split(50, 50))).response).toEqual({ uid: 'u1', allowed: true });
  });

  it('admits weights that do not sum to 100 (relative since Istio 1.15: 60/60 splits evenly)', () => {
    expect(reviewValidation(request(vsKind, split(60, 60))).response).toEqual({ uid: 'u1', allowed: true });
  });

  it('refuses an invalid one with every problem and its field path', () => {
    const bad = split(0, 0);
    (bad.spec.http[0] as Record<string, unknown>)['timeout'] = '0s';
    expect(reviewValidation(request(vsKind, bad)).response).toEqual({
      uid: 'u1',
      allowed: false,
      status: {
        code: 422,
        reason: 'Invalid',
        message:
          'VirtualService reviews is invalid: spec.http[0].route: total destination weight = 0; spec.http[0].timeout: duration "0s" must be at least 1ms',
      },
    });
  });

  it('admits deprecated forms with warnings', () => {
    const old = { ...split(50, 50), apiVersion: 'networking.istio.io/v1alpha3' };
    expect(reviewValidation(request({ ...vsKind, version: 'v1alpha3' }, old)).response).toEqual({
      uid: 'u1',
      allowed: true,
      warnings: ['apiVersion: networking.istio.io/v1alpha3 VirtualService is deprecated; use networking.istio.io/v1'],
    });
  });

  it('validates updates too, and lets deletes and other kinds pass', () => {
    expect(reviewValidation(request(vsKind, split(0, 0), 'UPDATE')).response.allowed).toBe(false);
    expect(reviewValidation(request(vsKind, split(0, 0), 'DELETE')).response.allowed).toBe(true);
    expect(reviewValidation(request({ group: 'telemetry.istio.io', version: 'v1', kind: 'Telemetry' }, { spec: 1 })).response.allowed).toBe(
      true,
    );
    expect(reviewValidation(request({ group: '', version: 'v1', kind: 'ConfigMap' }, {})).response.allowed).toBe(true);
  });

  it('refuses malformed reviews and objects clearly, never throwing', () => {
    expect(reviewValidation({ kind: 'Nope' }).response).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(reviewValidation(null).response).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(
      reviewValidation({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }).response.status?.code,
    ).toBe(400);
    expect(reviewValidation(request(vsKind, 'not an object')).response).toEqual({
      uid: 'u1',
      allowed: false,
      status: { code: 400, message: 'request.object is not a VirtualService object' },
    });
    for (const object of [{ spec: 'x' }, { spec: { http: [{ route: 'x', match: [1] }] } }, { spec: { hosts: [null, 3] } }, {}]) {
      expect(() => reviewValidation(request(vsKind, object))).not.toThrow();
      expect(reviewValidation(request(vsKind, object)).response.allowed).toBe(false);
    }
  });
});
