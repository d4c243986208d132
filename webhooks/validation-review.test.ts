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
    expect(reviewValidation({ kind: 'Nope' }).response).toMatchObject({
      allowed: false,
      status: { code: 400, message: 'kind: expected AdmissionReview (admission.k8s.io/v1), got "Nope"' },
    });
    expect(reviewValidation(null).response).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(
      reviewValidation({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }).response.status?.code,
    ).toBe(400);
    expect(reviewValidation({ apiVersion: 7, kind: 'AdmissionReview', request: { uid: 'x' } }).response.status?.message).toBe(
      'apiVersion: AdmissionReview 7 is not supported; configure admissionReviewVersions: [v1]',
    );
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

  // Found by `make chaos` (testing/chaos): these reached the validators, which threw (`path.includes is not a function`).
  it("refuses wrong JSON types by the CRD's structural schema, naming each field, as the API server would", () => {
    const policy = { group: 'security.istio.io', version: 'v1', kind: 'AuthorizationPolicy' };
    const wrong = { spec: { rules: [{ to: [{ operation: { paths: [7] } }], from: [{ source: { principals: { a: 1 } } }] }] } };
    expect(reviewValidation(request(policy, wrong)).response).toEqual({
      uid: 'u1',
      allowed: false,
      status: {
        code: 422,
        reason: 'Invalid',
        message:
          'AuthorizationPolicy reviews is invalid: spec.rules[0].to[0].operation.paths[0]: must be of type string, got integer; spec.rules[0].from[0].source.principals: must be of type array, got object',
      },
    });
    const entry = { group: 'networking.istio.io', version: 'v1', kind: 'ServiceEntry' };
    expect(
      reviewValidation(request(entry, { spec: { hosts: ['a.example'], endpoints: [{ address: 10 }] } })).response.status?.message,
    ).toBe('ServiceEntry reviews is invalid: spec.endpoints[0].address: must be of type string, got integer');
    expect(reviewValidation(request(vsKind, { spec: { hosts: ['reviews', null] } })).response.status?.message).toBe(
      'VirtualService reviews is invalid: spec.hosts[1]: must not be null',
    );
    // A null field is dropped as the API server prunes it, and the rest is validated.
    expect(reviewValidation(request(vsKind, { ...split(50, 50), spec: { ...split(50, 50).spec, gateways: null } })).response.allowed).toBe(
      true,
    );
    expect(reviewValidation(request({ ...vsKind, version: 'v9' }, split(50, 50))).response.status?.message).toMatch(
      /^VirtualService reviews is invalid: request.kind.version: "v9" is not a served version of VirtualService/,
    );
  });
});
