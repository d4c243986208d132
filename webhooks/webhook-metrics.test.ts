import { registry } from '../lib/monitoring.js';
import { reviewInjection, reviewValidation } from './admission-review.js';
import { injectionConfigFromValues } from './injection/injection-config.js';

const review = (request: object) => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', ...request } });
const value = async (name: string, labels: Record<string, string> = {}) =>
  (await registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ??
  0;

describe("webhook metrics (named as Istio's)", () => {
  it('counts validation passes and refusals per resource', async () => {
    const vs = { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' };
    const resource = { group: 'networking.istio.io', version: 'v1', resource: 'virtualservices' };
    const object = (weight: number) => ({
      spec: {
        hosts: ['r'],
        http: [
          {
            route: [
              { destination: { host: 'r' }, weight },
              { destination: { host: 's' }, weight: 50 },
            ],
          },
        ],
      },
    });
    const before = { passed: await value('galley_validation_passed', resource), failed: await value('galley_validation_failed', resource) };
    reviewValidation(review({ kind: vs, resource, operation: 'CREATE', object: object(50) }));
    reviewValidation(review({ kind: vs, resource, operation: 'CREATE', object: object(-10) }));
    expect(await value('galley_validation_passed', resource)).toBe(before.passed + 1);
    expect(await value('galley_validation_failed', { ...resource, reason: 'invalid' })).toBe(before.failed + 1);
  });

  it('counts injection requests, skips and failures', async () => {
    const config = injectionConfigFromValues('{}', 'weft-system', true);
    const names = ['sidecar_injection_requests_total', 'sidecar_injection_skip_total', 'sidecar_injection_failure_total'];
    const before = await Promise.all(names.map((n) => value(n)));
    reviewInjection(review({ kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'UPDATE', object: {} }), () => ({}), config);
    reviewInjection(
      review({ kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: { spec: {} } }),
      () => ({}),
      config,
    );
    expect(await Promise.all(names.map((n) => value(n)))).toEqual([before[0]! + 2, before[1]! + 1, before[2]! + 1]);
  });
});
