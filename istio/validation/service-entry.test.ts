import { errorsOf, validateIstioObject } from './validate-istio-object.js';

const se = (spec: Record<string, unknown>) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name: 'external' },
  spec,
});
const ports = [{ number: 443, name: 'https', protocol: 'TLS' }];

describe('ServiceEntry validation', () => {
  it.each([
    [
      'STATIC with IP endpoints',
      {
        hosts: ['mymongodb.somedomain'],
        addresses: ['192.192.192.192/24'],
        ports,
        resolution: 'STATIC',
        endpoints: [{ address: '2.2.2.2' }],
      },
    ],
    [
      'STATIC with a workloadSelector',
      { hosts: ['vm.example.com'], ports, resolution: 'STATIC', workloadSelector: { labels: { app: 'vm' } } },
    ],
    [
      'DNS with hostname endpoints',
      { hosts: ['api.example.com'], ports, resolution: 'DNS', endpoints: [{ address: 'us.api.example.com' }] },
    ],
  ])('accepts %s', (_name, spec) => {
    expect(errorsOf(validateIstioObject(se(spec)))).toEqual([]);
  });

  it.each([
    [
      'STATIC without endpoints',
      { hosts: ['db.example.com'], ports, resolution: 'STATIC' },
      'spec.endpoints',
      'resolution STATIC needs endpoints',
    ],
    [
      'STATIC with a hostname endpoint',
      { hosts: ['db.example.com'], ports, resolution: 'STATIC', endpoints: [{ address: 'db1.example.com' }] },
      'spec.endpoints[0].address',
      'is not an IP address',
    ],
    [
      'endpoints with resolution NONE',
      { hosts: ['db.example.com'], ports, resolution: 'NONE', endpoints: [{ address: '1.1.1.1' }] },
      'spec.endpoints',
      'resolution NONE',
    ],
    ['host *', { hosts: ['*'], ports, resolution: 'DNS' }, 'spec.hosts[0]', 'invalid host *'],
    [
      'duplicate port numbers',
      { hosts: ['a.example.com'], ports: [...ports, { number: 443, name: 'tls', protocol: 'TLS' }], resolution: 'DNS' },
      'spec.ports[1].number',
      'already defined',
    ],
    [
      'an endpoint port no service port names',
      { hosts: ['a.example.com'], ports, resolution: 'STATIC', endpoints: [{ address: '1.1.1.1', ports: { grpc: 9000 } }] },
      'spec.endpoints[0].ports[grpc]',
      'not defined',
    ],
    [
      'a CIDR with DNS resolution',
      { hosts: ['a.example.com'], addresses: ['10.0.0.0/8'], ports, resolution: 'DNS' },
      'spec.addresses',
      'CIDR addresses',
    ],
  ])('refuses %s', (_name, spec, field, message) => {
    expect(errorsOf(validateIstioObject(se(spec)))).toContainEqual({ field, message: expect.stringContaining(message) });
  });
});
