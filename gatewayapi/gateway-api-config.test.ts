// Istio's own golden cases for its Gateway API controller (pilot/pkg/config/kube/gateway/testdata, at the
// pinned Istio version): each input through gatewayApiConfigOf must give the Istio Gateways and
// VirtualServices istiod generates, and the statuses it writes (conditions compared without their
// transition times).
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { gatewayApiConfigOf, type GatewayApiObjects } from './gateway-api-config.js';
import type { ClusterView, ServiceInfo } from './gateway-api-input.js';
import { istioGatewayController, weftGatewayController, weftMeshController } from './gateways.js';

const testdata = new URL('./testdata/istio/', import.meta.url);
const domainSuffix = 'domain.suffix';

type Check = { namespace: string; name: string; problem?: string };
const istioTestObjects = () =>
  JSON.parse(readFileSync(new URL('services.json', testdata), 'utf8')) as { hosts: string[]; secrets: Check[]; configMaps: Check[] };

const lookup = (checks: Check[]) => (namespace: string, name: string) => {
  const found = checks.find((c) => c.namespace === namespace && c.name === name);
  return found ? { found: true as const, ...(found.problem ? { problem: found.problem } : {}) } : { found: false as const };
};

/** The services Istio's test registers (services.json), as Kubernetes Services, and the non-Kubernetes hosts. */
/** The namespaces of the test's registry hosts that are not Kubernetes Services. */
const otherHostNamespaces: Record<string, string> = { 'example.com': 'istio-system', 'google.com': 'default' };

function istioTestServices(): { services: ServiceInfo[]; otherHosts: string[] } {
  const { hosts } = istioTestObjects();
  const services: ServiceInfo[] = [];
  const otherHosts: string[] = [];
  for (const host of hosts) {
    const match = /^([^.]+)\.([^.]+)\.svc\.domain\.suffix$/.exec(host);
    if (!match) {
      otherHosts.push(host);
      services.push({ name: host, namespace: otherHostNamespaces[host] ?? 'default', hostname: host, ports: [80, 34000, 34001] });
      continue;
    }
    const [, name, namespace] = match as unknown as [string, string, string];
    services.push(
      name === 'istio-ingressgateway'
        ? {
            name,
            namespace,
            ports: [80, 443, 34000, 34001],
            // Istio's test gives the first port's endpoints port 8080.
            targetPorts: [{ port: 80, targetPort: 8080 }],
            externalAddresses: ['1.2.3.4'],
            selector: { istio: 'ingressgateway' },
          }
        : { name, namespace, ports: [80, 34000, 34001], portNames: { http: 80, tcp: 34000, 'tcp-other': 34001 } },
    );
  }
  return { services, otherHosts };
}

type Doc = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
};

function readCase(name: string): { input: Doc[]; golden: Doc[]; goldenStatus: Doc[] } {
  const read = (file: string) =>
    parseAllDocuments(readFileSync(new URL(file, testdata), 'utf8'))
      .map((d) => d.toJSON() as Doc | null)
      .filter((d): d is Doc => !!d);
  return { input: read(`${name}.yaml`), golden: read(`${name}.yaml.golden`), goldenStatus: read(`${name}.status.yaml.golden`) };
}

function convert(input: Doc[]) {
  const of = (kind: string) => input.filter((d) => d.kind === kind && d.apiVersion.startsWith('gateway.networking.k8s.io/')) as never[];
  const objects: GatewayApiObjects = {
    gatewayClasses: of('GatewayClass'),
    gateways: of('Gateway'),
    httpRoutes: of('HTTPRoute'),
    grpcRoutes: of('GRPCRoute'),
    tcpRoutes: of('TCPRoute'),
    tlsRoutes: of('TLSRoute'),
    referenceGrants: of('ReferenceGrant'),
    backendTlsPolicies: of('BackendTLSPolicy'),
  };
  const { services: registered, otherHosts } = istioTestServices();
  // The input's own Services replace the registered ones of the same name.
  const own = input
    .filter((d) => d.kind === 'Service' && d.apiVersion === 'v1')
    .map((d): ServiceInfo => {
      const ports = (d['spec'] as { ports?: Array<{ name?: string; port: number }> }).ports ?? [];
      return {
        name: d.metadata.name,
        namespace: d.metadata.namespace ?? 'default',
        ports: ports.map((p) => p.port),
        portNames: Object.fromEntries(ports.map((p) => [p.name ?? '', p.port])),
      };
    });
  const services = [...registered.filter((r) => !own.some((o) => o.name === r.name && o.namespace === r.namespace)), ...own];
  const serviceEntries = input.filter((d) => d.kind === 'ServiceEntry');
  const { secrets, configMaps } = istioTestObjects();
  // Istio's test makes a namespace for each namespace of the input, labelled with its name's first part.
  const namespaces = new Map<string, Record<string, string>>();
  for (const d of input) {
    const namespace = d.metadata.namespace ?? '';
    if (namespace) namespaces.set(namespace, { 'istio.io/test-name-part': namespace.split('-')[0] as string });
  }
  for (const d of input.filter((d) => d.kind === 'Namespace')) namespaces.set(d.metadata.name, d.metadata.labels ?? {});
  const view: Omit<ClusterView, 'grants'> = {
    domainSuffix,
    services,
    namespaces,
    secret: lookup(secrets),
    configMap: lookup(configMaps),
    serviceEntries: new Map([
      ['istio-system/registry', otherHosts],
      ...serviceEntries.map((d): [string, string[]] => [
        `${d.metadata.namespace ?? 'default'}/${d.metadata.name}`,
        (d['spec'] as { hosts: string[] }).hosts,
      ]),
    ]),
    serviceEntrySpecs: new Map(
      serviceEntries.map((d) => {
        const spec = d['spec'] as { hosts: string[]; ports?: Array<{ name: string; number: number }> };
        return [`${d.metadata.namespace ?? 'default'}/${d.metadata.name}`, { hosts: spec.hosts, ports: spec.ports ?? [] }];
      }),
    ),
  };
  return gatewayApiConfigOf(objects, view, '2026-01-01T00:00:00Z');
}

/** Istio's output in the form Weft's comparison reads: Gateways and VirtualServices with name, namespace, annotations, spec. */
function goldenConfig(golden: Doc[]) {
  return golden
    .filter((d) => d.kind === 'Gateway' || d.kind === 'VirtualService' || d.kind === 'DestinationRule')
    .map((d) => ({
      kind: d.kind,
      name: d.metadata.name,
      namespace: d.metadata.namespace,
      annotations: (d.metadata as { annotations?: object }).annotations ?? {},
      spec: d['spec'],
    }));
}

function ourConfig(result: ReturnType<typeof convert>) {
  return [...result.gateways, ...result.virtualServices, ...result.destinationRules].map((o) => {
    // Weft's addition: the generated Gateway selects its pods by label (istiod binds by the gateway-service annotation).
    const { selector: _selector, ...spec } = o.spec as Record<string, unknown>;
    return JSON.parse(
      JSON.stringify({
        kind: o.kind,
        name: o.name,
        namespace: o.namespace,
        annotations: o.annotations,
        spec: o.kind === 'Gateway' ? spec : o.spec,
      }),
      // An unusable backend is `{host: ''}` (a cluster that does not exist) where Istio writes `{}`.
      (key, value: unknown) => {
        if (key === 'destination' && JSON.stringify(value) === '{"host":""}') return {};
        // PASSTHROUGH is the proto's zero value: Istio's YAML leaves it out.
        if (key === 'mode' && value === 'PASSTHROUGH') return undefined;
        return value;
      },
    ) as unknown;
  });
}

const sortByIdentity = <T extends { kind?: unknown; namespace?: unknown; name?: unknown }>(list: T[]) =>
  [...list].sort((a, b) => `${a.kind}/${a.namespace}/${a.name}`.localeCompare(`${b.kind}/${b.namespace}/${b.name}`));

/** Conditions without transition times; Weft's controller names and class message mapped to Istio's for the comparison. */
function normalizeStatus(status: unknown): unknown {
  return JSON.parse(JSON.stringify(status ?? {}), (key, value: unknown) => {
    if (key === 'lastTransitionTime') return undefined;
    if (value === weftGatewayController) return istioGatewayController;
    if (value === weftMeshController) return 'istio.io/mesh-controller';
    if (value === 'Handled by Weft controller') return 'Handled by Istio controller';
    return value;
  }) as unknown;
}

function goldenStatuses(goldenStatus: Doc[]) {
  return goldenStatus
    .filter((d) => d.apiVersion.startsWith('gateway.networking.k8s.io/') && d.kind !== 'ListenerSet')
    .map((d) => ({ kind: d.kind, namespace: d.metadata.namespace, name: d.metadata.name, status: normalizeStatus(d['status']) }));
}

const cases = [
  'http',
  'tcp',
  'tls',
  'tls-terminate',
  'grpc',
  'mismatch',
  'weighted',
  'zero',
  'mesh',
  'invalid',
  'multi-gateway',
  'route-binding',
  'reference-policy-tls',
  'reference-policy-service',
  'reference-policy-tcp',
  'isolation',
  'route-precedence',
  'redirect-only',
  'http-grpc-same-host',
  'empty-backend-refs',
  'valid-invalid-parent-ref',
  'reference-grant-multiple-to',
  'status',
  'backend-tls-policy',
];

describe("Istio's Gateway API golden cases", () => {
  it.each(cases)('%s: the same Istio Gateways and VirtualServices as istiod', (name) => {
    const { input, golden } = readCase(name);
    expect(sortByIdentity(ourConfig(convert(input)) as never[])).toEqual(sortByIdentity(goldenConfig(golden) as never[]));
  });

  it.each(cases)('%s: the same status as istiod writes', (name) => {
    const { input, goldenStatus } = readCase(name);
    const ours = convert(input).statuses.map((s) => ({
      kind: s.kind,
      namespace: s.namespace,
      name: s.name,
      status: normalizeStatus(s.status),
    }));
    const expected = goldenStatuses(goldenStatus).filter((s) => JSON.stringify(s.status) !== '{}');
    expect(sortByIdentity(ours as never[])).toEqual(sortByIdentity(expected as never[]));
  });
});
