// xDS for Envoy sidecars (Istio's proxyv2), in Istio's shapes and names: the
// virtual outbound listener on 15001 hands captured connections to per-port
// listeners (bind_to_port false) whose routes pick the Service by Host; clusters
// are outbound|<port>||<host> over EDS with auto mTLS (Istio mTLS via the agent's SDS
// to endpoints with the sidecar, plaintext to the rest)
// ('default' and 'ROOTCA'); the virtual inbound listener on 15006 passes inbound
// connections to the application. Pure, golden-tested, strictly decoded.
import { any, typeUrls } from '../protos.js';
import { serviceHost, type MeshModel } from '../model/mesh-model.js';
import { clusterLoadAssignment } from './cluster-load-assignment.js';
import { outboundClusterName, type ResourcesByType } from './grpc-client-resources.js';

const types = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  originalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  upstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  rawBuffer: 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
};
export const sidecarPorts = { outbound: 15001, inbound: 15006 } as const;
const passthrough = 'PassthroughCluster';
const inboundPassthrough = 'InboundPassthroughCluster';
const ads = { ads: {}, resource_api_version: 'V3' };

/** The agent serves SDS on the Envoy bootstrap's `sds-grpc` cluster (a unix socket), as with istiod. */
function sdsSecret(name: string) {
  return {
    name,
    sds_config: {
      api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] },
      resource_api_version: 'V3',
    },
  };
}

/** Istio mutual TLS to the peer, whose SPIFFE identity is checked against the trust domain's root. */
function istioMutualTls(host: string, port: number) {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: any(types.upstreamTls, {
      common_tls_context: {
        alpn_protocols: ['istio-peer-exchange', 'istio'],
        tls_certificate_sds_secret_configs: [sdsSecret('default')],
        combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: sdsSecret('ROOTCA') },
      },
      sni: `outbound_.${port}_._.${host}`,
    }),
  };
}

const tcpProxy = (cluster: string, statPrefix: string) => ({
  name: 'envoy.filters.network.tcp_proxy',
  typed_config: any(types.tcpProxy, { stat_prefix: statPrefix, cluster }),
});

export function envoySidecarResources(model: MeshModel): ResourcesByType {
  const listeners: Record<string, Record<string, unknown>> = {};
  const routes: Record<string, Record<string, unknown>> = {};
  const clusters: Record<string, Record<string, unknown>> = {};
  const endpoints: Record<string, Record<string, unknown>> = {};
  const hostsByPort = new Map<number, Array<{ host: string; shortNames: string[] }>>();

  const services = [...model.services].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  for (const service of services) {
    const host = serviceHost(service, model.clusterDomain);
    for (const port of service.ports) {
      const clusterName = outboundClusterName(port.port, host);
      clusters[clusterName] = {
        name: clusterName,
        type: 'EDS',
        eds_cluster_config: { eds_config: ads, service_name: clusterName },
        connect_timeout: { seconds: 10 },
        lb_policy: 'LEAST_REQUEST',
        // Auto mTLS, as Istio: Istio mTLS to endpoints whose pod runs the sidecar, plaintext to the rest.
        transport_socket_matches: [
          {
            name: 'tlsMode-istio',
            match: { fields: { tlsMode: { stringValue: 'istio' } } },
            transport_socket: istioMutualTls(host, port.port),
          },
          {
            name: 'tlsMode-disabled',
            match: {},
            transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: any(types.rawBuffer, {}) },
          },
        ],
      };
      endpoints[clusterName] = clusterLoadAssignment(clusterName, service, port.name);
      const shortNames = [`${service.name}.${service.namespace}.svc`, `${service.name}.${service.namespace}`];
      hostsByPort.set(port.port, [...(hostsByPort.get(port.port) ?? []), { host, shortNames }]);
    }
  }

  // One listener and one route configuration per Service port, as Istio does for HTTP.
  for (const [port, hosts] of [...hostsByPort].sort((a, b) => a[0] - b[0])) {
    const routeName = String(port);
    routes[routeName] = {
      name: routeName,
      virtual_hosts: [
        ...hosts.map(({ host, shortNames }) => ({
          name: `${host}:${port}`,
          domains: [host, `${host}:${port}`, ...shortNames.flatMap((name) => [name, `${name}:${port}`])],
          routes: [
            { name: 'default', match: { prefix: '/' }, route: { cluster: outboundClusterName(port, host), timeout: { seconds: 0 } } },
          ],
        })),
        // Unknown hosts leave the mesh as they came (outboundTrafficPolicy ALLOW_ANY).
        {
          name: 'allow_any',
          domains: ['*'],
          routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: passthrough, timeout: { seconds: 0 } } }],
        },
      ],
      validate_clusters: { value: false },
    };
    const listenerName = `0.0.0.0_${port}`;
    listeners[listenerName] = {
      name: listenerName,
      address: { socket_address: { address: '0.0.0.0', port_value: port } },
      bind_to_port: { value: false },
      traffic_direction: 'OUTBOUND',
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: any(types.hcm, {
                stat_prefix: `outbound_0.0.0.0_${port}`,
                rds: { config_source: ads, route_config_name: routeName },
                http_filters: [{ name: 'envoy.filters.http.router', typed_config: any(types.router, {}) }],
              }),
            },
          ],
        },
      ],
    };
  }

  listeners['virtualOutbound'] = {
    name: 'virtualOutbound',
    address: { socket_address: { address: '0.0.0.0', port_value: sidecarPorts.outbound } },
    use_original_dst: { value: true },
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxy(passthrough, passthrough)] }],
  };
  listeners['virtualInbound'] = {
    name: 'virtualInbound',
    address: { socket_address: { address: '0.0.0.0', port_value: sidecarPorts.inbound } },
    traffic_direction: 'INBOUND',
    listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: any(types.originalDst, {}) }],
    filter_chains: [{ name: 'virtualInbound-catchall-tcp', filters: [tcpProxy(inboundPassthrough, inboundPassthrough)] }],
  };
  clusters[passthrough] = { name: passthrough, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: { seconds: 10 } };
  // Inbound connections go to the application at the address they were sent to.
  clusters[inboundPassthrough] = {
    name: inboundPassthrough,
    type: 'ORIGINAL_DST',
    lb_policy: 'CLUSTER_PROVIDED',
    connect_timeout: { seconds: 10 },
    upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } },
  };
  clusters['BlackHoleCluster'] = { name: 'BlackHoleCluster', type: 'STATIC', connect_timeout: { seconds: 10 } };

  return { [typeUrls.listener]: listeners, [typeUrls.route]: routes, [typeUrls.cluster]: clusters, [typeUrls.endpoint]: endpoints };
}
