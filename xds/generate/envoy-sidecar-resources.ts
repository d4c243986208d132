// xDS for Envoy sidecars (Istio's proxyv2), in Istio's shapes and names: the
// virtual outbound listener on 15001 hands captured connections to per-port
// listeners (bind_to_port false) whose routes pick the service by Host and then
// follow its VirtualService; clusters are outbound|<port>|<subset>|<host> with the
// DestinationRule's policy and auto mTLS (Istio mTLS via the agent's SDS secrets
// 'default' and 'ROOTCA' to endpoints with the sidecar, plaintext to the rest);
// the virtual inbound listener on 15006 passes inbound connections to the
// application. Pure, golden-tested, strictly decoded.
import { any, typeUrls } from '../protos.js';
import { clusterLoadAssignment } from '../traffic/cluster-load-assignment.js';
import { clusterPolicyFields, type PolicyFields } from '../traffic/cluster-policy.js';
import { faultFilterName, httpRoutes } from '../traffic/http-routes.js';
import { outboundClusters, outboundPorts, type OutboundCluster } from '../traffic/outbound-clusters.js';
import type { ProxyView, VisibleService } from '../traffic/proxy-view.js';
import type { ResourcesByType } from './grpc-client-resources.js';
import { envoyInbound } from './envoy-inbound.js';
import { hcmTelemetry } from '../telemetry/hcm-telemetry.js';
import { endpointMtlsMode, spiffeIdentity } from '../security/grpc-tls.js';
import type { MeshModel } from '../model/mesh-model.js';

const types = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  originalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  upstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  rawBuffer: 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  fault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
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
function istioMutualTls(host: string, port: number, identities: string[]) {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: any(types.upstreamTls, {
      common_tls_context: {
        alpn_protocols: ['istio-peer-exchange', 'istio'],
        tls_certificate_sds_secret_configs: [sdsSecret('default')],
        combined_validation_context: {
          // The server must be one of the identities the service runs as, not just any mesh workload.
          default_validation_context:
            identities.length > 0
              ? { match_typed_subject_alt_names: identities.map((id) => ({ san_type: 'URI', matcher: { exact: id } })) }
              : {},
          validation_context_sds_secret_config: sdsSecret('ROOTCA'),
        },
      },
      sni: `outbound_.${port}_._.${host}`,
    }),
  };
}

const rawBuffer = () => ({ name: 'envoy.transport_sockets.raw_buffer', typed_config: any(types.rawBuffer, {}) });

/** The system's CA bundle, as Istio uses for SIMPLE and MUTUAL without caCertificates. */
const systemCaBundle = '/etc/ssl/certs/ca-certificates.crt';

/**
 * How a cluster talks TLS: a DestinationRule's tls mode when it has one (DISABLE,
 * ISTIO_MUTUAL, SIMPLE, MUTUAL: never plaintext when a TLS mode is asked for), else
 * auto mTLS as Istio: Istio mTLS to endpoints whose pod runs the sidecar, plaintext
 * to the rest.
 */
function transportSocket(tls: PolicyFields['tls'], host: string, port: number, identities: string[]): Record<string, unknown> {
  switch (tls?.mode) {
    case 'DISABLE':
      return {};
    case 'ISTIO_MUTUAL':
      return { transport_socket: istioMutualTls(host, port, identities) };
    case 'SIMPLE':
    case 'MUTUAL': {
      const files = tls as { clientCertificate?: string; privateKey?: string; caCertificates?: string; insecureSkipVerify?: boolean };
      const validation = files.insecureSkipVerify
        ? {}
        : {
            validation_context: {
              trusted_ca: { filename: files.caCertificates ?? systemCaBundle },
              ...(tls.subjectAltNames?.length
                ? { match_typed_subject_alt_names: tls.subjectAltNames.map((san) => ({ san_type: 'DNS', matcher: { exact: san } })) }
                : {}),
            },
          };
      const certificate =
        tls.mode === 'MUTUAL' && files.clientCertificate && files.privateKey
          ? {
              tls_certificates: [{ certificate_chain: { filename: files.clientCertificate }, private_key: { filename: files.privateKey } }],
            }
          : {};
      return {
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: any(types.upstreamTls, { sni: tls.sni ?? host, common_tls_context: { ...validation, ...certificate } }),
        },
      };
    }
    default:
      return {
        transport_socket_matches: [
          {
            name: 'tlsMode-istio',
            match: { fields: { tlsMode: { stringValue: 'istio' } } },
            transport_socket: istioMutualTls(host, port, identities),
          },
          { name: 'tlsMode-disabled', match: {}, transport_socket: rawBuffer() },
        ],
      };
  }
}

/** A ServiceEntry's resolution picks the discovery type: EDS for Kubernetes and STATIC, DNS resolved by Envoy, or the original destination. */
export function envoyOutboundCluster(cluster: OutboundCluster, model: MeshModel): Record<string, unknown> {
  const base = { name: cluster.name, connect_timeout: { seconds: 10 }, ...clusterPolicyFields(cluster.policy, 'sidecar') };
  // Auto mTLS also respects the servers' PeerAuthentication: where every endpoint has mTLS DISABLEd, plaintext.
  const disabled =
    !cluster.policy.tls &&
    cluster.endpoints.length > 0 &&
    cluster.endpoints.every((endpoint) => {
      const port = endpoint.ports[cluster.port.name];
      return port !== undefined && endpointMtlsMode(model, cluster.service, endpoint, port) === 'DISABLE';
    });
  const tls =
    (cluster.service.meshExternal && !cluster.policy.tls) || disabled
      ? {}
      : transportSocket(cluster.policy.tls, cluster.hostname, cluster.port.port, serviceIdentities(cluster, model));
  switch (cluster.service.resolution) {
    case 'NONE':
      return { ...base, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', ...tls };
    case 'DNS':
    case 'DNS_ROUND_ROBIN': {
      const hosts = cluster.endpoints.length > 0 ? cluster.endpoints : [{ address: cluster.hostname, ports: {} }];
      return {
        ...base,
        type: cluster.service.resolution === 'DNS' ? 'STRICT_DNS' : 'LOGICAL_DNS',
        dns_lookup_family: 'V4_ONLY',
        load_assignment: {
          cluster_name: cluster.name,
          endpoints: [
            {
              lb_endpoints: hosts.map((endpoint) => ({
                endpoint: {
                  address: {
                    socket_address: { address: endpoint.address, port_value: endpoint.ports[cluster.port.name] ?? cluster.port.port },
                  },
                },
              })),
            },
          ],
        },
        ...tls,
      };
    }
    default:
      return { ...base, type: 'EDS', eds_cluster_config: { eds_config: ads, service_name: cluster.name }, ...tls };
  }
}

const tcpProxy = (cluster: string, statPrefix: string) => ({
  name: 'envoy.filters.network.tcp_proxy',
  typed_config: any(types.tcpProxy, { stat_prefix: statPrefix, cluster }),
});

/** Where traffic to hosts outside the registry goes: ALLOW_ANY passes through, REGISTRY_ONLY (mesh or Sidecar) blackholes. */
export function registryOnly(view: ProxyView): boolean {
  return (view.sidecar?.spec.outboundTrafficPolicy?.mode ?? view.model.meshConfig?.outboundTrafficPolicy) === 'REGISTRY_ONLY';
}

/** The virtual host of one service port in the per-port route configuration, with Istio's domains (short names included). */
export function envoyVirtualHost(view: ProxyView, visible: VisibleService, port: number): Record<string, unknown> {
  const { service, hostname } = visible;
  const shortNames = service.hostname ? [] : [`${service.name}.${service.namespace}.svc`, `${service.name}.${service.namespace}`];
  return {
    name: `${hostname}:${port}`,
    domains: [hostname, `${hostname}:${port}`, ...shortNames.flatMap((name) => [name, `${name}:${port}`])],
    routes: httpRoutes({ view, hostname, port }),
  };
}

/** The last virtual host of every outbound route configuration: where unknown hosts go. */
export function catchAllVirtualHost(blocked: boolean): Record<string, unknown> {
  const name = blocked ? 'block_all' : 'allow_any';
  return {
    name,
    domains: ['*'],
    routes: [{ name, match: { prefix: '/' }, route: { cluster: blocked ? 'BlackHoleCluster' : passthrough, timeout: { seconds: 0 } } }],
  };
}

/** One route configuration per service port, named after the port, as Istio does for HTTP. */
export function envoyRouteConfiguration(port: number, virtualHosts: Array<Record<string, unknown>>, blocked: boolean) {
  return { name: String(port), virtual_hosts: [...virtualHosts, catchAllVirtualHost(blocked)], validate_clusters: { value: false } };
}

/** The outbound listener of one service port (bind_to_port false: 15001 hands it the connections), its HCM reading RDS. */
export function envoyOutboundListener(port: number, telemetryFields: Record<string, unknown>): Record<string, unknown> {
  const listenerName = `0.0.0.0_${port}`;
  return {
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
              rds: { config_source: ads, route_config_name: String(port) },
              ...telemetryFields,
              http_filters: [
                { name: faultFilterName, typed_config: any(types.fault, {}) },
                { name: 'envoy.filters.http.router', typed_config: any(types.router, {}) },
              ],
            }),
          },
        ],
      },
    ],
  };
}

/** Access logs and tracing on the client side, from Telemetry and the mesh defaults. */
export const clientTelemetryFields = (view: ProxyView) =>
  hcmTelemetry(view.model, { namespace: view.scope.namespace, labels: view.scope.labels }, 'CLIENT').fields;

/** The outbound resources that do not depend on any one service: 15001 and the passthrough and blackhole clusters. */
export function envoyOutboundFixed(view: ProxyView): {
  listeners: Record<string, Record<string, unknown>>;
  clusters: Record<string, Record<string, unknown>>;
} {
  const unknownHosts = registryOnly(view) ? 'BlackHoleCluster' : passthrough;
  return {
    listeners: {
      virtualOutbound: {
        name: 'virtualOutbound',
        address: { socket_address: { address: '0.0.0.0', port_value: sidecarPorts.outbound } },
        use_original_dst: { value: true },
        traffic_direction: 'OUTBOUND',
        filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxy(unknownHosts, unknownHosts)] }],
      },
    },
    clusters: {
      [passthrough]: { name: passthrough, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: { seconds: 10 } },
      BlackHoleCluster: { name: 'BlackHoleCluster', type: 'STATIC', connect_timeout: { seconds: 10 } },
    },
  };
}

/** The inbound resources: 15006 with a chain per served port, the `inbound|<port>||` clusters and the inbound passthrough. */
export function envoyInboundResources(view: ProxyView): {
  listeners: Record<string, Record<string, unknown>>;
  clusters: Record<string, Record<string, unknown>>;
} {
  const inbound = envoyInbound(view, inboundPassthrough);
  return {
    listeners: { virtualInbound: inbound.listener },
    clusters: {
      ...inbound.clusters,
      // Inbound connections go to the application at the address they were sent to.
      [inboundPassthrough]: {
        name: inboundPassthrough,
        type: 'ORIGINAL_DST',
        lb_policy: 'CLUSTER_PROVIDED',
        connect_timeout: { seconds: 10 },
        upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } },
      },
    },
  };
}

/**
 * A sidecar's whole configuration, generated from scratch: the reference the
 * incremental path (cache/outbound-scope.ts, cache/inbound-scope.ts) is built from
 * the same pieces of and tested against. Shapes: resources by type URL, then by name.
 */
export function envoySidecarResources(view: ProxyView): ResourcesByType {
  const listeners: Record<string, Record<string, unknown>> = {};
  const routes: Record<string, Record<string, unknown>> = {};
  const clusters: Record<string, Record<string, unknown>> = {};
  const endpoints: Record<string, Record<string, unknown>> = {};
  const hostsByPort = new Map<number, VisibleService[]>();

  for (const cluster of outboundClusters(view)) {
    clusters[cluster.name] = envoyOutboundCluster(cluster, view.model);
    if (clusters[cluster.name]?.['type'] === 'EDS') {
      endpoints[cluster.name] = clusterLoadAssignment(cluster.name, cluster.endpoints, cluster.port.name);
    }
  }
  for (const visible of view.services) {
    // One virtual host per service and port number (a port number may be listed twice, as kube-dns's 53 for UDP and TCP).
    for (const port of new Set(outboundPorts(visible.service).map((p) => p.port))) {
      hostsByPort.set(port, [...(hostsByPort.get(port) ?? []), visible]);
    }
  }
  const blocked = registryOnly(view);
  const telemetry = clientTelemetryFields(view);
  for (const [port, hosts] of [...hostsByPort].sort((a, b) => a[0] - b[0])) {
    routes[String(port)] = envoyRouteConfiguration(
      port,
      hosts.map((visible) => envoyVirtualHost(view, visible, port)),
      blocked,
    );
    listeners[`0.0.0.0_${port}`] = envoyOutboundListener(port, telemetry);
  }
  const fixed = envoyOutboundFixed(view);
  const inbound = envoyInboundResources(view);
  Object.assign(listeners, fixed.listeners, inbound.listeners);
  // Istio's order: inbound port clusters, then the passthrough, inbound passthrough and blackhole.
  const { [inboundPassthrough]: inboundPassthroughCluster, ...inboundPortClusters } = inbound.clusters;
  Object.assign(clusters, inboundPortClusters, { [passthrough]: fixed.clusters[passthrough] });
  Object.assign(clusters, { [inboundPassthrough]: inboundPassthroughCluster, BlackHoleCluster: fixed.clusters['BlackHoleCluster'] });
  return { [typeUrls.listener]: listeners, [typeUrls.route]: routes, [typeUrls.cluster]: clusters, [typeUrls.endpoint]: endpoints };
}

/** The SPIFFE identities a Kubernetes service's endpoints run as (ServiceEntries have none to check). */
function serviceIdentities(cluster: OutboundCluster, model: MeshModel): string[] {
  if (cluster.service.hostname) return [];
  const accounts = new Set(cluster.endpoints.flatMap((e) => (e.serviceAccount ? [e.serviceAccount] : [])));
  return [...accounts].sort().map((sa) => spiffeIdentity(model.trustDomain ?? 'cluster.local', cluster.service.namespace, sa));
}
