// Istio's documented ingress and egress tasks in, a gateway proxy's Envoy config out:
// each case goes through ProxyGroups as a `router~` node (as weftd and the parity
// harness ask), every resource is decoded strictly against Envoy's protos, and the
// listeners and route configurations are compared with their golden file; the
// assertions say what a user of the gateway relies on.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { expectMatchesGolden } from '../../testing/jest/golden.js';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import { ProxyGroups } from '../cache/proxy-groups.js';
import type { ConfigObject, GatewaySpec } from '../model/istio-config.js';
import { istioConfigOf, meshModelOf, type IstioObject } from '../model/mesh-model-of.js';
import type { MeshModel } from '../model/mesh-model.js';
import { typeUrls } from '../protos.js';
import type { DiscoveryNode } from '../server/discovery-types.js';
import { gatewaysSelecting, mergeGateways, proxyServicePorts } from '../traffic/gateway-servers.js';
import { MeshIndex } from '../traffic/mesh-index.js';
import { proxyScopeOf } from '../traffic/proxy-scope.js';
import { credentialResourceName, gatewayTlsContext } from './envoy-gateway.js';

const testdata = join(import.meta.dirname, 'testdata', 'gateway');

interface Workload {
  service: string;
  namespace: string;
  pod: string;
  ip: string;
  labels: Record<string, string>;
}

/** The workloads of Istio's ingress and egress tasks: httpbin, helloworld, nginx, tcp-echo, and both gateways' Services. */
function cluster(): { services: V1Service[]; slices: V1EndpointSlice[]; pods: V1Pod[] } {
  const ports: Record<string, Array<{ name: string; port: number; targetPort: number }>> = {
    'default/httpbin': [{ name: 'http', port: 8000, targetPort: 8080 }],
    'default/helloworld': [{ name: 'http', port: 5000, targetPort: 5000 }],
    'default/my-nginx': [{ name: 'https', port: 443, targetPort: 443 }],
    'default/tcp-echo': [{ name: 'tcp', port: 9000, targetPort: 9000 }],
    'istio-system/istio-ingressgateway': [
      { name: 'http2', port: 80, targetPort: 8080 },
      { name: 'https', port: 443, targetPort: 8443 },
      { name: 'tcp', port: 31400, targetPort: 31400 },
    ],
    'istio-system/istio-egressgateway': [
      { name: 'http2', port: 80, targetPort: 8080 },
      { name: 'https', port: 443, targetPort: 8443 },
    ],
  };
  const selectors: Record<string, Record<string, string>> = {
    'default/httpbin': { app: 'httpbin' },
    'default/helloworld': { app: 'helloworld' },
    'default/my-nginx': { run: 'my-nginx' },
    'default/tcp-echo': { app: 'tcp-echo' },
    'istio-system/istio-ingressgateway': { istio: 'ingressgateway' },
    'istio-system/istio-egressgateway': { istio: 'egressgateway' },
  };
  const workloads: Workload[] = [
    { service: 'httpbin', namespace: 'default', pod: 'httpbin-a', ip: '10.244.1.1', labels: { app: 'httpbin', version: 'v1' } },
    { service: 'helloworld', namespace: 'default', pod: 'helloworld-a', ip: '10.244.1.2', labels: { app: 'helloworld', version: 'v1' } },
    { service: 'my-nginx', namespace: 'default', pod: 'my-nginx-a', ip: '10.244.1.3', labels: { run: 'my-nginx' } },
    { service: 'tcp-echo', namespace: 'default', pod: 'tcp-echo-v1', ip: '10.244.1.4', labels: { app: 'tcp-echo', version: 'v1' } },
    { service: 'tcp-echo', namespace: 'default', pod: 'tcp-echo-v2', ip: '10.244.1.5', labels: { app: 'tcp-echo', version: 'v2' } },
    {
      service: 'istio-ingressgateway',
      namespace: 'istio-system',
      pod: 'istio-ingressgateway-a',
      ip: '10.244.0.10',
      labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' },
    },
    {
      service: 'istio-egressgateway',
      namespace: 'istio-system',
      pod: 'istio-egressgateway-a',
      ip: '10.244.0.20',
      labels: { istio: 'egressgateway', app: 'istio-egressgateway' },
    },
  ];
  return {
    services: Object.keys(ports).map((key) => {
      const [namespace, name] = key.split('/') as [string, string];
      return {
        metadata: { name, namespace },
        spec: { selector: selectors[key], ports: (ports[key] ?? []).map((p) => ({ ...p, protocol: 'TCP' })) },
      };
    }),
    slices: Object.keys(ports).map((key) => {
      const [namespace, name] = key.split('/') as [string, string];
      return {
        addressType: 'IPv4',
        metadata: { name: `${name}-abc`, namespace, labels: { 'kubernetes.io/service-name': name } },
        ports: (ports[key] ?? []).map((p) => ({ name: p.name, port: p.targetPort })),
        endpoints: workloads
          .filter((w) => w.service === name && w.namespace === namespace)
          .map((w) => ({ addresses: [w.ip], conditions: { ready: true }, targetRef: { kind: 'Pod', name: w.pod, namespace } })),
      };
    }),
    pods: workloads.map((w) => ({
      metadata: { name: w.pod, namespace: w.namespace, labels: { ...w.labels, 'security.istio.io/tlsMode': 'istio' } },
      status: { podIP: w.ip },
    })),
  };
}

function modelOf(documents: IstioObject[]): MeshModel {
  const plural = (kind: string) => (kind.endsWith('Entry') ? `${kind.toLowerCase().slice(0, -1)}ies` : `${kind.toLowerCase()}s`);
  const byPlural: Record<string, IstioObject[]> = {};
  for (const object of documents) (byPlural[plural(object.kind ?? '')] ??= []).push(object);
  const { services, slices, pods } = cluster();
  return meshModelOf(services, slices, 'cluster.local', pods, istioConfigOf(byPlural), 'istio-system');
}

const caseDocuments = (name: string) =>
  parseAllDocuments(readFileSync(join(testdata, `${name}.yaml`), 'utf8')).map((d) => d.toJS() as IstioObject);

/** Istio's proxyv2 in router mode, as pilot-agent names it and writes its metadata. */
const router = (gateway: 'ingressgateway' | 'egressgateway', ip: string): DiscoveryNode => ({
  id: `router~${ip}~istio-${gateway}-a.istio-system~istio-system.svc.cluster.local`,
  metadata: {
    NAMESPACE: 'istio-system',
    LABELS: { istio: gateway, app: `istio-${gateway}`, 'pod-template-hash': 'abc' },
    ISTIO_META_ROUTER_MODE: 'standard',
  },
});
const ingress = router('ingressgateway', '10.244.0.10');
const egress = router('egressgateway', '10.244.0.20');
const sidecar: DiscoveryNode = {
  id: 'sidecar~10.244.1.9~sleep-a.default~default.svc.cluster.local',
  metadata: { NAMESPACE: 'default', LABELS: { app: 'sleep' } },
};

type Decoded = Record<string, any>;

function configOf(model: MeshModel, node: DiscoveryNode) {
  const groups = new ProxyGroups();
  groups.update(model);
  const decoded = (typeUrl: string, names: string[] = []) =>
    groups.resources(node, typeUrl, names).resources.map((r) => decodeStrictly(typeUrl, r.resource.value) as Decoded);
  const listeners = decoded(typeUrls.listener);
  const routeNames = listeners.flatMap((l) =>
    (l['filter_chains'] as Decoded[]).flatMap((c) =>
      (c['filters'] as Decoded[]).flatMap((f) => (f['typed_config']?.rds ? [f['typed_config'].rds.route_config_name as string] : [])),
    ),
  );
  const routes = decoded(typeUrls.route, [...new Set(routeNames)]);
  const clusters = decoded(typeUrls.cluster);
  const clusterNames = clusters.map((c) => c['name'] as string);
  const endpoints = decoded(
    typeUrls.endpoint,
    clusters.filter((c) => c['type'] === 'EDS').map((c) => c['name'] as string),
  );
  return { groups, listeners, routes, routeNames, clusters, clusterNames, endpoints };
}

const cases: Array<[string, DiscoveryNode]> = [
  ['httpbin-ingress', ingress],
  ['secure-ingress-simple', ingress],
  ['secure-ingress-mutual', ingress],
  ['tls-passthrough', ingress],
  ['tcp-ingress', ingress],
  ['https-redirect', ingress],
  ['mesh-and-gateway', ingress],
  ['egress-gateway', egress],
  ['auto-passthrough', ingress],
];

/** The filter named `name` of a chain, decoded. */
const filterOf = (chain: Decoded, name: string) => (chain['filters'] as Decoded[]).find((f) => f['name'] === name)?.['typed_config'];
const hcmOf = (chain: Decoded) => filterOf(chain, 'envoy.filters.network.http_connection_manager');
const tcpProxyOf = (chain: Decoded) => filterOf(chain, 'envoy.filters.network.tcp_proxy');

describe('gateway proxy (router) resources', () => {
  it('reads a router~ node as a gateway proxy, whatever ISTIO_META_ROUTER_MODE says', () => {
    expect(proxyScopeOf(ingress).kind).toBe('router');
    expect(proxyScopeOf({ ...ingress, metadata: { ...ingress.metadata, ISTIO_META_ROUTER_MODE: 'sni-dnat' } }).kind).toBe('router');
    expect(proxyScopeOf(sidecar).kind).toBe('sidecar');
  });

  it.each(cases)('%s: every resource decodes strictly; listeners and routes match their golden file', (name, node) => {
    const { listeners, routes, clusters, endpoints } = configOf(modelOf(caseDocuments(name)), node);
    expect(listeners.length).toBeGreaterThan(0);
    expect(clusters.length).toBeGreaterThan(0);
    expect(endpoints.length).toBeGreaterThan(0);
    expectMatchesGolden(join(testdata, `${name}.golden.yaml`), stringify({ listeners, routes }));
  });

  it('gets no sidecar listeners (15001, 15006) and no passthrough cluster, but the blackhole and the outbound clusters', () => {
    const { listeners, clusterNames } = configOf(modelOf(caseDocuments('httpbin-ingress')), ingress);
    expect(listeners.map((l) => l['name'])).toEqual(['0.0.0.0_8080']);
    expect(clusterNames).toContain('BlackHoleCluster');
    expect(clusterNames).toContain('outbound|8000||httpbin.default.svc.cluster.local');
    expect(clusterNames).not.toContain('PassthroughCluster');
    expect(clusterNames).not.toContain('InboundPassthroughCluster');
  });

  it('listens on the Service targetPort and routes the bound VirtualService host by its match blocks (httpbin ingress task)', () => {
    const { listeners, routes } = configOf(modelOf(caseDocuments('httpbin-ingress')), ingress);
    const [listener] = listeners;
    expect(listener?.['address'].socket_address.port_value).toBe(8080);
    expect(hcmOf(listener?.['filter_chains'][0]).rds.route_config_name).toBe('http.8080');
    const [route] = routes;
    expect(route?.['name']).toBe('http.8080');
    expect(route?.['virtual_hosts'].map((v: Decoded) => [v['name'], v['domains']])).toEqual([
      ['httpbin.example.com:80', ['httpbin.example.com']],
    ]);
    expect(route?.['virtual_hosts'][0].routes.map((r: Decoded) => [r['match'].prefix, r['route'].cluster])).toEqual([
      ['/status', 'outbound|8000||httpbin.default.svc.cluster.local'],
      ['/delay', 'outbound|8000||httpbin.default.svc.cluster.local'],
    ]);
  });

  it('answers 404 from a blackhole virtual host when no VirtualService binds the server, as Istio does', () => {
    const gatewayOnly = caseDocuments('httpbin-ingress').filter((o) => o.kind === 'Gateway');
    const { routes } = configOf(modelOf(gatewayOnly), ingress);
    expect(routes[0]?.['virtual_hosts']).toEqual([{ name: 'blackhole:80', domains: ['*'] }]);
  });

  it('terminates SIMPLE TLS per host by SNI, with the credentialName secret over ADS (secure ingress task)', () => {
    const { listeners, routeNames } = configOf(modelOf(caseDocuments('secure-ingress-simple')), ingress);
    expect(listeners.map((l) => l['name'])).toEqual(['0.0.0.0_8443']);
    const chains = listeners[0]?.['filter_chains'] as Decoded[];
    expect(chains.map((c) => c['filter_chain_match'].server_names)).toEqual([['httpbin.example.com'], ['helloworld.example.com']]);
    const tls = chains.map((c) => c['transport_socket'].typed_config);
    expect(tls[0].common_tls_context.tls_certificate_sds_secret_configs).toEqual([
      { name: 'kubernetes://httpbin-credential', sds_config: { ads: {}, resource_api_version: 'V3' } },
    ]);
    expect(tls[0].require_client_certificate?.value ?? false).toBe(false);
    expect(tls[0].common_tls_context.combined_validation_context).toBeUndefined();
    expect(tls[1].common_tls_context.tls_params).toEqual({ tls_minimum_protocol_version: 'TLSv1_2' });
    expect(listeners[0]?.['listener_filters'].map((f: Decoded) => f['name'])).toEqual(['envoy.filters.listener.tls_inspector']);
    // Istio names HTTPS routes by the server's port, port name, Gateway and namespace.
    expect(routeNames).toEqual(['https.443.https-httpbin.mygateway.default', 'https.443.https-helloworld.mygateway.default']);
  });

  it('requires a client certificate checked against <credentialName>-cacert for MUTUAL, bound by namespace/name', () => {
    const { listeners, routes } = configOf(modelOf(caseDocuments('secure-ingress-mutual')), ingress);
    const tls = listeners[0]?.['filter_chains'][0].transport_socket.typed_config;
    expect(tls.require_client_certificate).toEqual({ value: true });
    expect(tls.common_tls_context.combined_validation_context.validation_context_sds_secret_config).toEqual({
      name: 'kubernetes://httpbin-credential-cacert',
      sds_config: { ads: {}, resource_api_version: 'V3' },
    });
    // The VirtualService in `default` binds `istio-system/mygateway`.
    expect(routes[0]?.['virtual_hosts'][0].domains).toEqual(['httpbin.example.com']);
  });

  it('passes TLS through by SNI to the tls route destination, without terminating it (SNI passthrough task)', () => {
    const { listeners, routes } = configOf(modelOf(caseDocuments('tls-passthrough')), ingress);
    const [chain] = listeners[0]?.['filter_chains'] as Decoded[];
    expect(chain?.['filter_chain_match'].server_names).toEqual(['nginx.example.com']);
    expect(chain?.['transport_socket']).toBeUndefined();
    expect(tcpProxyOf(chain as Decoded).cluster).toBe('outbound|443||my-nginx.default.svc.cluster.local');
    expect(routes).toEqual([]);
  });

  it('proxies TCP to the tcp route destination subset (TCP traffic shifting task)', () => {
    const { listeners, clusterNames } = configOf(modelOf(caseDocuments('tcp-ingress')), ingress);
    expect(listeners.map((l) => l['name'])).toEqual(['0.0.0.0_31400']);
    const [chain] = listeners[0]?.['filter_chains'] as Decoded[];
    expect(chain?.['filter_chain_match']).toBeUndefined();
    expect(tcpProxyOf(chain as Decoded).cluster).toBe('outbound|9000|v1|tcp-echo.default.svc.cluster.local');
    expect(clusterNames).toContain('outbound|9000|v1|tcp-echo.default.svc.cluster.local');
  });

  it('redirects plain HTTP to HTTPS for every host of an httpsRedirect server, routed or not', () => {
    const { routes } = configOf(modelOf(caseDocuments('https-redirect')), ingress);
    const http = routes.find((r) => r['name'] === 'http.8080');
    expect(http?.['virtual_hosts'].map((v: Decoded) => [v['domains'], v['require_tls'], (v['routes'] ?? []).length])).toEqual([
      [['helloworld.example.com'], 'ALL', 0],
      [['httpbin.example.com'], 'ALL', 1],
    ]);
    const https = routes.find((r) => r['name'] === 'https.443.https.httpbin-gateway.default');
    expect(https?.['virtual_hosts'][0].require_tls).toBeUndefined();
  });

  it('gives a gateway only the match blocks naming it, and sidecars only those naming mesh', () => {
    const model = modelOf(caseDocuments('mesh-and-gateway'));
    const gateway = configOf(model, ingress).routes[0]?.['virtual_hosts'] as Decoded[];
    // The gateway serves both hosts the server's `*` covers, collapsed into one virtual host: same routes.
    expect(gateway.map((v) => v['domains'])).toEqual([['httpbin.default.svc.cluster.local', 'httpbin.example.com']]);
    expect(gateway[0]?.['routes'].map((r: Decoded) => [r['match'].prefix, r['route'].timeout])).toEqual([['/headers', { seconds: '5' }]]);
    const mesh = configOf(model, sidecar).routes.flatMap((r) => r['virtual_hosts'] as Decoded[]);
    const httpbin = mesh.find((v) => v['name'] === 'httpbin.default.svc.cluster.local:8000');
    expect(httpbin?.['routes'].map((r: Decoded) => [r['match'].prefix, r['route'].retry_policy])).toEqual([['/', undefined]]);
  });

  it('egress gateway pattern: sidecars route edition.cnn.com to the egress gateway, which routes it out', () => {
    const model = modelOf(caseDocuments('egress-gateway'));
    const gateway = configOf(model, egress);
    expect(gateway.listeners.map((l) => l['name'])).toEqual(['0.0.0.0_8080']);
    expect(gateway.routes[0]?.['virtual_hosts'][0].routes[0].route.cluster).toBe('outbound|80||edition.cnn.com');
    expect(gateway.clusterNames).toContain('outbound|80||edition.cnn.com');
    const mesh = configOf(model, sidecar).routes.flatMap((r) => r['virtual_hosts'] as Decoded[]);
    const cnn = mesh.find((v) => v['name'] === 'edition.cnn.com:80');
    expect(cnn?.['routes'][0].route.cluster).toBe('outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local');
  });

  it('AUTO_PASSTHROUGH: passes Istio mTLS through by its SNI to an SNI-DNAT cluster per service port and subset', () => {
    const { listeners, clusters } = configOf(modelOf(caseDocuments('auto-passthrough')), ingress);
    expect(listeners.map((l) => l['name'])).toEqual(['0.0.0.0_15443']);
    const chains = listeners[0]?.['filter_chains'] as Decoded[];
    const sni = 'outbound_.9000_.v1_.tcp-echo.default.svc.cluster.local';
    const chain = chains.find((c) => c['filter_chain_match'].server_names[0] === sni) as Decoded;
    expect(chain['filter_chain_match'].application_protocols).toEqual([
      'istio',
      'istio-peer-exchange',
      'istio-http/1.0',
      'istio-http/1.1',
      'istio-h2',
    ]);
    expect(tcpProxyOf(chain).cluster).toBe(sni);
    // Only services the server's hosts cover: nothing of istio-system.
    expect(chains.every((c) => (c['filter_chain_match'].server_names[0] as string).endsWith('.default.svc.cluster.local'))).toBe(true);
    const cluster = clusters.find((c) => c['name'] === sni) as Decoded;
    // The client's own mTLS passes through: no TLS of the gateway's; endpoints are the subset's outbound ones.
    expect(cluster['transport_socket']).toBeUndefined();
    expect(cluster['transport_socket_matches']).toBeUndefined();
    expect(cluster['eds_cluster_config'].service_name).toBe('outbound|9000|v1|tcp-echo.default.svc.cluster.local');
  });

  it('serves nothing but clusters to a router no Gateway selects', () => {
    const { listeners, routes, clusterNames } = configOf(modelOf(caseDocuments('egress-gateway')), ingress);
    expect(listeners).toEqual([]);
    expect(routes).toEqual([]);
    expect(clusterNames).toContain('BlackHoleCluster');
  });
});

describe('gateway servers merged per port, as istiod merges them', () => {
  const gatewayObject = (name: string, servers: GatewaySpec['servers'], namespace = 'default'): ConfigObject<GatewaySpec> => ({
    kind: 'Gateway',
    name,
    namespace,
    spec: { selector: { istio: 'ingressgateway' }, servers },
  });
  const http = (port: number, hosts: string[], protocol = 'HTTP') => ({ port: { number: port, name: `http-${port}`, protocol }, hosts });

  it('shares one route configuration between plain HTTP servers of several Gateways on one port', () => {
    const merged = mergeGateways(
      [gatewayObject('a', [http(80, ['a.example.com'])]), gatewayObject('b', [http(80, ['b.example.com'])])],
      [],
    );
    expect(merged.ports.map((p) => [p.port, p.routeName, p.servers.map((s) => s.gateway)])).toEqual([
      [80, 'http.80', ['default/a', 'default/b']],
    ]);
    expect(merged.skipped).toEqual([]);
  });

  it('skips a TCP server on a port an HTTP server holds, and a TLS server repeating a host on its port', () => {
    const merged = mergeGateways(
      [
        gatewayObject('a', [
          http(80, ['a.example.com']),
          {
            port: { number: 443, name: 'https', protocol: 'HTTPS' },
            hosts: ['a.example.com'],
            tls: { mode: 'SIMPLE', credentialName: 'a' },
          },
        ]),
        gatewayObject('b', [
          { port: { number: 80, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] },
          {
            port: { number: 443, name: 'https-b', protocol: 'HTTPS' },
            hosts: ['a.example.com'],
            tls: { mode: 'SIMPLE', credentialName: 'b' },
          },
        ]),
      ],
      [],
    );
    expect(merged.ports.map((p) => [p.port, p.protocol, p.servers.length])).toEqual([
      [80, 'HTTP', 1],
      [443, 'HTTPS', 1],
    ]);
    expect(merged.skipped.map((s) => s.gateway)).toEqual(['default/b', 'default/b']);
    expect(merged.skipped[1]?.message).toContain('duplicate host names a.example.com');
  });

  it('listens on the targetPort of the proxy Service port the server names, and keeps the server port in HTTPS route names', () => {
    const merged = mergeGateways(
      [
        gatewayObject('gw', [
          { port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['*'], tls: { mode: 'SIMPLE', credentialName: 'c' } },
        ]),
      ],
      [{ port: 443, targetPort: 8443, host: 'istio-ingressgateway.istio-system.svc.cluster.local', namespace: 'istio-system' }],
    );
    expect(merged.ports[0]?.port).toBe(8443);
    expect([...merged.serversByRouteName.keys()]).toEqual(['https.443.https.gw.default']);
  });

  it('binds a Gateway converted from the Gateway API to the proxies of the Services it names, on their targetPorts', () => {
    const converted: ConfigObject<GatewaySpec> = {
      ...gatewayObject('web~istio-autogenerated-k8s-gateway~http', [http(80, ['*'])], 'istio-system'),
      annotations: { 'internal.istio.io/gateway-service': 'istio-egressgateway.istio-system.svc.cluster.local' },
    };
    const base = modelOf([]);
    const model: MeshModel = { ...base, istio: { ...(base.istio as NonNullable<MeshModel['istio']>), gateways: [converted] } };
    const index = MeshIndex.of(model);
    // Its spec.selector (istio: ingressgateway) is not what binds it, as in istiod.
    expect(gatewaysSelecting(index, proxyScopeOf(ingress))).toEqual([]);
    const selected = gatewaysSelecting(index, proxyScopeOf(egress));
    expect(selected).toEqual([converted]);
    expect(mergeGateways(selected, proxyServicePorts(index, proxyScopeOf(egress))).ports.map((p) => p.port)).toEqual([8080]);
    // A port the named Services do not expose is not served.
    const other = { ...converted, spec: { servers: [http(9999, ['*'])] } };
    expect(mergeGateways([other], proxyServicePorts(index, proxyScopeOf(egress))).ports).toEqual([]);
  });

  it('resolves `./host` to the Gateway namespace and `*/host` to any namespace', () => {
    const merged = mergeGateways([gatewayObject('gw', [http(80, ['./a.example.com', '*/b.example.com'])], 'edge')], []);
    expect(merged.ports[0]?.servers[0]?.server.hosts).toEqual(['edge/a.example.com', 'b.example.com']);
  });
});

describe('gateway server TLS contexts', () => {
  const decode = (socket: Record<string, unknown>) =>
    decodeStrictly(
      'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      (socket['typed_config'] as { value: Buffer }).value,
    ) as Decoded;

  it('ISTIO_MUTUAL: the workload certificate and ROOTCA from the agent, a client certificate required, istio-peer-exchange first on TCP', () => {
    const tls = decode(gatewayTlsContext({ mode: 'ISTIO_MUTUAL' }, true));
    expect(tls['require_client_certificate']).toEqual({ value: true });
    expect(tls['common_tls_context'].alpn_protocols).toEqual(['istio-peer-exchange', 'h2', 'http/1.1']);
    expect(tls['common_tls_context'].tls_certificate_sds_secret_configs[0].name).toBe('default');
    expect(tls['common_tls_context'].combined_validation_context.validation_context_sds_secret_config.name).toBe('ROOTCA');
  });

  it('file paths: the agent serves them as file-cert and file-root secrets', () => {
    const tls = decode(
      gatewayTlsContext(
        { mode: 'MUTUAL', serverCertificate: '/etc/certs/tls.crt', privateKey: '/etc/certs/tls.key', caCertificates: '/etc/certs/ca.crt' },
        false,
      ),
    );
    expect(tls['common_tls_context'].tls_certificate_sds_secret_configs[0].name).toBe('file-cert:/etc/certs/tls.crt~/etc/certs/tls.key');
    expect(tls['common_tls_context'].combined_validation_context.validation_context_sds_secret_config.name).toBe(
      'file-root:/etc/certs/ca.crt',
    );
  });

  it('names credentials as istiod does: plain names are Kubernetes Secrets, typed names stay', () => {
    expect(credentialResourceName('httpbin-credential')).toBe('kubernetes://httpbin-credential');
    expect(credentialResourceName('kubernetes-gateway://ns/cert')).toBe('kubernetes-gateway://ns/cert');
  });
});

const documentsOf = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as IstioObject);

/** An HTTP server on 80 and an HTTPS one on 443 (the ingress pod's 8080 and 8443), and a VirtualService bound to both. */
const redirectsOnBothServers = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - { port: { number: 80, name: http, protocol: HTTP }, hosts: ['*'] }
  - { port: { number: 443, name: https, protocol: HTTPS }, hosts: ['*'], tls: { mode: SIMPLE, credentialName: cert } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: redirects, namespace: default }
spec:
  hosts: [a.example.com]
  gateways: [istio-system/gw]
  http:
  - match: [{ uri: { prefix: /old } }]
    redirect: { prefixRewrite: /new, derivePort: FROM_REQUEST_PORT }
  - match: [{ uri: { prefix: /secure } }]
    redirect: { scheme: https, port: 443 }
  - match: [{ uri: { prefix: /elsewhere } }]
    redirect: { authority: b.example.com, port: 8443, redirectCode: 302 }
`;

describe('gateway redirects and TLS routes, as istiod builds them', () => {
  it("redirects as istiod's ApplyRedirect: a replaced prefix, the request's port, and no port that is the scheme's default", () => {
    const { routes } = configOf(modelOf(documentsOf(redirectsOnBothServers)), ingress);
    const redirects = (name: string) =>
      (routes.find((r) => r['name'] === name)?.['virtual_hosts'][0].routes as Decoded[]).map((r) => r['redirect'] as Decoded);
    // Server port 80: the request's port is http's default, 443 https's; Location carries neither.
    const [old, secure, elsewhere] = redirects('http.8080');
    expect(old).toMatchObject({ prefix_rewrite: '/new' });
    expect(old?.['port_redirect']).toBeUndefined();
    expect(old?.['path_redirect']).toBeUndefined();
    expect(secure).toMatchObject({ scheme_redirect: 'https' });
    expect(secure?.['port_redirect']).toBeUndefined();
    expect(elsewhere).toMatchObject({ host_redirect: 'b.example.com', port_redirect: 8443, response_code: 'FOUND' });
    // The HTTPS server's request port, 443, with no scheme given: https's default, left out.
    const [oldOverTls] = redirects('https.443.https.gw.istio-system');
    expect(oldOverTls).toMatchObject({ prefix_rewrite: '/new' });
    expect(oldOverTls?.['port_redirect']).toBeUndefined();
  });

  const terminatedTls = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - { port: { number: 443, name: tls, protocol: TLS }, hosts: ['*'], tls: { mode: SIMPLE, credentialName: cert } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bar, namespace: default }
spec:
  hosts: [bar.example.com]
  gateways: [istio-system/gw]
  tls:
  - match: [{ sniHosts: [bar.example.com] }]
    route: [{ destination: { host: httpbin.default.svc.cluster.local, port: { number: 8000 } } }]
`;

  it("forwards a terminated TLS server's connections by a TLSRoute's tls routes, as istiod does for TLSRoute-sourced VirtualServices", () => {
    const model = modelOf(documentsOf(terminatedTls));
    // As gatewayapi/ marks the VirtualService it converts from a TLSRoute (a user's cannot carry it).
    const istio = model.istio as NonNullable<MeshModel['istio']>;
    model.istio = {
      ...istio,
      virtualServices: istio.virtualServices.map((vs) => ({ ...vs, annotations: { 'internal.istio.io/parents': 'TLSRoute/bar.default' } })),
    };
    const { listeners } = configOf(model, ingress);
    expect(listeners.map((l) => l['name'])).toEqual(['0.0.0.0_8443']);
    const [chain] = listeners[0]?.['filter_chains'] as Decoded[];
    expect(chain?.['transport_socket']?.name).toBe('envoy.transport_sockets.tls');
    expect(tcpProxyOf(chain as Decoded).cluster).toBe('outbound|8000||httpbin.default.svc.cluster.local');
  });

  it("gives a terminated TLS server no chain from a user's tls routes (they are for passthrough servers)", () => {
    const { listeners } = configOf(modelOf(documentsOf(terminatedTls)), ingress);
    expect(listeners).toEqual([]);
  });
});
