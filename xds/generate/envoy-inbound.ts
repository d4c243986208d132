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
import { appliesTo, authorizationPoliciesFor } from '../security/workload-policies.js';
import { labelsMatch } from '../traffic/host-names.js';
import { emptyIstioConfig } from '../model/istio-config.js';
import type { ProxyView } from '../traffic/proxy-view.js';
import { hcmTelemetry } from '../telemetry/hcm-telemetry.js';
import { networkRbacFilters } from '../security/network-rbac.js';
import type { IRequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';

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

function httpFilters(view: ProxyView, port: number): HttpFilter[] {
  const model = view.model;
  const workload = { namespace: view.scope.namespace, labels: view.scope.labels };
  const rootNamespace = model.rootNamespace ?? 'istio-system';
  const requestAuthentications: IRequestAuthentication[] = (model.istio ?? emptyIstioConfig()).requestAuthentications
    .filter((policy) =>
      appliesTo(policy as { namespace: string; spec: { selector?: { matchLabels?: Record<string, string> } } }, workload, rootNamespace),
    )
    .map((policy) => ({
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: policy.name, namespace: policy.namespace },
      spec: policy.spec,
    }));
  const jwt = requestAuthenticationFilters({
    policies: requestAuthentications,
    target: 'sidecar',
    ...(model.jwks ? { fetchedJwks: model.jwks } : {}),
  });
  const authz = authorizationFilters({
    policies: authorizationPoliciesFor(model, workload),
    trustDomain: model.trustDomain ?? 'cluster.local',
    port,
    target: 'sidecar',
  });
  // Istio's order: CUSTOM, JWT, then AUDIT, DENY, ALLOW.
  return [...authz.custom, ...jwt.filters, ...authz.rbac, { name: 'envoy.filters.http.router', typed_config: any(types.router, {}) }];
}

function inboundFilters(view: ProxyView, port: number, http: boolean): Array<Record<string, unknown>> {
  const cluster = inboundClusterName(port);
  if (!http) {
    // AuthorizationPolicy on a TCP port: network RBAC from the same rules, HTTP-only ones failing closed.
    const authz = authorizationFilters({
      policies: authorizationPoliciesFor(view.model, { namespace: view.scope.namespace, labels: view.scope.labels }),
      trustDomain: view.model.trustDomain ?? 'cluster.local',
      port,
      target: 'sidecar',
    });
    return [
      ...networkRbacFilters([...authz.custom, ...authz.rbac], port).filters,
      { name: 'envoy.filters.network.tcp_proxy', typed_config: any(types.tcpProxy, { stat_prefix: cluster, cluster }) },
    ];
  }
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
        ...hcmTelemetry(view.model, { namespace: view.scope.namespace, labels: view.scope.labels }, 'SERVER').fields,
        // The application learns the caller's identity as Istio's sidecar tells it.
        forward_client_cert_details: 'APPEND_FORWARD',
        set_current_client_cert_details: { uri: true },
      }),
    },
  ];
}

function portChains(view: ProxyView, port: number, http: boolean, mode: MtlsMode): Array<Record<string, unknown>> {
  const mtls = {
    name: `${inboundClusterName(port)}-mtls`,
    filter_chain_match: { destination_port: { value: port }, transport_protocol: 'tls' },
    transport_socket: istioMutualServerTls(),
    filters: inboundFilters(view, port, http),
  };
  const plaintext = (transport?: string) => ({
    name: `${inboundClusterName(port)}-plaintext`,
    filter_chain_match: { destination_port: { value: port }, ...(transport ? { transport_protocol: transport } : {}) },
    filters: inboundFilters(view, port, http),
  });
  switch (mode) {
    // Only the TLS chain matches this port: plaintext finds no chain and is closed.
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
  const workload = { namespace: view.scope.namespace, labels: view.scope.labels };
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
  const chains = ports.flatMap(({ port, http }) => portChains(view, port, http, modeOf(port)));
  // Every other port: the workload's own mode and its authorization, then through to the application.
  const passthrough = passthroughChains(view, passthroughCluster, modeOf());
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

/**
 * The catch-all chains for ports no Service names: they follow the workload's
 * PeerAuthentication mode (STRICT takes only mTLS) and its AuthorizationPolicy as
 * network RBAC, as Istio's passthrough chains do; never an unchecked bypass.
 */
function passthroughChains(view: ProxyView, cluster: string, mode: MtlsMode): Array<Record<string, unknown>> {
  const authz = authorizationFilters({
    policies: authorizationPoliciesFor(view.model, { namespace: view.scope.namespace, labels: view.scope.labels }),
    trustDomain: view.model.trustDomain ?? 'cluster.local',
    // No particular port: rules that name ports cannot match here (ALLOW rules with ports allow nothing extra).
    port: 0,
    target: 'sidecar',
  });
  const filters = [...networkRbacFilters([...authz.custom, ...authz.rbac], 0).filters, tcpProxyTo(cluster)];
  const mtls = {
    name: 'virtualInbound-catchall-mtls',
    filter_chain_match: { transport_protocol: 'tls' },
    transport_socket: istioMutualServerTls(),
    filters,
  };
  const plaintext = (transport?: string) => ({
    name: 'virtualInbound-catchall-tcp',
    ...(transport ? { filter_chain_match: { transport_protocol: transport } } : {}),
    filters,
  });
  switch (mode) {
    case 'STRICT':
      return [mtls];
    case 'DISABLE':
      return [plaintext()];
    default:
      return [mtls, plaintext('raw_buffer')];
  }
}
