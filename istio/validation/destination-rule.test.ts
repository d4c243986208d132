import { errorsOf, validateIstioObject, warningsOf } from './validate-istio-object.js';

const dr = (spec: Record<string, unknown>) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews' },
  spec,
});

describe('DestinationRule validation', () => {
  it.each([
    [
      'subsets with labels',
      {
        host: 'reviews',
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
    ],
    [
      'MUTUAL with certificates',
      { host: 'db.example.com', trafficPolicy: { tls: { mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem' } } },
    ],
    ['MUTUAL with credentialName', { host: 'db.example.com', trafficPolicy: { tls: { mode: 'MUTUAL', credentialName: 'client-cert' } } }],
    ['one consistent hash key', { host: 'reviews', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } }],
    ['tcp idleTimeout 0s (off)', { host: 'reviews', trafficPolicy: { connectionPool: { tcp: { idleTimeout: '0s' } } } }],
  ])('accepts %s', (_name, spec) => {
    expect(errorsOf(validateIstioObject(dr(spec)))).toEqual([]);
  });

  it.each([
    [
      'a subset name that is not a DNS label',
      { host: 'reviews', subsets: [{ name: 'v_1' }] },
      'spec.subsets[0].name',
      'is not a DNS-1123 label',
    ],
    [
      'duplicate subset names',
      { host: 'reviews', subsets: [{ name: 'v1' }, { name: 'v1' }] },
      'spec.subsets[1].name',
      'duplicate subset name "v1"',
    ],
    [
      'MUTUAL without a client certificate',
      { host: 'db', trafficPolicy: { tls: { mode: 'MUTUAL' } } },
      'spec.trafficPolicy.tls.clientCertificate',
      'client certificate required',
    ],
    [
      'MUTUAL without a private key',
      { host: 'db', trafficPolicy: { tls: { mode: 'MUTUAL', clientCertificate: '/c.pem' } } },
      'spec.trafficPolicy.tls.privateKey',
      'private key required',
    ],
    [
      'MUTUAL without certificates in a subset port policy',
      { host: 'db', subsets: [{ name: 'v1', trafficPolicy: { portLevelSettings: [{ port: { number: 443 }, tls: { mode: 'MUTUAL' } }] } }] },
      'spec.subsets[0].trafficPolicy.portLevelSettings[0].tls.clientCertificate',
      'client certificate required',
    ],
    [
      'two consistent hash keys',
      { host: 'reviews', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user', useSourceIp: true } } } },
      'spec.trafficPolicy.loadBalancer.consistentHash',
      'only one hash key can be set, found httpHeaderName, useSourceIp',
    ],
    ['a bad host', { host: 'reviews..svc' }, 'spec.host', 'invalid'],
    ['an empty traffic policy', { host: 'reviews', trafficPolicy: {} }, 'spec.trafficPolicy', 'at least one field'],
    [
      'a bad outlier interval',
      { host: 'reviews', trafficPolicy: { outlierDetection: { interval: '0s' } } },
      'spec.trafficPolicy.outlierDetection.interval',
      'at least 1ms',
    ],
    [
      'maxEjectionPercent above 100',
      { host: 'reviews', trafficPolicy: { outlierDetection: { maxEjectionPercent: 101 } } },
      'spec.trafficPolicy.outlierDetection.maxEjectionPercent',
      '0..100',
    ],
    [
      'a maglev table that is not prime',
      { host: 'reviews', trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 1000 } } } } },
      'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize',
      'prime',
    ],
  ])('refuses %s', (_name, spec, field, message) => {
    expect(errorsOf(validateIstioObject(dr(spec)))).toContainEqual({ field, message: expect.stringContaining(message) });
  });

  it('warns about deprecated outlier consecutiveErrors', () => {
    expect(
      warningsOf(validateIstioObject(dr({ host: 'reviews', trafficPolicy: { outlierDetection: { consecutiveErrors: 5 } } }))).map(
        (w) => w.field,
      ),
    ).toEqual(['spec.trafficPolicy.outlierDetection.consecutiveErrors']);
  });
});
