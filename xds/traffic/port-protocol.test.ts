// A port's protocol as istiod decides it: Istio's own cases
// (pkg/config/kube/conversion_test.go) and the port-name prefixes its docs list.
import { kubernetesPortProtocol, listenerProtocol, parseProtocol, portProtocol } from './port-protocol.js';

describe('port protocol', () => {
  it.each([
    ['resolves empty', { port: 0 }, 'UnsupportedProtocol'],
    ['resolves from protocol directly', { port: 0, protocol: 'UDP' }, 'UDP'],
    ['resolves from port name', { port: 0, name: 'http-something' }, 'HTTP'],
    ['prefers appProto over portName', { port: 0, name: 'http-something', appProtocol: 'https' }, 'HTTPS'],
    ['resolves from appProto', { port: 0, name: 'something-httpx', appProtocol: 'https' }, 'HTTPS'],
    ['resolves grpc-web', { port: 0, name: 'grpc-web-x' }, 'GRPC-Web'],
    ['makes sure grpc-web is not resolved incorrectly', { port: 0, name: 'grpcweb-x' }, 'UnsupportedProtocol'],
    ['resolves based on known ports', { port: 3306, name: 'random-name' }, 'TCP'],
    ['standard app protocol', { port: 3306, name: 'random-name', appProtocol: 'kubernetes.io/h2c' }, 'HTTP2'],
  ] as const)("Istio's case: %s", (_name, port, expected) => {
    expect(kubernetesPortProtocol(port)).toBe(expected);
  });

  it.each([
    ['http', 'HTTP'],
    ['http-web', 'HTTP'],
    ['HTTP2-api', 'HTTP2'],
    ['grpc', 'GRPC'],
    ['grpc-api', 'GRPC'],
    ['grpc-web', 'GRPC-Web'],
    ['https-admin', 'HTTPS'],
    ['tls-db', 'TLS'],
    ['tcp', 'TCP'],
    ['tcp-postgres', 'TCP'],
    ['mongo-main', 'Mongo'],
    ['mysql', 'MySQL'],
    ['redis-cache', 'Redis'],
    ['udp-dns', 'UDP'],
    ['http_proxy', 'HTTP_PROXY'],
    ['web', 'UnsupportedProtocol'],
    ['httpx', 'UnsupportedProtocol'],
    ['', 'UnsupportedProtocol'],
  ] as const)('port name %j is %s', (name, expected) => {
    expect(kubernetesPortProtocol({ port: 8080, name, protocol: 'TCP' })).toBe(expected);
  });

  it('reads appProtocol before the name, and the undeclared well-known ports (25, 53, 3306, 27017) as TCP', () => {
    expect(kubernetesPortProtocol({ port: 5432, name: 'db', protocol: 'TCP', appProtocol: 'tcp' })).toBe('TCP');
    expect(kubernetesPortProtocol({ port: 80, name: 'tcp-web', protocol: 'TCP', appProtocol: 'http' })).toBe('HTTP');
    expect(kubernetesPortProtocol({ port: 80, name: 'web', protocol: 'TCP', appProtocol: 'kubernetes.io/ws' })).toBe('HTTP');
    expect(kubernetesPortProtocol({ port: 443, name: 'web', protocol: 'TCP', appProtocol: 'kubernetes.io/wss' })).toBe('HTTPS');
    for (const port of [25, 53, 3306, 27017]) expect(kubernetesPortProtocol({ port, protocol: 'TCP' })).toBe('TCP');
    // A declared name wins over the well-known port; UDP stays UDP whatever it is called.
    expect(kubernetesPortProtocol({ port: 3306, name: 'http', protocol: 'TCP' })).toBe('HTTP');
    expect(kubernetesPortProtocol({ port: 53, name: 'tcp-dns', protocol: 'UDP' })).toBe('UDP');
  });

  it("takes a ServiceEntry port's declared protocol, any case; none declared is detected", () => {
    expect(portProtocol({ hostname: 'api.example.com' }, { name: 'https', port: 443, protocol: 'TLS' })).toBe('TLS');
    expect(portProtocol({ hostname: 'db.example.com' }, { name: 'http-looking', port: 27018, protocol: 'MONGO' })).toBe('Mongo');
    expect(portProtocol({ hostname: 'x.example.com' }, { name: 'http', port: 80, protocol: '' })).toBe('UnsupportedProtocol');
    // A Kubernetes Service's `protocol` is L4: the name decides.
    expect(portProtocol({}, { name: 'http', port: 80, protocol: 'TCP' })).toBe('HTTP');
    expect(parseProtocol('Grpc-Web')).toBe('GRPC-Web');
  });

  it('maps protocols to listeners: HTTP, TCP, detection for undeclared, none for UDP', () => {
    expect(['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-Web'].map((p) => listenerProtocol(parseProtocol(p)))).toEqual(
      Array(5).fill('HTTP'),
    );
    expect(['TCP', 'HTTPS', 'TLS', 'Mongo', 'Redis', 'MySQL'].map((p) => listenerProtocol(parseProtocol(p)))).toEqual(Array(6).fill('TCP'));
    expect(listenerProtocol('UnsupportedProtocol')).toBe('AUTO');
    expect(listenerProtocol('UDP')).toBe('NONE');
  });
});
