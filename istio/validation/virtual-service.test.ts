import { errorsOf, validateIstioObject, warningsOf } from './validate-istio-object.js';

const vs = (spec: Record<string, unknown>, apiVersion = 'networking.istio.io/v1') => ({
  apiVersion,
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec,
});
const route = (extra: Record<string, unknown> = {}) => ({ route: [{ destination: { host: 'reviews' } }], ...extra });
const split = (...weights: number[]) => ({
  route: weights.map((weight, i) => ({ destination: { host: 'reviews', subset: `v${i + 1}` }, weight })),
});

describe('VirtualService validation', () => {
  it.each([
    ['a weighted split that sums to 100', { hosts: ['reviews'], http: [split(75, 25)] }],
    ['one destination without a weight', { hosts: ['reviews'], http: [route()] }],
    ['a delegate (no hosts)', { http: [route()] }],
    ['* bound to a gateway', { hosts: ['*'], gateways: ['shop/ingress'], http: [route()] }],
    ['durations in Go form', { hosts: ['reviews'], http: [route({ timeout: '1.5s', retries: { attempts: 3, perTryTimeout: '100ms' } })] }],
    ['an RE2 regex with a named group', { hosts: ['reviews'], http: [route({ match: [{ uri: { regex: '^/api/(?P<v>v[0-9]+)/.*' } }] })] }],
    ['an empty URI prefix', { hosts: ['reviews'], http: [route({ match: [{ uri: { prefix: '' } }] })] }],
    ['a gRPC abort', { hosts: ['reviews'], http: [route({ fault: { abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 10 } } } })] }],
    ['weighted TCP routes', { hosts: ['db'], tcp: [{ match: [{ port: 27017 }], ...split(60, 40) }] }],
    // Istio 1.15+: weights are relative, so these split 1:1, 5:4 and 1:1.
    ['weights summing to more than 100', { hosts: ['reviews'], http: [split(60, 60)] }],
    ['weights summing to less than 100', { hosts: ['reviews'], http: [split(50, 40)] }],
    ['TCP weights not summing to 100', { hosts: ['db'], tcp: [split(30, 30)] }],
    ['a split with one zero weight', { hosts: ['reviews'], http: [split(100, 0)] }],
    ['one destination with weight 0', { hosts: ['reviews'], http: [split(0)] }],
  ])('accepts %s', (_name, spec) => {
    expect(errorsOf(validateIstioObject(vs(spec)))).toEqual([]);
  });

  it.each([
    ['no weights on a split', { hosts: ['reviews'], http: [split(0, 0)] }, 'spec.http[0].route', 'total destination weight = 0'],
    ['no weights on a TCP split', { hosts: ['db'], tcp: [split(0, 0)] }, 'spec.tcp[0].route', 'total destination weight = 0'],
    [
      'a negative weight',
      { hosts: ['reviews'], http: [split(110, -10)] },
      'spec.http[0].route[1].weight',
      'weight -10 must not be negative',
    ],
    [
      'a negative weight on the only destination',
      { hosts: ['reviews'], http: [split(-1)] },
      'spec.http[0].route[0].weight',
      'weight -1 must not be negative',
    ],
    ['a malformed timeout', { hosts: ['reviews'], http: [route({ timeout: '1.5 seconds' })] }, 'spec.http[0].timeout', 'is not a duration'],
    ['a zero timeout', { hosts: ['reviews'], http: [route({ timeout: '0s' })] }, 'spec.http[0].timeout', 'must be at least 1ms'],
    [
      'a sub-millisecond timeout',
      { hosts: ['reviews'], http: [route({ timeout: '500us' })] },
      'spec.http[0].timeout',
      'must be at least 1ms',
    ],
    [
      'a zero perTryTimeout',
      { hosts: ['reviews'], http: [route({ retries: { attempts: 2, perTryTimeout: '0ms' } })] },
      'spec.http[0].retries.perTryTimeout',
      'must be at least 1ms',
    ],
    [
      'negative retry attempts',
      { hosts: ['reviews'], http: [route({ retries: { attempts: -1 } })] },
      'spec.http[0].retries.attempts',
      'must not be negative',
    ],
    [
      'a fault percentage above 100',
      { hosts: ['reviews'], http: [route({ fault: { delay: { fixedDelay: '5s', percentage: { value: 150 } } } })] },
      'spec.http[0].fault.delay.percentage.value',
      'not in range 0..100',
    ],
    [
      'an abort without a status',
      { hosts: ['reviews'], http: [route({ fault: { abort: { percentage: { value: 10 } } } })] },
      'spec.http[0].fault.abort',
      'abort needs httpStatus or grpcStatus',
    ],
    [
      'an invalid abort status',
      { hosts: ['reviews'], http: [route({ fault: { abort: { httpStatus: 700 } } })] },
      'spec.http[0].fault.abort.httpStatus',
      'HTTP status 700 is not in range 200-599',
    ],
    [
      'an invalid direct response status',
      { hosts: ['reviews'], http: [{ directResponse: { status: 99 } }] },
      'spec.http[0].directResponse.status',
      'not in range 200-599',
    ],
    [
      'a lookahead regex',
      { hosts: ['reviews'], http: [route({ match: [{ uri: { regex: '^/(?!admin).*' } }] })] },
      'spec.http[0].match[0].uri.regex',
      'lookahead and lookbehind are not supported by RE2',
    ],
    [
      'a backreference',
      { hosts: ['reviews'], http: [route({ match: [{ headers: { 'x-id': { regex: '(a)\\1' } } }] })] },
      'spec.http[0].match[0].headers[x-id].regex',
      'backreference',
    ],
    [
      'a regex that does not compile',
      { hosts: ['reviews'], http: [route({ match: [{ uri: { regex: '([a-z]+' } }] })] },
      'spec.http[0].match[0].uri.regex',
      'RE2',
    ],
    [
      'exact and prefix in one StringMatch',
      { hosts: ['reviews'], http: [route({ match: [{ uri: { exact: '/a', prefix: '/b' } }] })] },
      'spec.http[0].match[0].uri',
      'only one of exact, prefix or regex may be set, found exact and prefix',
    ],
    ['an empty host', { hosts: [''], http: [route()] }, 'spec.hosts[0]', 'host must not be empty'],
    ['* bound to the mesh', { hosts: ['*'], http: [route()] }, 'spec.hosts[0]', 'wildcard host * is not allowed'],
    ['* bound to the mesh gateway by name', { hosts: ['*'], gateways: ['mesh'], http: [route()] }, 'spec.hosts[0]', 'wildcard host *'],
    [
      'a subset that is not a DNS label',
      { hosts: ['reviews'], http: [route({ route: [{ destination: { host: 'reviews', subset: 'v1.0' } }] })] },
      'spec.http[0].route[0].destination.subset',
      'is not a DNS-1123 label',
    ],
    ['no routes at all', { hosts: ['reviews'] }, 'spec', 'http, tcp or tls must be provided'],
    [
      'route and redirect together',
      { hosts: ['reviews'], http: [route({ redirect: { uri: '/v2' } })] },
      'spec.http[0]',
      'both route and redirect',
    ],
  ])('refuses %s', (_name, spec, field, message) => {
    expect(errorsOf(validateIstioObject(vs(spec)))).toContainEqual({ field, message: expect.stringContaining(message) });
  });

  it('reports every problem, not just the first', () => {
    const errors = errorsOf(validateIstioObject(vs({ hosts: ['*'], http: [split(0, 0), route({ timeout: '0s' })] })));
    expect(errors.map((e) => e.field)).toEqual(['spec.hosts[0]', 'spec.http[0].route', 'spec.http[1].timeout']);
  });

  it('warns about deprecated forms without refusing them', () => {
    const issues = validateIstioObject(
      vs({ hosts: ['reviews'], http: [route({ corsPolicy: { allowOrigin: ['https://example.com'] } })] }, 'networking.istio.io/v1alpha3'),
    );
    expect(errorsOf(issues)).toEqual([]);
    expect(warningsOf(issues).map((w) => w.field)).toEqual(['apiVersion', 'spec.http[0].corsPolicy.allowOrigin']);
  });

  it('does not check references to other objects (unknown subsets and hosts are for status)', () => {
    expect(
      errorsOf(
        validateIstioObject(
          vs({ hosts: ['reviews'], http: [route({ route: [{ destination: { host: 'nowhere.example.com', subset: 'v9' } }] })] }),
        ),
      ),
    ).toEqual([]);
  });

  it('never throws on malformed specs', () => {
    for (const spec of [
      { hosts: 'reviews', http: 'x' },
      { http: [null, 1, 'x'] },
      { http: [{ route: [null, { destination: null, weight: 'x' }] }] },
      { tcp: [{ route: {} }] },
    ]) {
      expect(() => validateIstioObject(vs(spec as Record<string, unknown>))).not.toThrow();
    }
  });
});
