import { errorsOf, validateIstioObject } from './validate-istio-object.js';

const sidecar = (spec: Record<string, unknown>) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Sidecar',
  metadata: { name: 'default' },
  spec,
});

describe('Sidecar validation', () => {
  it.each([
    ['namespace/host egress hosts', { egress: [{ hosts: ['./*', 'istio-system/*', '*/api.example.com', '~/*.internal.example.com'] }] }],
    [
      'one port-less catch-all last',
      { egress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, hosts: ['prod-us1/*'] }, { hosts: ['istio-system/*'] }] },
    ],
  ])('accepts %s', (_name, spec) => {
    expect(errorsOf(validateIstioObject(sidecar(spec)))).toEqual([]);
  });

  it.each([
    [
      'two egress listeners without a port',
      { egress: [{ hosts: ['./*'] }, { hosts: ['istio-system/*'] }] },
      'spec.egress[0].port',
      'must be the last one',
    ],
    [
      'three egress listeners without a port',
      { egress: [{ hosts: ['./*'] }, { hosts: ['a/*'] }, { hosts: ['b/*'] }] },
      'spec.egress[1].port',
      'only one egress listener may leave out the port',
    ],
    [
      'a host without a namespace',
      { egress: [{ hosts: ['api.example.com'] }] },
      'spec.egress[0].hosts[0]',
      'must be of form namespace/dnsName',
    ],
    ['a short host name', { egress: [{ hosts: ['prod/reviews'] }] }, 'spec.egress[0].hosts[0]', 'short names'],
    ['a bad namespace', { egress: [{ hosts: ['Prod_1/*'] }] }, 'spec.egress[0].hosts[0]', 'invalid namespace'],
    ['no hosts', { egress: [{ port: { number: 80, protocol: 'HTTP' } }] }, 'spec.egress[0].hosts', 'at least one host'],
    ['an empty Sidecar', {}, 'spec', 'empty Sidecar'],
    [
      'an ingress listener without a port',
      { ingress: [{ defaultEndpoint: '127.0.0.1:8080' }] },
      'spec.ingress[0].port',
      'port is required',
    ],
    [
      'a bad defaultEndpoint',
      { ingress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '10.0.0.1:8080' }] },
      'spec.ingress[0].defaultEndpoint',
      'must be 127.0.0.1',
    ],
  ])('refuses %s', (_name, spec, field, message) => {
    expect(errorsOf(validateIstioObject(sidecar(spec)))).toContainEqual({ field, message: expect.stringContaining(message) });
  });
});
