import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { gatewayDeployment } from '../cdk8s/gateway-api-deployment.js';
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
    // Made by a gateway deployment controller from a Gateway's listeners, not by the user (Istio's check).
    expect(
      portNameFindings({ labels: { 'gateway.istio.io/managed': 'istio.io-gateway-controller' } }, { ports: [{ port: 8080 }] }),
    ).toEqual([]);
    expect(
      portNameFindings({ labels: { 'gateway.istio.io/managed': 'weft.dev-gateway-controller' } }, { ports: [{ port: 8080 }] }),
    ).toEqual([]);
    expect(portNameFindings({ labels: { 'gateway.istio.io/managed': 'someone-else' } }, { ports: [{ port: 8080 }] })).toHaveLength(1);
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

describe('IST0107 and the objects a Gateway deployment controller makes', () => {
  interface Rendered {
    kind: string;
    metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec?: { template?: { metadata?: Rendered['metadata'] } };
  }
  // The Service, Deployment and pod of a Gateway annotated `networking.istio.io/service-type: ClusterIP`,
  // the annotation copied onto each: as Istio's deployment controller renders them, and as Weft's does.
  const istioRendered = parseAllDocuments(
    readFileSync(join(import.meta.dirname, '..', 'cdk8s', 'testdata', 'istio-deployment', 'cluster-ip.yaml'), 'utf8'),
  )
    .map((d) => d.toJS() as Rendered | null)
    .filter((o): o is Rendered => o !== null);
  const weftRendered = (() => {
    const result = gatewayDeployment(
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: 'edge', namespace: 'shop', annotations: { 'networking.istio.io/service-type': 'ClusterIP' } },
        spec: { gatewayClassName: 'weft', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
      },
      {
        controller: 'weft.dev/gateway-controller',
        image: 'docker.io/istio/proxyv2:1.28.1',
        proxyLogLevel: 'warning',
        discoveryAddress: 'weftd.weft-system.svc:15012',
        trustDomain: 'cluster.local',
        revision: '',
        resources: {},
      },
    );
    if (!('objects' in result)) throw new Error(JSON.stringify(result));
    return result.objects as unknown as Rendered[];
  })();
  // What annotations.K8sAnalyzer reads: the Service, the Deployment, and a pod made from the template.
  const analyzed = (objects: Rendered[]) =>
    objects.flatMap((o) =>
      o.kind === 'Deployment'
        ? [
            { kind: 'Deployment', metadata: o.metadata },
            { kind: 'Pod', metadata: o.spec?.template?.metadata ?? {} },
          ]
        : o.kind === 'Service'
          ? [{ kind: 'Service', metadata: o.metadata }]
          : [],
    );

  it.each([
    ["Istio's", istioRendered],
    ["Weft's", weftRendered],
  ])('does not call a Gateway annotation copied by %s controller misplaced', (_, objects) => {
    const targets = analyzed(objects);
    expect(targets.map((t) => t.kind).sort()).toEqual(['Deployment', 'Pod', 'Service']);
    for (const { kind, metadata } of targets) {
      expect(metadata.annotations?.['networking.istio.io/service-type']).toBe('ClusterIP');
      expect(annotationFindings(kind, metadata)).toEqual([]);
    }
  });

  it("still reports it on a user's own Service, and other misplaced annotations on managed objects", () => {
    expect(annotationFindings('Service', { annotations: { 'networking.istio.io/service-type': 'ClusterIP' } })).toEqual([
      {
        code: 'IST0107',
        name: 'MisplacedAnnotation',
        level: 'Warning',
        message: 'Misplaced annotation: networking.istio.io/service-type can only be applied to Gateway',
      },
    ]);
    const managed = { 'gateway.istio.io/managed': 'weft.dev-gateway-controller' };
    expect(annotationFindings('Service', { labels: managed, annotations: { 'sidecar.istio.io/inject': 'false' } })).toHaveLength(1);
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
