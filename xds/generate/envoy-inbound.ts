// Inbound config for Envoy sidecars: the virtual inbound listener (15006) gets one
// filter chain per port the workload serves, as Istio builds it. The
// PeerAuthentication mode decides the chains: STRICT accepts only Istio mTLS
// (client certificate from the mesh root, via the agent's SDS), PERMISSIVE tells
// TLS from plaintext with the TLS inspector, DISABLE takes plaintext. HTTP ports
// run RequestAuthentication (jwt_authn) and AuthorizationPolicy (ext_authz, RBAC)
// before the router and pass the caller's SPIFFE ID on in x-forwarded-client-cert.
// Pure, golden-tested, strictly decoded.
import { upstreamProtocolFields } from '../traffic/upstream-protocol.js';
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
import { listenerProtocol, type Protocol } from '../traffic/port-protocol.js';
import { httpInspector, plaintextHttpAlpns, tlsInspector } from './envoy-outbound.js';

const types = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  originalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
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

/**
 * Istio mTLS on the server side: our certificate, a client certificate from the mesh root
 * required. ALPN as Istio's (authn policy_applier.go): HTTP chains offer h2 and
 * http/1.1, TCP chains istio-peer-exchange first.
 */
const istioMutualServerTls = (http: boolean) => ({
  name: 'envoy.transport_sockets.tls',
  typed_config: any(types.downstreamTls, {
    require_client_certificate: { value: true },
    common_tls_context: {
      alpn_protocols: http ? ['h2', 'http/1.1'] : ['istio-peer-exchange', 'h2', 'http/1.1'],
      tls_certificate_sds_secret_configs: [sdsSecret('default')],
      combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: sdsSecret('ROOTCA') },
    },
  }),
});

/** One workload port's AuthorizationPolicies, as the sidecar enforces them. */
const authorizationAt = (view: ProxyView, port: number, forTcp = false) =>
  authorizationFilters({
    policies: authorizationPoliciesFor(view.model, view.scope),
    trustDomain: view.model.trustDomain ?? 'cluster.local',
    port,
    target: 'sidecar',
    ...(forTcp ? { forTcp } : {}),
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

/** A TCP port (or the catch-all, port 0): AuthorizationPolicy as network RBAC and ext_authz (security/network-rbac.ts), then the proxy. */
function tcpFilters(view: ProxyView, port: number, cluster: string): Array<Record<string, unknown>> {
  // Built for TCP as Istio does: HTTP-only attributes dropped from DENY and AUDIT rules, ALLOW rules naming them left out.
  const authz = authorizationAt(view, port, true);
  return [...networkRbacFilters([...authz.custom, ...authz.rbac]).filters, tcpProxyTo(cluster)];
}

/**
 * An HTTP chain's filters: the HCM with one route to `cluster`. `port` decides the
 * policies (0 for the passthrough); stat prefix and virtual host name as Istio's
 * (`inbound_0.0.0.0_<port>;`, or the cluster's name for the passthrough).
 */
function httpChainFilters(
  view: ProxyView,
  port: number,
  cluster: string,
  statPrefix: string,
  grpc: boolean,
): Array<Record<string, unknown>> {
  return [
    {
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: any(types.hcm, {
        stat_prefix: statPrefix,
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
                    // Istio retries a request the application reset before reading it (route.go,
                    // BuildDefaultHTTPInboundRoute), except on gRPC ports, where streams make that unsafe.
                    ...(grpc ? {} : { retry_policy: { retry_on: 'reset-before-request', num_retries: { value: 2 } } }),
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
        // Istio's inbound answers `server: istio-envoy` (outbound keeps Envoy's default).
        server_name: 'istio-envoy',
        set_current_client_cert_details: { uri: true },
      }),
    },
  ];
}

/** ALPNs of Istio's clients: HTTP over mTLS (the outbound ALPN filter), any Istio mTLS, TCP over mTLS with metadata exchange. */
const mtlsHttpAlpns = ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
const allIstioMtlsAlpns = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
const mtlsTcpWithMxcAlpns = ['istio-peer-exchange', 'istio'];

/** One chain of a port: what it matches, whether it terminates Istio mTLS, HTTP or TCP filters (Istio's FilterChainMatchOptions). */
interface ChainOption {
  alpns?: string[];
  transport: 'tls' | 'raw_buffer';
  http: boolean;
  mtls: boolean;
}

const option = (transport: ChainOption['transport'], http: boolean, mtls: boolean, alpns?: string[]): ChainOption => ({
  transport,
  http,
  mtls,
  ...(alpns ? { alpns } : {}),
});

/**
 * The chains of one port under a PeerAuthentication mode, by listener protocol,
 * exactly as istiod's tables (pilot/pkg/networking/core/filterchain_options.go):
 * STRICT takes only mTLS; PERMISSIVE tells Istio mTLS (by ALPN), other TLS and
 * plaintext apart; DISABLE takes plaintext. A detected port (AUTO) has HTTP
 * chains for what the HTTP inspector or the client's ALPN says is HTTP, and TCP
 * chains for the rest.
 */
export function chainOptions(mode: MtlsMode, protocol: 'HTTP' | 'TCP' | 'AUTO'): ChainOption[] {
  switch (protocol) {
    case 'HTTP':
      if (mode === 'STRICT') return [option('tls', true, true)];
      if (mode === 'DISABLE') return [option('raw_buffer', true, false)];
      return [option('tls', true, true, allIstioMtlsAlpns), option('raw_buffer', true, false)];
    case 'AUTO':
      if (mode === 'STRICT') return [option('tls', true, true, mtlsHttpAlpns), option('tls', false, true)];
      if (mode === 'DISABLE') return [option('raw_buffer', true, false, plaintextHttpAlpns), option('raw_buffer', false, false)];
      return [
        option('tls', true, true, mtlsHttpAlpns),
        option('raw_buffer', true, false, plaintextHttpAlpns),
        option('tls', false, true, mtlsTcpWithMxcAlpns),
        option('raw_buffer', false, false),
        option('tls', false, false),
      ];
    default:
      if (mode === 'STRICT') return [option('tls', false, true)];
      if (mode === 'DISABLE') return [option('raw_buffer', false, false)];
      return [option('tls', false, true, allIstioMtlsAlpns), option('tls', false, false), option('raw_buffer', false, false)];
  }
}

/** What one chain set is for: a served port (`0.0.0.0_<port>`, `inbound|<port>||`) or the passthrough (port 0, or a port only policies name). */
interface ChainTarget {
  port: number;
  protocol: 'HTTP' | 'TCP' | 'AUTO';
  passthrough: boolean;
  /** A gRPC (or gRPC-Web) port: no default retry on its route. */
  grpc?: boolean;
}

function chainsFor(view: ProxyView, mode: MtlsMode, target: ChainTarget, passthroughCluster: string): Array<Record<string, unknown>> {
  const cluster = target.passthrough ? passthroughCluster : inboundClusterName(target.port);
  // Built once per kind and shared by the chains that use them.
  let http: Array<Record<string, unknown>> | undefined;
  let tcp: Array<Record<string, unknown>> | undefined;
  const statPrefix = target.passthrough ? `${cluster};` : `inbound_0.0.0.0_${target.port};`;
  return chainOptions(mode, target.protocol).map((opt) => {
    const filters = opt.http
      ? (http ??= httpChainFilters(view, target.port, cluster, statPrefix, target.grpc === true))
      : (tcp ??= tcpFilters(view, target.port, cluster));
    const name = target.passthrough ? (opt.http ? 'virtualInbound-catchall-http' : 'virtualInbound') : `0.0.0.0_${target.port}`;
    return {
      name,
      filter_chain_match: {
        ...(target.port > 0 ? { destination_port: { value: target.port } } : {}),
        transport_protocol: opt.transport,
        ...(opt.alpns ? { application_protocols: opt.alpns } : {}),
      },
      ...(opt.mtls ? { transport_socket: istioMutualServerTls(opt.http) } : {}),
      filters,
    };
  });
}

/** A listener filter turned off on some destination ports (Istio's listenerPredicateExcludePorts), or on all others (`include`). */
function portPredicate(ports: number[], include: boolean): Record<string, unknown> {
  const ranges = ports.map((port) => ({ destination_port_range: { start: port, end: port + 1 } }));
  const exclude = ranges.length > 1 ? { or_match: { rules: ranges } } : (ranges[0] as Record<string, unknown>);
  return include ? { not_match: exclude } : exclude;
}

/**
 * The listener filters of the virtual inbound listener, from what its chains
 * match (Istio's populateListenerFilters): original_dst; the TLS inspector where
 * a chain matches TLS and the HTTP inspector where one matches plaintext HTTP
 * ALPNs, each turned off on the ports that need it not (a server-first protocol
 * must not wait for an inspector).
 */
interface ChainMatch {
  destination_port?: { value: number };
  transport_protocol?: string;
  application_protocols?: string[];
}

function inboundListenerFilters(chains: Array<{ filter_chain_match?: ChainMatch }>): Array<Record<string, unknown>> {
  const inspectors = new Map<number, { tls: boolean; http: boolean }>();
  for (const chain of chains) {
    const match = chain.filter_chain_match ?? {};
    const port = match.destination_port?.value ?? 0;
    const seen = inspectors.get(port) ?? { tls: false, http: false };
    seen.tls ||= match.transport_protocol === 'tls';
    seen.http ||= ((match.application_protocols ?? []) as string[]).some((alpn) => alpn === 'http/1.1' || alpn === 'h2c');
    inspectors.set(port, seen);
  }
  const ports = [...inspectors.keys()].sort((a, b) => a - b);
  const filters: Array<Record<string, unknown>> = [
    { name: 'envoy.filters.listener.original_dst', typed_config: any(types.originalDst, {}) },
  ];
  if (ports.some((port) => inspectors.get(port)?.tls)) {
    const defaultOn = inspectors.get(0)?.tls ?? false;
    const listed = ports.filter((port) => port !== 0 && (inspectors.get(port)?.tls ?? false) !== defaultOn);
    filters.push(listed.length === 0 ? tlsInspector() : { ...tlsInspector(), filter_disabled: portPredicate(listed, !defaultOn) });
  }
  if (ports.some((port) => inspectors.get(port)?.http)) {
    const off = ports.filter((port) => !inspectors.get(port)?.http);
    filters.push(off.length === 0 ? httpInspector() : { ...httpInspector(), filter_disabled: portPredicate(off, false) });
  }
  return filters;
}

/** The virtual inbound listener and the `inbound|<port>||` clusters it routes to (pilot/pkg/networking/core/listener_inbound.go). */
export function envoyInbound(view: ProxyView, passthroughCluster: string) {
  const model = view.model;
  const policies = (model.istio ?? emptyIstioConfig()).peerAuthentications;
  const rootNamespace = model.rootNamespace ?? 'istio-system';
  const workload = view.scope;
  const modeOf = (port?: number) => mtlsModeFor(policies, rootNamespace, workload, port, model.meshConfig?.mtlsMode);
  const served = view.inboundPorts();
  // Ports a PeerAuthentication of this workload names get their own passthrough chains (Istio's ForPassthrough).
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
  const named = [...new Set([...peerAuthenticationPorts, ...authorizationPorts])]
    .filter((port) => Number.isInteger(port) && port > 0 && port < 65536 && port !== 15006 && !served.some((s) => s.port === port))
    .sort((a, b) => a - b);
  const servedTargets = served.flatMap(({ port, protocol }: { port: number; protocol: Protocol }) => {
    const lp = listenerProtocol(protocol);
    return lp === 'NONE' ? [] : [{ port, protocol: lp, passthrough: false, grpc: protocol === 'GRPC' || protocol === 'GRPC-Web' }];
  });
  // Istio's order: the blackhole, the passthrough chains (all ports, then ports policies name), then the served ports.
  const passthrough = [
    ...chainsFor(view, modeOf(), { port: 0, protocol: 'AUTO', passthrough: true }, passthroughCluster),
    ...named.flatMap((port) => chainsFor(view, modeOf(port), { port, protocol: 'AUTO', passthrough: true }, passthroughCluster)),
  ];
  const chains = servedTargets.flatMap((target) => chainsFor(view, modeOf(target.port), target, passthroughCluster));
  const filterChains = [
    // A connection to 15006 itself would loop.
    {
      name: 'virtualInbound-blackhole',
      filter_chain_match: { destination_port: { value: 15006 } },
      filters: [tcpProxyTo('BlackHoleCluster')],
    },
    ...passthrough,
    ...chains,
  ];
  const listener = {
    name: 'virtualInbound',
    address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
    traffic_direction: 'INBOUND',
    continue_on_listener_filters_timeout: true,
    listener_filters: inboundListenerFilters(filterChains),
    // MeshConfig's protocolDetectionTimeout: 0, no timeout, by default.
    listener_filters_timeout: {},
    filter_chains: filterChains,
  };
  // Inbound connections go to the application on the port they were sent to, from 127.0.0.6 as in Istio.
  // HTTP/2 to the app on gRPC and HTTP2 ports, the caller's protocol on detected ones (Istio's setUpstreamProtocol).
  const protocolOf = new Map(served.map(({ port, protocol }: { port: number; protocol: Protocol }) => [port, protocol]));
  const clusters = Object.fromEntries(
    servedTargets.map(({ port }) => [
      inboundClusterName(port),
      {
        name: inboundClusterName(port),
        type: 'ORIGINAL_DST',
        lb_policy: 'CLUSTER_PROVIDED',
        connect_timeout: { seconds: 10 },
        upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } },
        ...upstreamProtocolFields(protocolOf.get(port) ?? 'UnsupportedProtocol', 'sidecar'),
      },
    ]),
  );
  return { listener, clusters };
}

const tcpProxyTo = (cluster: string) => ({
  name: 'envoy.filters.network.tcp_proxy',
  typed_config: any(types.tcpProxy, { stat_prefix: cluster, cluster }),
});
