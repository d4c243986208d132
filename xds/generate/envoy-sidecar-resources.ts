// xDS for Envoy sidecars (Istio's proxyv2), in Istio's shapes and names: the
// virtual outbound listener on 15001 hands captured connections to per-port
// listeners (bind_to_port false) whose routes pick the service by Host and then
// follow its VirtualService; clusters are outbound|<port>|<subset>|<host> with the
// DestinationRule's policy and auto mTLS (Istio mTLS via the agent's SDS secrets
// 'default' and 'ROOTCA' to endpoints with the sidecar, plaintext to the rest);
// the virtual inbound listener on 15006 passes inbound connections to the
// application. Pure, golden-tested, strictly decoded.
import { portProtocol } from '../traffic/port-protocol.js';
import { upstreamProtocolFields } from '../traffic/upstream-protocol.js';
import { any, typeUrls } from '../protos.js';
import { clusterLoadAssignment } from '../traffic/cluster-load-assignment.js';
import { clusterPolicyFields, type PolicyFields } from '../traffic/cluster-policy.js';
import { httpRoutes } from '../traffic/http-routes.js';
import { outboundClusters, type OutboundCluster } from '../traffic/outbound-clusters.js';
import type { ProxyView, VisibleService } from '../traffic/proxy-view.js';
import type { ResourcesByType } from './grpc-client-resources.js';
import { envoyInbound } from './envoy-inbound.js';
import {
  claimsByListener,
  listenerOrder,
  outboundListener,
  outboundListenerClaims,
  routedPorts,
  sniffedRouteConfiguration,
  type ListenerClaim,
  type OutboundListenerContext,
} from './envoy-outbound.js';
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

/**
 * Istio mutual TLS to the peer, whose SPIFFE identity is checked against the trust domain's root. The SNI
 * is Istio's `outbound_.<port>_.<subset>_.<host>` (model.BuildDNSSrvSubsetKey), which gateways in
 * AUTO_PASSTHROUGH route by, so it names the subset.
 */
function istioMutualTls(host: string, port: number, identities: string[], subset: string | undefined) {
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
      sni: `outbound_.${port}_.${subset ?? ''}_.${host}`,
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
function transportSocket(
  tls: PolicyFields['tls'],
  host: string,
  port: number,
  identities: string[],
  subset: string | undefined,
): Record<string, unknown> {
  switch (tls?.mode) {
    case 'DISABLE':
      return {};
    case 'ISTIO_MUTUAL':
      return { transport_socket: istioMutualTls(host, port, identities, subset) };
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
          // Without an sni, Istio sends none and sets auto_sni (each request's host; see upstream-protocol.ts).
          typed_config: any(types.upstreamTls, {
            ...(tls.sni ? { sni: tls.sni } : {}),
            common_tls_context: { ...validation, ...certificate },
          }),
        },
      };
    }
    default:
      return {
        transport_socket_matches: [
          {
            name: 'tlsMode-istio',
            match: { fields: { tlsMode: { stringValue: 'istio' } } },
            transport_socket: istioMutualTls(host, port, identities, subset),
          },
          { name: 'tlsMode-disabled', match: {}, transport_socket: rawBuffer() },
        ],
      };
  }
}

/** A ServiceEntry's resolution picks the discovery type: EDS for Kubernetes and STATIC, DNS resolved by Envoy, or the original destination. */
export function envoyOutboundCluster(cluster: OutboundCluster, model: MeshModel): Record<string, unknown> {
  const base = {
    name: cluster.name,
    connect_timeout: { seconds: 10 },
    ...clusterPolicyFields(cluster.policy, 'sidecar'),
    ...upstreamProtocolFields(portProtocol(cluster.service, cluster.port), 'sidecar', cluster.policy.tls),
  };
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
      : transportSocket(cluster.policy.tls, cluster.hostname, cluster.port.port, serviceIdentities(cluster, model), cluster.subset);
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
                    // A DNS entry without endpoints dials its host at the port's targetPort, as Istio (serviceentry/conversion.go).
                    socket_address: {
                      address: endpoint.address,
                      port_value: endpoint.ports[cluster.port.name] ?? cluster.port.targetPort ?? cluster.port.port,
                    },
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

/**
 * The virtual host of one service port in the per-port route configuration, named
 * `<hostname>:<port>`, with the domains Istio gives it for this caller
 * (traffic/host-names.ts virtualHostDomains: the short name only for callers in the
 * service's namespace, so the domains depend on the proxy's namespace, which keys
 * its outbound group). Without ports: the route configuration ignores the port in
 * host matching, as Istio's sidecar routes do (pilot/pkg/networking/core/httproute.go).
 */
export function envoyVirtualHost(view: ProxyView, visible: VisibleService, port: number): Record<string, unknown> {
  const { hostname } = visible;
  return {
    name: `${hostname}:${port}`,
    domains: view.domainsOf(visible),
    routes: httpRoutes({ view, hostname, port }),
    // Istio's default proxy headers (pilot/pkg/networking/util/proxy_headers.go): x-envoy-attempt-count goes upstream.
    include_request_attempt_count: true,
  };
}

/**
 * Drops from each virtual host the domains an earlier one already has (Envoy refuses a
 * route configuration with a domain twice; Istio's dedupeDomains keeps the first).
 * Virtual hosts are in hostname order, as both generators lay them out.
 */
export function dedupeVirtualHostDomains(virtualHosts: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  const seen = new Set<string>();
  return virtualHosts.flatMap((virtualHost) => {
    const domains = (virtualHost['domains'] as string[]).filter((domain) => !seen.has(domain.toLowerCase()));
    for (const domain of domains) seen.add(domain.toLowerCase());
    if (domains.length === (virtualHost['domains'] as string[]).length) return [virtualHost];
    return domains.length > 0 ? [{ ...virtualHost, domains }] : [];
  });
}

/**
 * The last virtual host of every outbound route configuration: where unknown hosts go, as
 * Istio's buildCatchAllVirtualHost (httproute.go): `allow_any` to the passthrough cluster
 * without timeouts, or `block_all` answering 502 itself.
 */
export function catchAllVirtualHost(blocked: boolean): Record<string, unknown> {
  const name = blocked ? 'block_all' : 'allow_any';
  const action = blocked
    ? { direct_response: { status: 502 } }
    : { route: { cluster: passthrough, timeout: { seconds: 0 }, max_grpc_timeout: { seconds: 0 } } };
  return { name, domains: ['*'], routes: [{ name, match: { prefix: '/' }, ...action }], include_request_attempt_count: true };
}

/**
 * What every outbound route configuration ends with (Istio's buildSidecarOutboundHTTPRouteConfig):
 * the catch-all virtual host, no cluster validation, and host matching that ignores the port
 * (domains are listed without ports).
 */
export function routeConfigurationTail(blocked: boolean): Record<string, unknown> {
  return { virtual_hosts: [catchAllVirtualHost(blocked)], validate_clusters: { value: false }, ignore_port_in_host_matching: true };
}

/** One route configuration per service port, named after the port, as Istio does for HTTP. */
export function envoyRouteConfiguration(port: number, virtualHosts: Array<Record<string, unknown>>, blocked: boolean) {
  const tail = routeConfigurationTail(blocked);
  return {
    name: String(port),
    ...tail,
    virtual_hosts: [...dedupeVirtualHostDomains(virtualHosts), ...(tail['virtual_hosts'] as Array<Record<string, unknown>>)],
  };
}

/** What every outbound listener of one proxy shares: its client-side telemetry and where unknown destinations go. */
export function outboundListenerContext(view: ProxyView): OutboundListenerContext {
  return { telemetry: clientTelemetryFields(view), unknownHosts: registryOnly(view) ? 'BlackHoleCluster' : passthrough };
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
        filter_chains: [
          // A connection to 15001 itself would loop (Istio's blackholeFilterChain).
          {
            name: 'virtualOutbound-blackhole',
            filter_chain_match: { destination_port: { value: sidecarPorts.outbound } },
            filters: [tcpProxy('BlackHoleCluster', 'BlackHoleCluster')],
          },
          { name: 'virtualOutbound-catchall-tcp', filters: [tcpProxy(unknownHosts, unknownHosts)] },
        ],
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
  const claims: ListenerClaim[] = [];
  for (const visible of view.services) {
    for (const port of routedPorts(visible.service)) hostsByPort.set(port, [...(hostsByPort.get(port) ?? []), visible]);
    claims.push(...outboundListenerClaims(view, visible));
  }
  const blocked = registryOnly(view);
  const context = outboundListenerContext(view);
  const referenced = new Set<string>();
  const built = [...claimsByListener(claims)].flatMap(([name, group]) => {
    const out = outboundListener(group, context);
    for (const rds of out?.rds ?? []) referenced.add(rds);
    return out ? [{ name, port: group[0]?.port ?? 0, listener: out.listener }] : [];
  });
  for (const { name, listener } of built.sort(listenerOrder)) listeners[name] = listener;
  // Route configurations only where a listener reads them: `<port>` for the shared HTTP
  // chains, `<host>:<port>` for a detected port with an address (its virtual host alone).
  for (const [port, hosts] of [...hostsByPort].sort((a, b) => a[0] - b[0])) {
    if (!referenced.has(String(port))) continue;
    routes[String(port)] = envoyRouteConfiguration(
      port,
      hosts.map((visible) => envoyVirtualHost(view, visible, port)),
      blocked,
    );
  }
  for (const claim of claims) {
    if (claim.listenerProtocol !== 'AUTO' || claim.rds === String(claim.port) || routes[claim.rds]) continue;
    const visible = view.service(claim.hostname);
    if (visible) routes[claim.rds] = sniffedRouteConfiguration(claim.rds, envoyVirtualHost(view, visible, claim.port));
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
