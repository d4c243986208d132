// Inbound config for Envoy sidecars: the virtual inbound listener (15006) gets one
// filter chain per port the workload serves, as Istio builds it. The
// PeerAuthentication mode decides the chains: STRICT accepts only Istio mTLS
// (client certificate from the mesh root, via the agent's SDS), PERMISSIVE tells
// TLS from plaintext with the TLS inspector, DISABLE takes plaintext. HTTP ports
// run RequestAuthentication (jwt_authn) and AuthorizationPolicy (ext_authz, RBAC)
// before the router and pass the caller's SPIFFE ID on in x-forwarded-client-cert.
// Pure, golden-tested, strictly decoded.
import { any } from '../protos.js';
import { authorizationFilters, type HttpFilter } from '../security/authorization-policies.js';
import { mtlsModeFor, type MtlsMode } from '../security/peer-authentication-mode.js';
import { requestAuthenticationFilters } from '../security/request-authentication.js';
import { authorizationPoliciesFor, requestAuthenticationsFor } from '../security/workload-policies.js';
import { labelsMatch } from '../traffic/host-names.js';
import { emptyIstioConfig } from '../model/istio-config.js';
import type { ProxyView } from '../traffic/proxy-view.js';
import { hcmTelemetry } from '../telemetry/hcm-telemetry.js';
import { networkRbacFilters } from '../security/network-rbac.js';

const types = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  originalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  tlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  downstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
};

export const inboundClusterName = (port: number) => `inbound|${port}||`;

const sdsSecret = (name: string) => ({
  name,
  sds_config: {
    api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] },
    resource_api_version: 'V3',
  },
});

/** Istio mTLS on the server side: our certificate, a client certificate from the mesh root required. */
const istioMutualServerTls = () => ({
  name: 'envoy.transport_sockets.tls',
  typed_config: any(types.downstreamTls, {
    require_client_certificate: { value: true },
    common_tls_context: {
      alpn_protocols: ['h2', 'http/1.1'],
      tls_certificate_sds_secret_configs: [sdsSecret('default')],
      combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: sdsSecret('ROOTCA') },
    },
  }),
});

/** One workload port's AuthorizationPolicies, as the sidecar enforces them. */
const authorizationAt = (view: ProxyView, port: number) =>
  authorizationFilters({
    policies: authorizationPoliciesFor(view.model, view.scope),
    trustDomain: view.model.trustDomain ?? 'cluster.local',
    port,
    target: 'sidecar',
  });

function httpFilters(view: ProxyView, port: number): HttpFilter[] {
  const jwt = requestAuthenticationFilters({
    policies: requestAuthenticationsFor(view.model, view.scope),
    target: 'sidecar',
    ...(view.model.jwks ? { fetchedJwks: view.model.jwks } : {}),
  });
  const authz = authorizationAt(view, port);
  // Istio's order: CUSTOM, JWT, then AUDIT, DENY, ALLOW.
  return [...authz.custom, ...jwt.filters, ...authz.rbac, { name: 'envoy.filters.http.router', typed_config: any(types.router, {}) }];
}

/** A TCP port (or the catch-all, port 0): AuthorizationPolicy as network RBAC, HTTP-only rules failing closed, then the proxy. */
function tcpFilters(view: ProxyView, port: number, cluster: string): Array<Record<string, unknown>> {
  const authz = authorizationAt(view, port);
  return [...networkRbacFilters([...authz.custom, ...authz.rbac], port).filters, tcpProxyTo(cluster)];
}

function inboundFilters(view: ProxyView, port: number, http: boolean): Array<Record<string, unknown>> {
  const cluster = inboundClusterName(port);
  if (!http) return tcpFilters(view, port, cluster);
  return [
    {
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: any(types.hcm, {
        stat_prefix: `inbound_0.0.0.0_${port}`,
        route_config: {
          name: cluster,
          virtual_hosts: [
            {
              name: `inbound|http|${port}`,
              domains: ['*'],
              routes: [
                {
                  name: 'default',
                  match: { prefix: '/' },
                  route: {
                    cluster,
                    timeout: { seconds: 0 },
                    max_stream_duration: { max_stream_duration: { seconds: 0 }, grpc_timeout_header_max: { seconds: 0 } },
                  },
                },
              ],
            },
          ],
          validate_clusters: { value: false },
        },
        http_filters: httpFilters(view, port),
        // Paths are normalized before policies match them, as Istio's default (BASE plus merged slashes).
        normalize_path: { value: true },
        merge_slashes: true,
        ...hcmTelemetry(view.model, view.scope, 'SERVER').fields,
        // The application learns the caller's identity as Istio's sidecar tells it.
        forward_client_cert_details: 'APPEND_FORWARD',
        set_current_client_cert_details: { uri: true },
      }),
    },
  ];
}

/**
 * The chains for one set of filters under a PeerAuthentication mode: STRICT only
 * mTLS (plaintext finds no chain and is closed), PERMISSIVE both (the TLS inspector
 * tells them apart), DISABLE plaintext. The filters are built once and shared.
 */
function chainsForMode(
  mode: MtlsMode,
  name: string,
  match: Record<string, unknown>,
  filters: Array<Record<string, unknown>>,
): Array<Record<string, unknown>> {
  const mtls = {
    name: `${name}-mtls`,
    filter_chain_match: { ...match, transport_protocol: 'tls' },
    transport_socket: istioMutualServerTls(),
    filters,
  };
  const plaintext = (transport?: string) => {
    const chainMatch = { ...match, ...(transport ? { transport_protocol: transport } : {}) };
    return { name: `${name}-plaintext`, ...(Object.keys(chainMatch).length > 0 ? { filter_chain_match: chainMatch } : {}), filters };
  };
  switch (mode) {
    case 'STRICT':
      return [mtls];
    case 'DISABLE':
      return [plaintext()];
    default:
      return [mtls, plaintext('raw_buffer')];
  }
}

/** The virtual inbound listener and the `inbound|<port>||` clusters it routes to. */
export function envoyInbound(view: ProxyView, passthroughCluster: string) {
  const model = view.model;
  const policies = (model.istio ?? emptyIstioConfig()).peerAuthentications;
  const rootNamespace = model.rootNamespace ?? 'istio-system';
  const workload = view.scope;
  const modeOf = (port?: number) => mtlsModeFor(policies, rootNamespace, workload, port, model.meshConfig?.mtlsMode);
  // Served ports, plus ports a PeerAuthentication of this workload names (they differ from the rest).
  const served = view.inboundPorts();
  const peerAuthenticationPorts = policies
    .filter((p) => p.namespace === workload.namespace && Object.keys(p.spec.selector?.matchLabels ?? {}).length > 0)
    .filter((p) => labelsMatch(p.spec.selector?.matchLabels as Record<string, string>, workload.labels))
    .flatMap((p) => Object.keys(p.spec.portLevelMtls ?? {}).map(Number));
  // Ports an AuthorizationPolicy names are decided on their own chain, so a rule about port X holds on X.
  const authorizationPorts = authorizationPoliciesFor(model, workload).flatMap((policy) =>
    ((policy.spec?.rules ?? []) as Array<{ to?: Array<{ operation?: { ports?: string[]; notPorts?: string[] } }> }>).flatMap((rule) =>
      (rule.to ?? []).flatMap((to) => [...(to.operation?.ports ?? []), ...(to.operation?.notPorts ?? [])].map(Number)),
    ),
  );
  const named = [...peerAuthenticationPorts, ...authorizationPorts].filter(
    (port) => Number.isInteger(port) && port > 0 && port < 65536 && port !== 15006 && !served.some((s) => s.port === port),
  );
  const ports = [...served, ...[...new Set(named)].map((port) => ({ port, http: false }))].sort((a, b) => a.port - b.port);
  const chains = ports.flatMap(({ port, http }) =>
    chainsForMode(modeOf(port), inboundClusterName(port), { destination_port: { value: port } }, inboundFilters(view, port, http)),
  );
  // Every other port, as Istio's passthrough chains: the workload's own mode and its authorization (rules
  // naming ports cannot match there; named ports have chains above), then through to the application.
  const passthrough = chainsForMode(modeOf(), 'virtualInbound-catchall', {}, tcpFilters(view, 0, passthroughCluster));
  const listener = {
    name: 'virtualInbound',
    address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
    traffic_direction: 'INBOUND',
    listener_filters: [
      { name: 'envoy.filters.listener.original_dst', typed_config: any(types.originalDst, {}) },
      { name: 'envoy.filters.listener.tls_inspector', typed_config: any(types.tlsInspector, {}) },
    ],
    filter_chains: [
      // A connection to 15006 itself would loop.
      {
        name: 'virtualInbound-blackhole',
        filter_chain_match: { destination_port: { value: 15006 } },
        filters: [tcpProxyTo('BlackHoleCluster')],
      },
      ...chains,
      ...passthrough,
    ],
  };
  // Inbound connections go to the application on the port they were sent to, from 127.0.0.6 as in Istio.
  const clusters = Object.fromEntries(
    ports.map(({ port }) => [
      inboundClusterName(port),
      {
        name: inboundClusterName(port),
        type: 'ORIGINAL_DST',
        lb_policy: 'CLUSTER_PROVIDED',
        connect_timeout: { seconds: 10 },
        upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } },
      },
    ]),
  );
  return { listener, clusters };
}

const tcpProxyTo = (cluster: string) => ({
  name: 'envoy.filters.network.tcp_proxy',
  typed_config: any(types.tcpProxy, { stat_prefix: cluster, cluster }),
});
