// No silent drops (#19 item 7): every Istio object, or part of one, that Weft
// cannot apply is reported twice, in the same words: on the object's status (what
// weftd writes: xds/traffic/config-analysis.ts analyzeAll over the model weftd
// builds) and by `weft analyze` over the same objects. One row per way an object
// goes unapplied; each names the object, Istio's code (or Weft's), the field, and
// whether the object is still Accepted.
import { analyzeAll, statusOf } from '../xds/traffic/config-analysis.js';
import { istioConfigOf, istioKinds, meshModelOf, type IstioObject } from '../xds/model/mesh-model-of.js';
import type { V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import { analyzeMesh, type KubeObject } from './mesh-analysis.js';

const root = 'istio-system';
/** The mesh's telemetry providers (the MeshInstallation's meshConfig): one OpenTelemetry tracer, no default access log. */
const meshTelemetry = {
  extensionProviders: [{ name: 'otel', opentelemetry: { service: 'otel.observability.svc.cluster.local', port: 4317 } }],
};
let age = 0;
/** An Istio object; each is a second younger than the one before, so "older" is the order of the row. */
const istio = (apiVersion: string, kind: string, name: string, spec: unknown, namespace = 'shop'): KubeObject => ({
  apiVersion,
  kind,
  metadata: { name, namespace, generation: 1, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, age++)).toISOString() },
  spec,
});
const networking = (kind: string, name: string, spec: unknown, namespace?: string) =>
  istio('networking.istio.io/v1', kind, name, spec, namespace);
const security = (kind: string, name: string, spec: unknown, namespace?: string) =>
  istio('security.istio.io/v1', kind, name, spec, namespace);
const telemetry = (name: string, spec: unknown, namespace?: string) => istio('telemetry.istio.io/v1', 'Telemetry', name, spec, namespace);
const route = (host: string, extra: Record<string, unknown> = {}) => ({
  hosts: [host],
  http: [{ route: [{ destination: { host } }], ...extra }],
});

/** A Service `echo` in `shop` with one ready pod (app=echo, 10.0.0.5) serving 8080, and a Service `hidden` exported only to itself. */
const base: KubeObject[] = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'weft-injection': 'enabled' } } },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'shop' },
    spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }], clusterIP: '10.96.0.10' },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'hidden', namespace: 'vault', annotations: { 'networking.istio.io/exportTo': '.' } },
    spec: { ports: [{ name: 'http', port: 80 }], clusterIP: '10.96.0.11' },
  },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'echo-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'echo' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [{ addresses: ['10.0.0.5'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'echo-1', namespace: 'shop' } }],
  } as KubeObject,
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'echo-1', namespace: 'shop', labels: { app: 'echo', 'security.istio.io/tlsMode': 'istio' } },
    spec: { containers: [{ name: 'echo' }, { name: 'istio-proxy' }] },
    status: { phase: 'Running', podIP: '10.0.0.5' },
  },
];

interface Row {
  /** What goes unapplied, as the test's name. */
  what: string;
  objects: KubeObject[];
  /** The object reported on. */
  kind: string;
  name: string;
  namespace?: string;
  code: string;
  /** The field (or host) the message names. */
  field: string;
  /** Whether the object stays Accepted (warnings), or is refused or not applied at all. */
  accepted: boolean;
}

const rows: Row[] = [
  {
    what: 'an object validation refuses (written before the webhook ran)',
    objects: [networking('VirtualService', 'bad-retries', route('echo', { retries: { attempts: -1 } }))],
    kind: 'VirtualService',
    name: 'bad-retries',
    code: 'IST0106',
    field: 'spec.http[0].retries.attempts',
    accepted: false,
  },
  {
    what: 'a route to a host that does not exist',
    objects: [networking('VirtualService', 'to-nowhere', { hosts: ['echo'], http: [{ route: [{ destination: { host: 'nowhere' } }] }] })],
    kind: 'VirtualService',
    name: 'to-nowhere',
    code: 'IST0101',
    field: 'spec.http[0].route[0].destination.host',
    accepted: false,
  },
  {
    what: 'a route to a subset no DestinationRule defines',
    objects: [
      networking('VirtualService', 'to-v9', { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo', subset: 'v9' } }] }] }),
    ],
    kind: 'VirtualService',
    name: 'to-v9',
    code: 'IST0101',
    field: 'spec.http[0].route[0].destination.subset',
    accepted: false,
  },
  {
    what: "a route to a host that the host's exportTo hides",
    objects: [
      networking('VirtualService', 'to-hidden', {
        hosts: ['echo'],
        http: [{ route: [{ destination: { host: 'hidden.vault.svc.cluster.local' } }] }],
      }),
    ],
    kind: 'VirtualService',
    name: 'to-hidden',
    code: 'IST0101',
    field: 'not exported to namespace shop',
    accepted: false,
  },
  {
    what: 'a DestinationRule for a host nothing serves',
    objects: [networking('DestinationRule', 'for-nothing', { host: 'nothing' })],
    kind: 'DestinationRule',
    name: 'for-nothing',
    code: 'IST0101',
    field: 'spec.host',
    accepted: true,
  },
  {
    what: 'a Gateway server presenting several file certificates (tls.tlsCertificates)',
    objects: [
      // Selecting a workload that exists: a selector matching none is Istio's IST0101, an error of its own.
      networking('Gateway', 'ingress', {
        selector: { app: 'echo' },
        servers: [
          {
            port: { number: 443, name: 'https', protocol: 'HTTPS' },
            hosts: ['*'],
            tls: {
              mode: 'SIMPLE',
              tlsCertificates: [
                { serverCertificate: '/etc/certs/rsa.crt', privateKey: '/etc/certs/rsa.key' },
                { serverCertificate: '/etc/certs/ec.crt', privateKey: '/etc/certs/ec.key' },
              ],
            },
          },
        ],
      }),
    ],
    kind: 'Gateway',
    name: 'ingress',
    code: 'WEFT0005',
    field: 'spec.servers[0].tls.tlsCertificates',
    accepted: true,
  },
  {
    what: 'a VirtualService bound to a gateway that does not exist',
    objects: [networking('VirtualService', 'edge', { ...route('echo'), gateways: ['mesh', 'no-such-gateway'] })],
    kind: 'VirtualService',
    name: 'edge',
    code: 'IST0101',
    field: 'spec.gateways[1]',
    accepted: false,
  },
  {
    what: 'a delegate VirtualService (no hosts), which Weft does not follow',
    objects: [networking('VirtualService', 'delegate', { http: [{ route: [{ destination: { host: 'echo' } }] }] })],
    kind: 'VirtualService',
    name: 'delegate',
    code: 'WEFT0004',
    field: 'spec.hosts',
    accepted: false,
  },
  {
    what: 'a WorkloadGroup (no auto-registration)',
    objects: [networking('WorkloadGroup', 'vms', { template: { serviceAccount: 'vm' } })],
    kind: 'WorkloadGroup',
    name: 'vms',
    code: 'WEFT0004',
    field: 'spec.template',
    accepted: false,
  },
  {
    what: 'the younger of two mesh VirtualServices for one host',
    objects: [networking('VirtualService', 'first', route('echo')), networking('VirtualService', 'second', route('echo'))],
    kind: 'VirtualService',
    name: 'second',
    code: 'IST0109',
    field: 'echo.shop.svc.cluster.local',
    accepted: false,
  },
  {
    what: 'CORS, which no proxy gets',
    objects: [networking('VirtualService', 'cors', route('echo', { corsPolicy: { allowOrigins: [{ exact: 'https://a.example' }] } }))],
    kind: 'VirtualService',
    name: 'cors',
    code: 'WEFT0005',
    field: 'spec.http[0].corsPolicy',
    accepted: true,
  },
  {
    what: 'header rewriting, which proxyless gRPC clients do not get',
    objects: [networking('VirtualService', 'headers', route('echo', { headers: { request: { set: { 'x-a': 'b' } } } }))],
    kind: 'VirtualService',
    name: 'headers',
    code: 'WEFT0005',
    field: 'spec.http[0].headers',
    accepted: true,
  },
  {
    what: 'TLS (SNI) routes',
    objects: [
      networking('VirtualService', 'sni', {
        hosts: ['echo'],
        tls: [{ match: [{ sniHosts: ['echo'] }], route: [{ destination: { host: 'echo' } }] }],
      }),
    ],
    kind: 'VirtualService',
    name: 'sni',
    code: 'WEFT0005',
    field: 'spec.tls[0]',
    accepted: true,
  },
  {
    what: 'the traffic policy of the younger of two DestinationRules for one host',
    objects: [
      networking('DestinationRule', 'older', { host: 'echo', trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } } }),
      networking('DestinationRule', 'younger', { host: 'echo', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }),
    ],
    kind: 'DestinationRule',
    name: 'younger',
    code: 'WEFT0006',
    field: 'spec.trafficPolicy',
    accepted: true,
  },
  {
    what: 'a subset the older of two DestinationRules already defines',
    objects: [
      networking('DestinationRule', 'older', { host: 'echo', subsets: [{ name: 'v1', labels: { app: 'echo' } }] }),
      networking('DestinationRule', 'younger', { host: 'echo', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
    ],
    kind: 'DestinationRule',
    name: 'younger',
    code: 'WEFT0006',
    field: 'spec.subsets[0]',
    accepted: true,
  },
  {
    what: 'a DestinationRule field no generator reads',
    objects: [
      networking('DestinationRule', 'keepalive', {
        host: 'echo',
        trafficPolicy: { connectionPool: { tcp: { tcpKeepalive: { time: '60s' } } } },
      }),
    ],
    kind: 'DestinationRule',
    name: 'keepalive',
    code: 'WEFT0005',
    field: 'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive',
    accepted: true,
  },
  {
    what: 'TLS origination, which proxyless gRPC clients do not do',
    objects: [
      networking('DestinationRule', 'tls', { host: 'echo', trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: '/etc/ca.pem' } } }),
    ],
    kind: 'DestinationRule',
    name: 'tls',
    code: 'WEFT0005',
    field: 'spec.trafficPolicy.tls.mode',
    accepted: true,
  },
  {
    what: 'two Sidecars without a selector in one namespace',
    objects: [
      networking('Sidecar', 'one', { egress: [{ hosts: ['./*'] }] }),
      networking('Sidecar', 'two', { egress: [{ hosts: ['*/*'] }] }),
    ],
    kind: 'Sidecar',
    name: 'two',
    code: 'IST0111',
    field: '[one two]',
    accepted: false,
  },
  {
    what: 'two Sidecars selecting one workload',
    objects: [
      networking('Sidecar', 'one', { workloadSelector: { labels: { app: 'echo' } }, egress: [{ hosts: ['./*'] }] }),
      networking('Sidecar', 'two', { workloadSelector: { labels: { app: 'echo' } }, egress: [{ hosts: ['*/*'] }] }),
    ],
    kind: 'Sidecar',
    name: 'two',
    code: 'IST0110',
    field: '10.0.0.5',
    accepted: false,
  },
  {
    what: "a Sidecar's ingress listeners",
    objects: [
      networking('Sidecar', 'ingress', {
        ingress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '127.0.0.1:8080' }],
      }),
    ],
    kind: 'Sidecar',
    name: 'ingress',
    code: 'WEFT0005',
    field: 'spec.ingress',
    accepted: true,
  },
  {
    what: 'a WorkloadEntry a Kubernetes Service selects',
    objects: [networking('WorkloadEntry', 'vm-1', { address: '10.1.0.7', labels: { app: 'echo' } })],
    kind: 'WorkloadEntry',
    name: 'vm-1',
    code: 'WEFT0005',
    field: 'spec.labels',
    accepted: true,
  },
  {
    what: 'the younger of two namespace-wide PeerAuthentications',
    objects: [
      security('PeerAuthentication', 'first', { mtls: { mode: 'STRICT' } }),
      security('PeerAuthentication', 'second', { mtls: { mode: 'DISABLE' } }),
    ],
    kind: 'PeerAuthentication',
    name: 'second',
    code: 'WEFT0004',
    field: 'shop/first',
    accepted: false,
  },
  {
    what: 'a PeerAuthentication with a selector in the root namespace',
    objects: [
      security('PeerAuthentication', 'root-selector', { selector: { matchLabels: { app: 'echo' } }, mtls: { mode: 'STRICT' } }, root),
    ],
    kind: 'PeerAuthentication',
    name: 'root-selector',
    namespace: root,
    code: 'WEFT0004',
    field: 'spec.selector',
    accepted: false,
  },
  {
    what: 'the younger of two PeerAuthentications selecting one workload',
    objects: [
      security('PeerAuthentication', 'first', { selector: { matchLabels: { app: 'echo' } }, mtls: { mode: 'STRICT' } }),
      security('PeerAuthentication', 'second', { selector: { matchLabels: { app: 'echo' } }, mtls: { mode: 'DISABLE' } }),
    ],
    kind: 'PeerAuthentication',
    name: 'second',
    code: 'WEFT0006',
    field: 'spec.selector',
    accepted: true,
  },
  {
    what: 'port-level mTLS for a port the workload does not serve',
    objects: [
      security('PeerAuthentication', 'ports', { selector: { matchLabels: { app: 'echo' } }, portLevelMtls: { 80: { mode: 'DISABLE' } } }),
    ],
    kind: 'PeerAuthentication',
    name: 'ports',
    code: 'WEFT0002',
    field: 'spec.portLevelMtls[80]',
    accepted: true,
  },
  {
    what: 'an AuthorizationPolicy attached by targetRef (gateways and waypoints)',
    objects: [
      security('AuthorizationPolicy', 'waypoint', {
        targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
        rules: [{ from: [{ source: { namespaces: ['shop'] } }] }],
      }),
    ],
    kind: 'AuthorizationPolicy',
    name: 'waypoint',
    code: 'WEFT0004',
    field: 'spec.targetRefs',
    accepted: false,
  },
  {
    what: 'an AuthorizationPolicy rule proxyless gRPC cannot enforce as written',
    objects: [
      security('AuthorizationPolicy', 'deny-jwt', { action: 'DENY', rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] }),
    ],
    kind: 'AuthorizationPolicy',
    name: 'deny-jwt',
    code: 'WEFT0001',
    field: 'rule 0: request.auth.principal',
    accepted: true,
  },
  {
    what: 'Telemetry metrics, which Weft does not configure',
    objects: [telemetry('metrics', { metrics: [{ providers: [{ name: 'prometheus' }] }] })],
    kind: 'Telemetry',
    name: 'metrics',
    code: 'WEFT0005',
    field: 'spec.metrics',
    accepted: true,
  },
  {
    what: 'a Telemetry naming a provider the mesh does not have',
    objects: [telemetry('tracing', { tracing: [{ providers: [{ name: 'jaeger' }] }] })],
    kind: 'Telemetry',
    name: 'tracing',
    code: 'WEFT0005',
    field: 'spec.tracing[0].providers[0]',
    accepted: true,
  },
  {
    what: 'an access log entry without providers, when the mesh has no default (ignored)',
    objects: [telemetry('logs', { accessLogging: [{ match: { mode: 'SERVER' } }] })],
    kind: 'Telemetry',
    name: 'logs',
    code: 'IST0157',
    field: 'spec.accessLogging[0]',
    accepted: true,
  },
  {
    what: 'two Telemetries without a selector in one namespace',
    objects: [
      telemetry('one', { tracing: [{ randomSamplingPercentage: 10 }] }),
      telemetry('two', { tracing: [{ randomSamplingPercentage: 50 }] }),
    ],
    kind: 'Telemetry',
    name: 'two',
    code: 'IST0160',
    field: '[one two]',
    accepted: false,
  },
];

/** What weftd writes: the model from the objects, every verdict, each as the status subresource. */
function statuses(objects: KubeObject[]) {
  const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
  const byPlural = Object.fromEntries(
    istioKinds.map(({ group, kind, plural }) => [
      plural,
      objects.filter((o) => o.kind === kind && o.apiVersion?.startsWith(`${group}/`)) as IstioObject[],
    ]),
  );
  const model = meshModelOf(
    ofKind('Service') as V1Service[],
    ofKind('EndpointSlice') as unknown as V1EndpointSlice[],
    'cluster.local',
    ofKind('Pod') as V1Pod[],
    istioConfigOf(byPlural),
    root,
  );
  model.meshConfig = { telemetry: meshTelemetry };
  return analyzeAll(model).map((verdict) => ({
    verdict,
    status: statusOf(verdict, undefined, '2026-01-01T00:00:00Z') as {
      conditions: Array<{ type: string; status: string; reason: string; message: string }>;
      validationMessages: Array<{ type: { code: string; name: string }; level: string }>;
    },
  }));
}

const analyze = (objects: KubeObject[]) =>
  analyzeMesh(
    objects.map((object) => ({ object })),
    { rootNamespace: root, workloadsKnown: true, meshTelemetry },
  );

describe('no silent drops: what Weft cannot apply is on the status and in weft analyze', () => {
  it('the mesh alone is accepted and clean (each row below adds one thing)', () => {
    expect(statuses(base)).toEqual([]);
    expect(analyze(base)).toEqual([]);
  });

  it.each(rows.map((row) => [row.what, row] as const))('%s', (_what, row) => {
    const objects = [...base, ...row.objects];
    const namespace = row.namespace ?? 'shop';

    // (a) The status weftd writes names the code, and the condition's message names the field.
    const written = statuses(objects).find(
      ({ verdict }) => verdict.kind === row.kind && verdict.namespace === namespace && verdict.name === row.name,
    );
    expect(written).toBeDefined();
    const { status } = written!;
    expect(status.validationMessages.map((m) => m.type.code)).toContain(row.code);
    const accepted = status.conditions.find((c) => c.type === 'Accepted');
    expect(accepted?.status).toBe(row.accepted ? 'True' : 'False');
    expect(accepted?.message).toContain(row.field);

    // (b) `weft analyze` reports it on the same object, naming the same field.
    const found = analyze(objects).filter(
      (m) => m.code === row.code && m.resource.kind === row.kind && m.resource.namespace === namespace && m.resource.name === row.name,
    );
    expect(found.map((m) => m.message).join('\n')).toContain(row.field);
  });
});
