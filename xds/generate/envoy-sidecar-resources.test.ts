import { join } from 'node:path';
import { stringify } from 'yaml';
import { expectMatchesGolden } from '../../testing/jest/golden.js';
import { decodeStrictly } from '../../testing/jest/xds-decode.js';
import { ProxyGroups } from '../cache/proxy-groups.js';
import { SnapshotCache } from '../cache/snapshot-cache.js';
import type { MeshModel } from '../model/mesh-model.js';
import { emptyIstioConfig } from '../model/istio-config.js';
import { encodeResource, typeUrls } from '../protos.js';
import { ProxyView } from '../traffic/proxy-view.js';
import { envoySidecarResources } from './envoy-sidecar-resources.js';

const model: MeshModel = {
  clusterDomain: 'cluster.local',
  services: [
    {
      name: 'reviews',
      namespace: 'bookinfo',
      ports: [{ name: 'http', port: 9080, protocol: 'TCP' }],
      endpoints: [
        { address: '10.244.1.7', ports: { http: 9080 }, tlsMode: 'istio' },
        { address: '10.244.2.3', ports: { http: 9080 } },
      ],
    },
    { name: 'ratings', namespace: 'bookinfo', ports: [{ name: 'http', port: 9080, protocol: 'TCP' }], endpoints: [] },
  ],
};
const node = { id: 'sidecar~10.244.1.7~reviews-v1-abc.bookinfo~bookinfo.svc.cluster.local' };

const viewOf = (m: MeshModel) => new ProxyView(m, { kind: 'sidecar', namespace: 'bookinfo', labels: {} });

describe('Envoy sidecar resources', () => {
  const cache = new SnapshotCache();
  cache.update(envoySidecarResources(viewOf(model)));

  it.each(Object.entries(typeUrls).filter(([kind]) => kind !== 'secret'))(
    '%s resources decode strictly and match their golden file',
    (kind, typeUrl) => {
      const decoded = cache.resources(node, typeUrl, []).resources.map((r) => decodeStrictly(typeUrl, r.resource.value));
      expectMatchesGolden(join(import.meta.dirname, 'testdata', `envoy-sidecar-${kind}.yaml`), stringify(decoded));
    },
  );

  it("uses Istio's listener and cluster names", () => {
    expect(cache.resources(node, typeUrls.listener, []).resources.map((r) => r.name)).toEqual([
      '0.0.0.0_9080',
      'virtualOutbound',
      'virtualInbound',
    ]);
    expect(cache.resources(node, typeUrls.cluster, []).resources.map((r) => r.name)).toEqual([
      'outbound|9080||ratings.bookinfo.svc.cluster.local',
      'outbound|9080||reviews.bookinfo.svc.cluster.local',
      'PassthroughCluster',
      'InboundPassthroughCluster',
      'BlackHoleCluster',
    ]);
  });

  it("speaks HTTP/2 upstream to gRPC ports and the caller's protocol to detected ones, outbound and inbound (Istio's setUpstreamProtocol)", () => {
    const grpcModel: MeshModel = {
      clusterDomain: 'cluster.local',
      services: [
        {
          name: 'echo',
          namespace: 'bookinfo',
          selector: { app: 'echo' },
          ports: [
            { name: 'grpc', port: 8080, protocol: 'TCP', targetPort: 8080 },
            { name: 'web', port: 8081, protocol: 'TCP', targetPort: 8081 },
          ],
          endpoints: [{ address: '10.244.1.7', labels: { app: 'echo' }, ports: { grpc: 8080, web: 8081 }, tlsMode: 'istio' }],
        },
      ],
    };
    const grpcCache = new SnapshotCache();
    grpcCache.update(envoySidecarResources(new ProxyView(grpcModel, { kind: 'sidecar', namespace: 'bookinfo', labels: { app: 'echo' } })));
    const clusters = new Map(
      grpcCache
        .resources(node, typeUrls.cluster, [])
        .resources.map((r) => [r.name, decodeStrictly(typeUrls.cluster, r.resource.value) as any]),
    );
    const options = (name: string) =>
      clusters.get(name)?.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    expect(options('outbound|8080||echo.bookinfo.svc.cluster.local')).toMatchObject({
      explicit_http_config: { http2_protocol_options: {} },
    });
    expect(options('outbound|8081||echo.bookinfo.svc.cluster.local')).toMatchObject({
      use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
    });
    expect(options('inbound|8080||')).toMatchObject({ explicit_http_config: { http2_protocol_options: {} } });
  });

  it('routes one port to every Service on it by host, and unknown hosts out of the mesh', () => {
    const route = decodeStrictly(typeUrls.route, cache.resources(node, typeUrls.route, ['9080']).resources[0]!.resource.value) as any;
    expect(route.virtual_hosts.map((v: { name: string }) => v.name)).toEqual([
      'ratings.bookinfo.svc.cluster.local:9080',
      'reviews.bookinfo.svc.cluster.local:9080',
      'allow_any',
    ]);
    expect(route.ignore_port_in_host_matching).toBe(true);
    // A caller in bookinfo: every name Istio gives, the bare short name included, without ports.
    expect(route.virtual_hosts[1].domains).toEqual([
      'reviews.bookinfo.svc.cluster.local',
      'reviews.bookinfo.svc.cluster.local.',
      'reviews',
      'reviews.bookinfo.svc',
      'reviews.bookinfo',
    ]);
  });

  it('marks endpoints whose pod runs the sidecar, so Envoy uses Istio mTLS to them and plaintext to the rest', () => {
    const eds = decodeStrictly(
      typeUrls.endpoint,
      cache.resources(node, typeUrls.endpoint, ['outbound|9080||reviews.bookinfo.svc.cluster.local']).resources[0]!.resource.value,
    ) as any;
    const [meshed, plain] = eds.endpoints[0].lb_endpoints;
    expect(meshed.metadata.filter_metadata['envoy.transport_socket_match'].fields.tlsMode.stringValue).toBe('istio');
    expect(plain.metadata).toBeUndefined();
    const cluster = decodeStrictly(
      typeUrls.cluster,
      cache.resources(node, typeUrls.cluster, ['outbound|9080||reviews.bookinfo.svc.cluster.local']).resources[0]!.resource.value,
    ) as any;
    expect(cluster.transport_socket_matches.map((m: { name: string }) => m.name)).toEqual(['tlsMode-istio', 'tlsMode-disabled']);
    expect(cluster.transport_socket).toBeUndefined();
  });
});

/** The virtual host Envoy picks for an authority: exact domains, then `*.suffix`, then `*` (the port ignored, as configured). */
function pickVirtualHost(route: any, authority: string): any {
  const host = route.ignore_port_in_host_matching ? authority.replace(/:\d+$/, '') : authority;
  const hosts = route.virtual_hosts as Array<{ domains: string[] }>;
  return (
    hosts.find((v) => v.domains.includes(host)) ??
    hosts.find((v) => v.domains.some((d) => d.startsWith('*.') && host.endsWith(d.slice(1)))) ??
    hosts.find((v) => v.domains.includes('*'))
  );
}

describe('the virtual host a caller reaches by each name of a service', () => {
  const shop: MeshModel = {
    clusterDomain: 'cluster.local',
    services: [
      {
        name: 'reviews',
        namespace: 'shop',
        addresses: ['10.96.0.12'],
        ports: [{ name: 'http', port: 9080, protocol: 'TCP' }],
        endpoints: [{ address: '10.244.1.7', ports: { http: 9080 }, labels: { version: 'v2' } }],
      },
    ],
    istio: {
      ...emptyIstioConfig(),
      virtualServices: [
        {
          kind: 'VirtualService',
          name: 'reviews',
          namespace: 'shop',
          spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] },
        },
      ],
    },
  };
  const routeFor = (namespace: string) => {
    const resources = envoySidecarResources(new ProxyView(shop, { kind: 'sidecar', namespace, labels: {} }));
    const route = resources[typeUrls.route]?.['9080'] as Record<string, unknown>;
    return decodeStrictly(typeUrls.route, encodeResource(typeUrls.route, route)) as any;
  };
  const clusterOf = (virtualHost: any) => virtualHost.routes[0].route.cluster;
  const v2 = 'outbound|9080|v2|reviews.shop.svc.cluster.local';

  it('sends `reviews:9080` from the same namespace to the VirtualService, not the passthrough', () => {
    const route = routeFor('shop');
    for (const authority of ['reviews:9080', 'reviews', 'reviews.shop:9080', 'reviews.shop.svc.cluster.local:9080', '10.96.0.12:9080']) {
      expect([authority, clusterOf(pickVirtualHost(route, authority))]).toEqual([authority, v2]);
    }
  });

  it('gives callers in other namespaces the namespaced names only (there `reviews` is a service of their own)', () => {
    const route = routeFor('web');
    expect(pickVirtualHost(route, 'reviews:9080').name).toBe('allow_any');
    for (const authority of ['reviews.shop:9080', 'reviews.shop.svc:9080', 'reviews.shop.svc.cluster.local.:9080', '10.96.0.12']) {
      expect([authority, clusterOf(pickVirtualHost(route, authority))]).toEqual([authority, v2]);
    }
  });

  it('keeps a domain two virtual hosts would share on the first only (Envoy refuses a repeated domain)', () => {
    const entry = (host: string) => ({
      name: host,
      namespace: 'shop',
      hostname: host,
      addresses: ['240.0.0.1'],
      resolution: 'DNS' as const,
      ports: [{ name: 'http', port: 80, protocol: 'HTTP' }],
      endpoints: [],
    });
    const resources = envoySidecarResources(
      new ProxyView(
        { clusterDomain: 'cluster.local', services: [entry('a.example.com'), entry('b.example.com')] },
        {
          kind: 'sidecar',
          namespace: 'shop',
          labels: {},
        },
      ),
    );
    const route = resources[typeUrls.route]?.['80'] as any;
    expect(route.virtual_hosts.map((v: any) => v.domains)).toEqual([
      ['a.example.com', 'a.example.com.', '240.0.0.1'],
      ['b.example.com', 'b.example.com.'],
      ['*'],
    ]);
  });
});

describe("outbound listeners by port protocol, as istiod's", () => {
  const shop = (name: string, addresses: string[] | undefined, ports: MeshModel['services'][number]['ports']) => ({
    name,
    namespace: 'shop',
    ...(addresses ? { addresses } : {}),
    ports,
    endpoints: [{ address: '10.244.5.1', ports: Object.fromEntries(ports.map((p) => [p.name, p.port])) }],
  });
  const mesh: MeshModel = {
    clusterDomain: 'cluster.local',
    services: [
      shop('db', ['10.96.0.10'], [{ name: 'tcp-postgres', port: 5432, protocol: 'TCP' }]),
      shop('cache', ['10.96.0.11'], [{ name: 'cache', port: 6380, protocol: 'TCP', appProtocol: 'tcp' }]),
      shop('web', ['10.96.0.12'], [{ name: '', port: 8000, protocol: 'TCP' }]),
      shop('reviews', ['10.96.0.13'], [{ name: 'http', port: 9080, protocol: 'TCP' }]),
      // No cluster IP known: its TCP chain takes what is not HTTP on 9080.
      shop('legacy', undefined, [{ name: 'tcp-legacy', port: 9080, protocol: 'TCP' }]),
      ...['api.example.com', 'login.example.com'].map((host) => ({
        name: host,
        namespace: 'shop',
        hostname: host,
        resolution: 'DNS' as const,
        meshExternal: true,
        ports: [{ name: 'tls', port: 443, protocol: 'TLS' }],
        endpoints: [],
      })),
    ],
  };
  const sidecar = { id: 'sidecar~10.244.1.9~client-a.shop~shop.svc.cluster.local', metadata: { NAMESPACE: 'shop' } };
  const resources = envoySidecarResources(new ProxyView(mesh, { kind: 'sidecar', namespace: 'shop', labels: {} }));
  const listeners = resources[typeUrls.listener] ?? {};
  const decoded = (typeUrl: string, name: string) => {
    const cache = new SnapshotCache();
    cache.update(resources);
    return decodeStrictly(typeUrl, cache.resources(sidecar, typeUrl, [name]).resources[0]!.resource.value) as any;
  };
  const tcpProxyOf = (chain: any) => chain.filters.find((f: any) => f.name === 'envoy.filters.network.tcp_proxy')?.typed_config;

  it('gives a TCP port, by name (tcp-postgres) or appProtocol, a listener on the cluster IP with tcp_proxy to the service', () => {
    for (const [name, cluster] of [
      ['10.96.0.10_5432', 'outbound|5432||db.shop.svc.cluster.local'],
      ['10.96.0.11_6380', 'outbound|6380||cache.shop.svc.cluster.local'],
    ] as const) {
      const listener = decoded(typeUrls.listener, name);
      expect(listener.address.socket_address).toEqual({ address: name.split('_')[0], port_value: Number(name.split('_')[1]) });
      expect(listener.filter_chains).toHaveLength(1);
      expect(listener.filter_chains[0].filter_chain_match).toBeUndefined();
      expect(tcpProxyOf(listener.filter_chains[0])).toMatchObject({ cluster, stat_prefix: cluster });
      expect(listener.listener_filters ?? []).toEqual([]);
    }
    // No HTTP route configuration for them, and no 0.0.0.0 listener.
    expect(Object.keys(resources[typeUrls.route] ?? {})).not.toContain('5432');
    expect(Object.keys(listeners)).not.toContain('0.0.0.0_5432');
  });

  it('detects the protocol of an unnamed port: HTTP to its own route configuration, other bytes to the service', () => {
    const listener = decoded(typeUrls.listener, '10.96.0.12_8000');
    expect(listener.listener_filters.map((f: any) => f.name)).toEqual(['envoy.filters.listener.http_inspector']);
    expect(listener.filter_chains).toHaveLength(1);
    expect(listener.filter_chains[0].filter_chain_match).toEqual({
      transport_protocol: 'raw_buffer',
      application_protocols: ['http/1.1', 'h2c'],
    });
    expect(listener.filter_chains[0].filters[0].typed_config.rds.route_config_name).toBe('web.shop.svc.cluster.local:8000');
    expect(tcpProxyOf(listener.default_filter_chain)).toMatchObject({ cluster: 'outbound|8000||web.shop.svc.cluster.local' });
    const route = decoded(typeUrls.route, 'web.shop.svc.cluster.local:8000');
    expect(route.virtual_hosts).toHaveLength(1);
    expect(route.virtual_hosts[0].domains).toEqual(['*']);
  });

  it('shares 0.0.0.0_<port> among HTTP services; the bytes that are not HTTP go to a TCP service on that port without an address', () => {
    const listener = decoded(typeUrls.listener, '0.0.0.0_9080');
    expect(listener.filter_chains.map((c: any) => c.filters[0].name)).toEqual(['envoy.filters.network.http_connection_manager']);
    expect(listener.filter_chains[0].filters[0].typed_config.rds.route_config_name).toBe('9080');
    expect(tcpProxyOf(listener.default_filter_chain)).toMatchObject({ cluster: 'outbound|9080||legacy.shop.svc.cluster.local' });
    expect(decoded(typeUrls.route, '9080').virtual_hosts.map((v: any) => v.name)).toEqual([
      'reviews.shop.svc.cluster.local:9080',
      'allow_any',
    ]);
  });

  it('routes TLS to ServiceEntry hosts without addresses by SNI on 0.0.0.0_443, and unknown names out of the mesh', () => {
    const listener = decoded(typeUrls.listener, '0.0.0.0_443');
    expect(listener.listener_filters.map((f: any) => f.name)).toEqual(['envoy.filters.listener.tls_inspector']);
    expect(listener.filter_chains.map((c: any) => [c.filter_chain_match.server_names, tcpProxyOf(c).cluster])).toEqual([
      [['api.example.com'], 'outbound|443||api.example.com'],
      [['login.example.com'], 'outbound|443||login.example.com'],
    ]);
    expect(listener.default_filter_chain.name).toBe('PassthroughFilterChain');
    expect(tcpProxyOf(listener.default_filter_chain).cluster).toBe('PassthroughCluster');
  });

  it('builds the same listeners and routes incrementally, as ports change protocol and services go', () => {
    const groups = new ProxyGroups();
    groups.connected(sidecar);
    const expectSame = (m: MeshModel) => {
      groups.update(m);
      const want = envoySidecarResources(new ProxyView(m, { kind: 'sidecar', namespace: 'shop', labels: {} }));
      for (const typeUrl of [typeUrls.listener, typeUrls.route]) {
        const wanted = want[typeUrl] ?? {};
        const got = groups.resources(sidecar, typeUrl, typeUrl === typeUrls.listener ? [] : Object.keys(wanted)).resources;
        expect(got.map((r) => r.name).sort()).toEqual(Object.keys(wanted).sort());
        for (const r of got) expect(r.resource.value.equals(encodeResource(typeUrl, wanted[r.name]!))).toBe(true);
      }
    };
    expectSame(mesh);
    // web's port gets a name (detection becomes HTTP on 0.0.0.0_8000), legacy goes (9080 is HTTP alone again).
    const web = mesh.services[2]!;
    expectSame({
      ...mesh,
      services: [
        ...mesh.services.slice(0, 2),
        {
          ...web,
          ports: [{ name: 'http-web', port: 8000, protocol: 'TCP' }],
          endpoints: [{ address: '10.244.5.1', ports: { 'http-web': 8000 } }],
        },
        ...mesh.services.slice(3).filter((service) => service.name !== 'legacy'),
      ],
    });
    expectSame(mesh);
  });
});
