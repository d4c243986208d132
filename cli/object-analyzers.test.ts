import { annotationFindings, injectionLabelFindings, portNameFindings } from './object-analyzers.js';
import { analyzersAsString, analyzers } from './mesh-analysis.js';

describe('IST0118 PortNameIsNotUnderNamingConvention (Istio’s service-port-name testdata)', () => {
  it.each([
    [
      'unnamed TCP ports',
      [
        { protocol: 'TCP', port: 8080 },
        { protocol: 'TCP', port: 8081 },
      ],
      2,
    ],
    ['a name with no protocol', [{ name: 'foo', protocol: 'TCP', port: 8080 }], 1],
    ['tcp-foo', [{ name: 'tcp-foo', protocol: 'TCP', port: 8080 }], 0],
    ['appProtocol over the name', [{ name: 'default', appProtocol: 'http', port: 80 }], 0],
    ['grpc-web prefix', [{ name: 'grpc-web-api', port: 80 }], 0],
    ['HTTP2 in capitals', [{ name: 'HTTP2', port: 80 }], 0],
    ['UDP', [{ name: 'dns', protocol: 'UDP', port: 53 }], 0],
    ['a well-known port', [{ name: 'db', port: 3306 }], 0],
    ['kubernetes.io/h2c', [{ name: 'x', appProtocol: 'kubernetes.io/h2c', port: 80 }], 0],
  ])('%s', (_, ports, count) => {
    expect(portNameFindings({ name: 's' }, { ports })).toHaveLength(count);
  });
  it('skips Istio’s own Services and ExternalName Services, and says it as istioctl does', () => {
    expect(portNameFindings({ labels: { istio: 'pilot' } }, { ports: [{ port: 8080 }] })).toEqual([]);
    expect(portNameFindings({}, { type: 'ExternalName', ports: [{ port: 8080 }] })).toEqual([]);
    expect(portNameFindings({}, { ports: [{ name: 'foo', port: 8080, targetPort: 9090 }] })).toEqual([
      {
        code: 'IST0118',
        name: 'PortNameIsNotUnderNamingConvention',
        level: 'Info',
        message: "Port name foo (port: 8080, targetPort: 9090) doesn't follow the naming convention of Istio port.",
      },
    ]);
  });
});

describe('IST0108 UnknownAnnotation and IST0107 MisplacedAnnotation', () => {
  it('reports an unknown *.istio.io annotation, and one on the wrong kind', () => {
    expect(annotationFindings('Pod', { annotations: { 'sidecar.istio.io/proxyCPUs': '1', 'sidecar.istio.io/proxyCPU': '1' } })).toEqual([
      { code: 'IST0108', name: 'UnknownAnnotation', level: 'Warning', message: 'Unknown annotation: sidecar.istio.io/proxyCPUs' },
    ]);
    expect(annotationFindings('Service', { annotations: { 'sidecar.istio.io/inject': 'false' } })).toEqual([
      {
        code: 'IST0107',
        name: 'MisplacedAnnotation',
        level: 'Warning',
        message: 'Misplaced annotation: sidecar.istio.io/inject can only be applied to Pod',
      },
    ]);
  });
  it('ignores other domains and what istiod sets itself', () => {
    expect(
      annotationFindings('Pod', {
        annotations: {
          'example.com/x': '1',
          'sidecar.istio.io/status': '{}',
          'istio.io/rev': 'default',
          'galley.istio.io/analyze-suppress': 'IST0103',
        },
      }),
    ).toEqual([]);
  });
});

describe('IST0123 NamespaceMultipleInjectionLabels', () => {
  it('reports istio-injection=enabled with istio.io/rev, as istioctl does', () => {
    expect(injectionLabelFindings({ labels: { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' } }, 'weft-injection')).toEqual([
      {
        code: 'IST0123',
        name: 'NamespaceMultipleInjectionLabels',
        level: 'Warning',
        message:
          'The namespace has more than one type of injection labels [istio-injection=enabled istio.io/rev=canary], which may lead to undefined behavior. Make sure only one injection label exists.',
      },
    ]);
    expect(injectionLabelFindings({ labels: { 'istio.io/rev': 'canary' } }, 'weft-injection')).toEqual([]);
  });
});

describe('weft analyze --list-analyzers', () => {
  it('lists every analyzer as istioctl analyze -L does, sorted, with the codes it reports', () => {
    const text = analyzersAsString();
    expect(text.split('\n').filter((l) => l.startsWith('* '))).toEqual([...analyzers.map((a) => `* ${a.name}:`)].sort());
    expect(text).toContain(
      '* virtualservice.ConflictingMeshGatewayHostsAnalyzer:\n    Checks if multiple virtual services associated with the mesh gateway have conflicting hosts (IST0109)\n',
    );
    const codes = new Set(analyzers.flatMap((a) => a.codes));
    for (const code of [
      'IST0101',
      'IST0102',
      'IST0103',
      'IST0106',
      'IST0107',
      'IST0108',
      'IST0109',
      'IST0118',
      'IST0123',
      'IST0127',
      'IST0128',
      'IST0129',
      'IST0130',
      'IST0131',
    ])
      expect(codes).toContain(code);
  });
});
