// The listeners and route configurations of a gateway proxy (Istio's proxyv2 in
// router mode), from its merged Gateways (traffic/gateway-servers.ts) and the
// VirtualServices bound to them, as istiod builds them
// (pilot/pkg/networking/core/gateway.go buildGatewayListeners,
// buildGatewayHTTPRouteConfig; listener.go BuildListenerTLSContext):
// - a listener `<bind or 0.0.0.0>_<port>` per server port, bound to the port;
// - HTTP, HTTP2, GRPC servers on a port: one chain, an HCM reading `http.<port>`;
// - HTTPS servers terminating TLS: a chain per server matched by SNI (its hosts),
//   with its DownstreamTlsContext and an HCM reading its own route configuration;
// - TCP servers, and TLS servers terminating TLS: tcp_proxy by the first bound
//   VirtualService `tcp` route that matches the server's port and gateway;
// - TLS PASSTHROUGH: a chain per bound `tls` route match, by its SNI hosts;
// - TLS AUTO_PASSTHROUGH: a chain per covered service port and subset, by Istio mTLS's
//   SNI `outbound_.<port>_.<subset>_.<host>`, to an SNI-DNAT cluster of that name;
// - route configurations: a virtual host per (hostname, port) bound, Istio's names
//   and domains, `require_tls: ALL` for httpsRedirect, a 404 blackhole when none.
// Certificates named by `credentialName` come over SDS on ADS as
// `kubernetes://<name>` (`-cacert` for MUTUAL's CA), as istiod names them.
// Pure: the cache (cache/gateway-scope.ts) and tests call it.
import { any } from '../protos.js';
import {
  type MergedGateway,
  type GatewayServer,
  isHttpsTerminated,
  isPassthroughServer,
  virtualServicesForGateway,
} from '../traffic/gateway-servers.js';
import { resolveHost } from '../traffic/host-names.js';
import { faultFilterName, outboundClusterName, resolveGatewayName, virtualServiceRoutes } from '../traffic/http-routes.js';
import { isHttp, parseProtocol } from '../traffic/port-protocol.js';
import type { ProxyView } from '../traffic/proxy-view.js';
import type { ConfigObject, VirtualServiceSpec } from '../model/istio-config.js';
import type { PolicyFields } from '../traffic/cluster-policy.js';
import { serviceClusters, type OutboundCluster } from '../traffic/outbound-clusters.js';
import { clientTelemetryFields, envoyOutboundCluster } from './envoy-sidecar-resources.js';
import { tcpProxyFields, tlsInspector } from './envoy-outbound.js';

const types = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  fault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  downstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
};

const ads = { ads: {}, resource_api_version: 'V3' };

type Resource = Record<string, unknown>;

/** What a gateway proxy gets from its Gateways: listeners and route configurations by name, and what Weft left out. */
export interface GatewayResources {
  listeners: Record<string, Resource>;
  routes: Record<string, Resource>;
  /** AUTO_PASSTHROUGH servers' SNI-DNAT clusters (`outbound_.<port>_.<subset>_.<host>`); other clusters come from the outbound group. */
  clusters: Record<string, Resource>;
  /** Whether some server is AUTO_PASSTHROUGH: its chains and clusters read every visible service. */
  autoPassthrough: boolean;
  /** Hosts of DNS-resolved services among those clusters: their endpoints are inline, so an endpoint change changes them. */
  dnsHosts: Set<string>;
  /** Servers or routes not applied, with why (AUTO_PASSTHROUGH, a server with no route to take...). */
  notApplied: string[];
}

/** An SDS secret from the pilot-agent's own SDS server (the workload certificate `default`, `ROOTCA`, `file-cert:`/`file-root:`). */
const agentSecret = (name: string) => ({
  name,
  sds_config: {
    api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] },
    resource_api_version: 'V3',
  },
});

/** A credentialName secret: served by the control plane over ADS (pilot/pkg/security/model ConstructSdsSecretConfigForCredential). */
const credentialSecret = (credentialName: string) => ({ name: credentialResourceName(credentialName), sds_config: ads });

/** Istio's credentials.ToResourceName: a plain name is a Kubernetes Secret, `kubernetes://<name>`; typed names stay. */
export function credentialResourceName(name: string): string {
  if (name.startsWith('builtin://')) return 'default';
  if (/^(kubernetes|kubernetes-gateway|configmap):\/\//.test(name)) return name;
  return `kubernetes://${name}`;
}

type ServerTls = NonNullable<GatewayServer['server']['tls']>;

const tlsVersions: Record<string, string> = {
  TLS_AUTO: 'TLS_AUTO',
  TLSV1_0: 'TLSv1_0',
  TLSV1_1: 'TLSv1_1',
  TLSV1_2: 'TLSv1_2',
  TLSV1_3: 'TLSv1_3',
};

const exactMatches = (names: ReadonlyArray<string> | undefined) => (names ?? []).map((exact) => ({ exact }));

/**
 * A server's DownstreamTlsContext, as istiod's BuildListenerTLSContext: ALPN h2 and
 * http/1.1 (with istio-peer-exchange first for an ISTIO_MUTUAL TCP server); a client
 * certificate required for MUTUAL and ISTIO_MUTUAL; ISTIO_MUTUAL: the workload's `default`
 * certificate and `ROOTCA`; `credentialName`: `kubernetes://<name>` over ADS, MUTUAL and
 * OPTIONAL_MUTUAL validating with `kubernetes://<name>-cacert` (or `caCertCredentialName`);
 * else the file paths as pilot-agent's SDS names them (`file-cert:<cert>~<key>`,
 * `file-root:<ca>`). SIMPLE and MUTUAL carry `minProtocolVersion`, `maxProtocolVersion` and
 * `cipherSuites`.
 */
export function gatewayTlsContext(tls: ServerTls, terminatingTcp: boolean): Resource {
  const mode = tls.mode ?? 'SIMPLE';
  const extra = tls as ServerTls & {
    credentialNames?: string[];
    caCertCredentialName?: string;
    verifyCertificateSpki?: string[];
    verifyCertificateHash?: string[];
    caCrl?: string;
    insecureSkipVerify?: boolean;
  };
  const common: Resource = {
    alpn_protocols: mode === 'ISTIO_MUTUAL' && terminatingTcp ? ['istio-peer-exchange', 'h2', 'http/1.1'] : ['h2', 'http/1.1'],
  };
  const requireClient = mode === 'MUTUAL' || mode === 'ISTIO_MUTUAL';
  const validateClient = requireClient || mode === 'OPTIONAL_MUTUAL';
  const credentialNames = extra.credentialNames?.length ? extra.credentialNames : tls.credentialName ? [tls.credentialName] : [];
  if (mode === 'ISTIO_MUTUAL') {
    common['tls_certificate_sds_secret_configs'] = [agentSecret('default')];
    common['combined_validation_context'] = {
      default_validation_context: validationDefaults(tls.subjectAltNames, extra.caCrl, extra.insecureSkipVerify),
      validation_context_sds_secret_config: agentSecret('ROOTCA'),
    };
  } else if (credentialNames.length > 0) {
    common['tls_certificate_sds_secret_configs'] = credentialNames.map(credentialSecret);
    if (validateClient) {
      const ca = extra.caCertCredentialName ?? `${credentialNames[0]}-cacert`;
      common['combined_validation_context'] = {
        default_validation_context: {
          ...(tls.subjectAltNames?.length ? { match_subject_alt_names: exactMatches(tls.subjectAltNames) } : {}),
          ...(extra.verifyCertificateSpki?.length ? { verify_certificate_spki: extra.verifyCertificateSpki } : {}),
          ...(extra.verifyCertificateHash?.length ? { verify_certificate_hash: extra.verifyCertificateHash } : {}),
          ...(extra.insecureSkipVerify ? { trust_chain_verification: 'ACCEPT_UNTRUSTED' } : {}),
        },
        validation_context_sds_secret_config: credentialSecret(ca),
      };
    } else if (tls.subjectAltNames?.length) {
      common['validation_context'] = { match_subject_alt_names: exactMatches(tls.subjectAltNames) };
    }
  } else {
    // Files mounted in the gateway pod, read and rotated by pilot-agent's SDS (security.SdsCertificateConfig).
    const certificate = tls.serverCertificate && tls.privateKey ? `file-cert:${tls.serverCertificate}~${tls.privateKey}` : 'default';
    common['tls_certificate_sds_secret_configs'] = [agentSecret(certificate)];
    if (validateClient) {
      common['combined_validation_context'] = {
        default_validation_context: validationDefaults(tls.subjectAltNames, extra.caCrl, extra.insecureSkipVerify),
        validation_context_sds_secret_config: agentSecret(tls.caCertificates ? `file-root:${tls.caCertificates}` : 'ROOTCA'),
      };
    }
  }
  if (mode === 'SIMPLE' || mode === 'MUTUAL') {
    const params: Resource = {};
    const min = tls.minProtocolVersion && tls.minProtocolVersion !== 'TLS_AUTO' ? tlsVersions[tls.minProtocolVersion] : undefined;
    const max = tls.maxProtocolVersion && tls.maxProtocolVersion !== 'TLS_AUTO' ? tlsVersions[tls.maxProtocolVersion] : undefined;
    if (min) params['tls_minimum_protocol_version'] = min;
    if (max) params['tls_maximum_protocol_version'] = max;
    if (tls.cipherSuites?.length) params['cipher_suites'] = tls.cipherSuites;
    if (Object.keys(params).length > 0) common['tls_params'] = params;
  }
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: any(types.downstreamTls, { common_tls_context: common, require_client_certificate: { value: requireClient } }),
  };
}

function validationDefaults(subjectAltNames: string[] | undefined, crl: string | undefined, insecure: boolean | undefined): Resource {
  return {
    ...(subjectAltNames?.length ? { match_subject_alt_names: exactMatches(subjectAltNames) } : {}),
    ...(crl ? { crl: { filename: crl } } : {}),
    ...(insecure ? { trust_chain_verification: 'ACCEPT_UNTRUSTED' } : {}),
  };
}

/**
 * The HCM of a gateway chain, as istiod's buildGatewayConnectionManager: the client's
 * address from the connection (use_remote_address), XFCC sanitized and set, RDS by name,
 * the fault filter then the router.
 */
function gatewayHcm(statPrefix: string, rds: string, telemetry: Resource): Resource {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: any(types.hcm, {
      stat_prefix: statPrefix,
      rds: { config_source: ads, route_config_name: rds },
      ...telemetry,
      http_filters: [
        { name: faultFilterName, typed_config: any(types.fault, {}) },
        { name: 'envoy.filters.http.router', typed_config: any(types.router, {}) },
      ],
      use_remote_address: { value: true },
      // Istio's gateways answer `server: istio-envoy` (util.GetProxyHeadersFromProxyConfig).
      server_name: 'istio-envoy',
      forward_client_cert_details: 'SANITIZE_SET',
      set_current_client_cert_details: { subject: { value: true }, cert: true, dns: true, uri: true },
      http_protocol_options: {},
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      normalize_path: { value: true },
      path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
      // No stream idle timeout, as istiod sets it (buildHTTPConnectionManager).
      stream_idle_timeout: {},
    }),
  };
}

interface GatewayChain {
  sniHosts?: string[];
  applicationProtocols?: string[];
  tls?: Resource;
  filters: Array<Record<string, unknown>>;
}

type TcpDestination = { destination: { host: string; subset?: string; port?: { number?: number } }; weight?: number };

/**
 * The network filters to a `tcp` or `tls` route's destinations (Istio's
 * buildOutboundNetworkFilters): one destination, tcp_proxy to its cluster (its name the stat
 * prefix); more, weighted clusters with `<name>.<namespace>` of the VirtualService as stat
 * prefix; the first destination's DestinationRule TCP settings apply. A destination without a
 * port takes its service's only port, else the server's.
 */
function routeFilters(
  view: ProxyView,
  rule: ConfigObject<VirtualServiceSpec>,
  route: TcpDestination[],
  port: number,
): Array<Record<string, unknown>> {
  const domain = view.model.clusterDomain;
  const destinations = route.map((d) => {
    const host = resolveHost(d.destination.host, rule.namespace, domain);
    const ports = view.service(host)?.service.ports ?? [];
    const destinationPort = d.destination.port?.number ?? (ports.length === 1 ? (ports[0]?.port ?? port) : port);
    return { host, cluster: outboundClusterName(destinationPort, host, d.destination.subset ?? ''), weight: d.weight ?? 0 };
  });
  const [first] = destinations;
  if (!first) return [];
  const policy = view.destinationRuleFor(first.host)?.trafficPolicy as PolicyFields | undefined;
  if (destinations.length === 1) {
    return [
      {
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: any(types.tcpProxy, { stat_prefix: first.cluster, cluster: first.cluster, ...tcpProxyFields(policy) }),
      },
    ];
  }
  return [
    {
      name: 'envoy.filters.network.tcp_proxy',
      typed_config: any(types.tcpProxy, {
        stat_prefix: `${rule.name}.${rule.namespace}`,
        weighted_clusters: { clusters: destinations.filter((d) => d.weight > 0).map((d) => ({ name: d.cluster, weight: d.weight })) },
        ...tcpProxyFields(policy),
      }),
    },
  ];
}

/** The ALPNs of Istio mTLS from a sidecar (listener.go allIstioMtlsALPNs): what an AUTO_PASSTHROUGH chain matches. */
const istioMtlsAlpns = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];

/** Istio's model.BuildDNSSrvSubsetKey: the SNI a sidecar sends with Istio mTLS, and the SNI-DNAT cluster's name. */
export const sniDnatName = (port: number, host: string, subset = '') => `outbound_.${port}_.${subset}_.${host}`;

/**
 * An SNI-DNAT cluster (Istio's buildOutboundSniDnatClusters): the outbound cluster under its
 * SNI name and without TLS, since the client's own mTLS passes through the gateway. An EDS
 * cluster reads the outbound cluster's ClusterLoadAssignment (`service_name`), which the
 * gateway proxy already gets.
 */
function sniDnatCluster(cluster: OutboundCluster, view: ProxyView, name: string): Resource {
  const {
    transport_socket: _socket,
    transport_socket_matches: _matches,
    ...built
  } = envoyOutboundCluster(cluster, view.model) as Resource & { transport_socket?: unknown; transport_socket_matches?: unknown };
  const loadAssignment = built['load_assignment'] as Resource | undefined;
  return { ...built, name, ...(loadAssignment ? { load_assignment: { ...loadAssignment, cluster_name: name } } : {}) };
}

/**
 * An AUTO_PASSTHROUGH server's chains (Istio's builtAutoPassthroughFilterChains): for each
 * visible mesh-internal service whose hostname its hosts cover, per port and per
 * DestinationRule subset, a chain matching Istio mTLS by the SNI `outbound_.<port>_.<subset>_.<host>`
 * and its ALPNs, proxying to the SNI-DNAT cluster of that name (added to `clusters`).
 */
function autoPassthroughChains(
  view: ProxyView,
  server: GatewayServer,
  clusters: Record<string, Resource>,
  dnsHosts: Set<string>,
): GatewayChain[] {
  const chains: GatewayChain[] = [];
  for (const visible of view.services) {
    if (visible.service.meshExternal) continue;
    if (!server.sniHosts.some((host) => subsetOf(visible.hostname, host))) continue;
    if (visible.service.resolution === 'DNS' || visible.service.resolution === 'DNS_ROUND_ROBIN') dnsHosts.add(visible.hostname);
    const policy = view.destinationRuleFor(visible.hostname)?.trafficPolicy as PolicyFields | undefined;
    for (const cluster of serviceClusters(view, visible)) {
      const name = sniDnatName(cluster.port.port, visible.hostname, cluster.subset ?? '');
      clusters[name] = sniDnatCluster(cluster, view, name);
      chains.push({
        sniHosts: [name],
        applicationProtocols: istioMtlsAlpns,
        filters: [
          {
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: any(types.tcpProxy, { stat_prefix: name, cluster: name, ...tcpProxyFields(policy) }),
          },
        ],
      });
    }
  }
  return chains;
}

/** host.Name.SubsetOf: `a` is covered by `b` (wildcards by suffix). */
function subsetOf(a: string, b: string): boolean {
  const aWild = a.startsWith('*');
  const bWild = b.startsWith('*');
  if (aWild) return bWild && a.length >= b.length && a.slice(1).endsWith(b.slice(1));
  if (bWild) return a.endsWith(b.slice(1));
  return a === b;
}

/** Either host covers the other (host.Name.Matches). */
const hostsOverlap = (a: string, b: string) => subsetOf(a, b) || subsetOf(b, a);

/** The server's hosts that apply to a VirtualService of `namespace` (host.NamesForNamespace): `ns/host` only for that namespace or `*`. */
function serverHostsFor(server: GatewayServer, namespace: string): string[] {
  return server.server.hosts.flatMap((host) => {
    const slash = host.indexOf('/');
    if (slash < 0) return [host];
    const ns = host.slice(0, slash);
    return ns === namespace || ns === '*' ? [host.slice(slash + 1)] : [];
  });
}

/** The VirtualService's hosts, resolved as istiod resolves them (short names in its namespace). */
const virtualServiceHosts = (view: ProxyView, rule: ConfigObject<VirtualServiceSpec>) =>
  (rule.spec.hosts ?? []).map((host) => resolveHost(host, rule.namespace, view.model.clusterDomain));

/** host.Names.Intersection: for each overlapping pair, the more specific name, each once. */
function intersection(a: ReadonlyArray<string>, b: ReadonlyArray<string>): string[] {
  const result: string[] = [];
  for (const x of a) {
    for (const y of b) {
      const pick = subsetOf(x, y) ? x : subsetOf(y, x) ? y : undefined;
      if (pick !== undefined && !result.includes(pick)) result.push(pick);
    }
  }
  return result;
}

/** Whether a `tcp`/`tls` match applies to this server and gateway (Istio's l4SingleMatch: port, gateways). */
function l4Match(match: { port?: number; gateways?: string[] }, rule: ConfigObject<VirtualServiceSpec>, server: GatewayServer): boolean {
  const portMatch = !match.port || match.port === server.server.port.number;
  const gateways = match.gateways ?? [];
  return portMatch && (gateways.length === 0 || gateways.some((g) => resolveGatewayName(g, rule.namespace) === server.gateway));
}

/** Bound VirtualServices with a host a server serves (pickMatchingGatewayHosts). */
function boundFor(view: ProxyView, server: GatewayServer): Array<ConfigObject<VirtualServiceSpec>> {
  return virtualServicesForGateway(view.config.virtualServices, view.scope.namespace, server.gateway).filter((rule) => {
    const hosts = virtualServiceHosts(view, rule);
    return server.server.hosts.some((gatewayHost) => {
      const slash = gatewayHost.indexOf('/');
      if (slash >= 0 && gatewayHost.slice(0, slash) !== rule.namespace) return false;
      const name = slash >= 0 ? gatewayHost.slice(slash + 1) : gatewayHost;
      return hosts.some((host) => hostsOverlap(name, host));
    });
  });
}

/**
 * A TCP server's (or terminated TLS server's) one chain: the first `tcp` route of a bound VirtualService
 * matching it; for a terminated TLS server, failing those, the first `tls` route whose match applies by
 * port and gateway (not SNI) of a VirtualService converted from a TLSRoute (`internal.istio.io/parents`
 * naming one), which has only `tls` routes (Istio's buildGatewayNetworkFiltersFromTCPRoutes).
 */
function tcpServerFilters(view: ProxyView, server: GatewayServer): Array<Record<string, unknown>> | undefined {
  const terminated = !!server.server.tls && !isPassthroughServer(server.server);
  for (const rule of boundFor(view, server)) {
    for (const tcp of rule.spec.tcp ?? []) {
      const matches = tcp.match ?? [];
      if ((matches.length === 0 || matches.some((m) => l4Match(m, rule, server))) && (tcp.route?.length ?? 0) > 0)
        return routeFilters(view, rule, tcp.route as TcpDestination[], server.server.port.number);
    }
    if (!terminated || !rule.annotations?.['internal.istio.io/parents']?.startsWith('TLSRoute/')) continue;
    for (const tls of rule.spec.tls ?? []) {
      if ((tls.match ?? []).some((m) => l4Match(m, rule, server)))
        return routeFilters(view, rule, tls.route as TcpDestination[], server.server.port.number);
    }
  }
  return undefined;
}

/** A PASSTHROUGH server's chains: one per `tls` route match of a bound VirtualService, by its SNI hosts; repeated SNI names are skipped. */
function passthroughChains(view: ProxyView, server: GatewayServer, sniSeen: Map<string, string>, notApplied: string[]): GatewayChain[] {
  const chains: GatewayChain[] = [];
  const bind = server.server.bind ?? '';
  for (const rule of boundFor(view, server)) {
    for (const [i, tls] of (rule.spec.tls ?? []).entries()) {
      if (!tls.route?.length) continue;
      for (const match of tls.match ?? []) {
        if (!l4Match(match, rule, server)) continue;
        const duplicates = match.sniHosts.filter((host) => sniSeen.get(host) === bind);
        if (duplicates.length > 0) {
          notApplied.push(
            `VirtualService ${rule.namespace}/${rule.name} tls[${i}] on port ${server.port}: duplicate SNI host names ${duplicates.join(', ')}`,
          );
          continue;
        }
        for (const host of match.sniHosts) sniSeen.set(host, bind);
        chains.push({
          sniHosts: match.sniHosts,
          filters: routeFilters(view, rule, tls.route as TcpDestination[], server.server.port.number),
        });
      }
    }
  }
  return chains;
}

/**
 * A gateway proxy's listeners and route configurations (shapes: Envoy Listener and
 * RouteConfiguration objects by name). `view` is the gateway proxy's view (kind `router`:
 * its namespace decides which VirtualServices it sees, its labels their `sourceLabels`).
 */
export function envoyGatewayResources(view: ProxyView, merged: MergedGateway): GatewayResources {
  const telemetry = clientTelemetryFields(view);
  const notApplied: string[] = merged.skipped.map((s) => `Gateway ${s.gateway} ${s.message}`);
  const byListener = new Map<string, { bind: string; port: number; chains: GatewayChain[] }>();
  const sniSeen = new Map<number, Map<string, string>>();
  const clusters: Record<string, Resource> = {};
  const dnsHosts = new Set<string>();
  let autoPassthrough = false;
  for (const mergedPort of merged.ports) {
    const bind = mergedPort.bind || '0.0.0.0';
    const name = `${bind}_${mergedPort.port}`;
    let listener = byListener.get(name);
    if (!listener) byListener.set(name, (listener = { bind, port: mergedPort.port, chains: [] }));
    if (isHttp(parseProtocol(mergedPort.protocol))) {
      listener.chains.push({ filters: [gatewayHcm(`outbound_${name};`, mergedPort.routeName, telemetry)] });
      continue;
    }
    for (const server of mergedPort.servers) {
      const tls = server.server.tls;
      if (isHttpsTerminated(server.server)) {
        listener.chains.push({
          sniHosts: server.sniHosts,
          tls: gatewayTlsContext(tls as ServerTls, false),
          filters: [gatewayHcm(server.server.name ? server.server.name : `outbound_${name};`, server.routeName, telemetry)],
        });
      } else if (!tls || !isPassthroughServer(server.server)) {
        const filters = tcpServerFilters(view, server);
        if (!filters) {
          notApplied.push(
            `Gateway ${server.gateway} port ${server.port}: no VirtualService tcp route is bound to it (Istio builds no chain)`,
          );
          continue;
        }
        listener.chains.push({ ...(tls ? { sniHosts: server.sniHosts, tls: gatewayTlsContext(tls, true) } : {}), filters });
      } else if (tls.mode === 'AUTO_PASSTHROUGH') {
        autoPassthrough = true;
        listener.chains.push(...autoPassthroughChains(view, server, clusters, dnsHosts));
      } else {
        let seen = sniSeen.get(mergedPort.port);
        if (!seen) sniSeen.set(mergedPort.port, (seen = new Map()));
        listener.chains.push(...passthroughChains(view, server, seen, notApplied));
      }
    }
  }
  const listeners: Record<string, Resource> = {};
  for (const [name, { bind, port, chains }] of byListener) {
    // Istio omits a listener with no chain (MutableGatewayListener.build's error).
    if (chains.length === 0) continue;
    const needTls = chains.some((chain) => (chain.sniHosts?.length ?? 0) > 0 || chain.tls);
    listeners[name] = {
      name,
      address: { socket_address: { address: bind, port_value: port } },
      traffic_direction: 'OUTBOUND',
      ...(needTls ? { listener_filters: [tlsInspector()] } : {}),
      filter_chains: chains.map((chain) => ({
        ...filterChainMatch(chain),
        filters: chain.filters,
        ...(chain.tls ? { transport_socket: chain.tls } : {}),
        // PILOT_GATEWAY_TRANSPORT_SOCKET_CONNECT_TIMEOUT: a TLS handshake is bounded.
        transport_socket_connect_timeout: { seconds: 15 },
      })),
    };
  }
  const routes: Record<string, Resource> = {};
  for (const routeName of merged.serversByRouteName.keys()) routes[routeName] = gatewayRouteConfiguration(view, merged, routeName);
  return { listeners, routes, clusters, autoPassthrough, dnsHosts, notApplied };
}

/** A chain's match (Istio's toFilterChainMatch): SNI names unless one is `*`, and application protocols. */
function filterChainMatch(chain: GatewayChain): Resource {
  const match: Resource = {};
  if (chain.sniHosts?.length && !chain.sniHosts.includes('*')) match['server_names'] = chain.sniHosts;
  if (chain.applicationProtocols?.length) match['application_protocols'] = chain.applicationProtocols;
  return Object.keys(match).length > 0 ? { filter_chain_match: match } : {};
}

interface BuiltVirtualHost {
  name: string;
  domains: string[];
  routes: Resource[];
  /** Which (gateway, VirtualService) route lists it holds, in order: equal lists collapse into one virtual host. */
  sources: string[];
  requireTls: boolean;
}

/**
 * One route configuration (`http.<port>` or an HTTPS server's), as istiod's
 * buildGatewayHTTPRouteConfig: for each server, each bound VirtualService sharing a host
 * with it gives its routes (once per Gateway and VirtualService) to a virtual host per
 * shared host, `<host>:<server port>`, domains the host alone; two VirtualServices on one
 * host append their routes (catch-all routes moved last); `httpsRedirect` sets
 * `require_tls: ALL` (a host with no route gets a virtual host that only redirects); virtual
 * hosts with the same routes collapse into one (the first host by name keeps its name); none
 * at all: `blackhole:<port>` matching `*` with no route, so Envoy answers 404.
 */
export function gatewayRouteConfiguration(view: ProxyView, merged: MergedGateway, routeName: string): Resource {
  const servers = merged.serversByRouteName.get(routeName) ?? [];
  const built = new Map<string, Resource[]>();
  const virtualHosts = new Map<string, BuiltVirtualHost>();
  for (const server of servers) {
    const port = server.server.port.number;
    const gateways = new Set([server.gateway]);
    const redirect = !!server.server.tls?.httpsRedirect;
    for (const rule of virtualServicesForGateway(view.config.virtualServices, view.scope.namespace, server.gateway)) {
      const shared = intersection(serverHostsFor(server, rule.namespace), virtualServiceHosts(view, rule));
      if (shared.length === 0) continue;
      const source = `${server.gateway}|${rule.namespace}/${rule.name}`;
      let routes = built.get(source);
      if (!routes) {
        routes = virtualServiceRoutes(rule, { view, hostname: shared[0] as string, port, gateways, tls: !!server.server.tls });
        built.set(source, routes);
      }
      for (const written of shared) {
        const hostname = written.toLowerCase();
        const existing = virtualHosts.get(hostname);
        if (existing) {
          existing.routes = [...existing.routes, ...routes];
          existing.sources.push(source);
          if (redirect) existing.requireTls = true;
        } else {
          virtualHosts.set(hostname, { name: `${hostname}:${port}`, domains: [hostname], routes, sources: [source], requireTls: redirect });
        }
      }
    }
    if (redirect) {
      for (const written of server.server.hosts) {
        const hostname = written.toLowerCase();
        const existing = virtualHosts.get(hostname);
        if (existing) existing.requireTls = true;
        else virtualHosts.set(hostname, { name: `${hostname}:${port}`, domains: [hostname], routes: [], sources: [], requireTls: true });
      }
    }
  }
  let laidOut: Resource[];
  if (virtualHosts.size === 0) {
    const port = servers[0]?.server.port.number ?? 0;
    laidOut = [{ name: `blackhole:${port}`, domains: ['*'] }];
  } else {
    // collapseDuplicateRoutes: in hostname order, a virtual host whose routes are another's joins it.
    const collapsed: BuiltVirtualHost[] = [];
    const byRoutes = new Map<string, BuiltVirtualHost>();
    for (const hostname of [...virtualHosts.keys()].sort()) {
      const host = virtualHosts.get(hostname) as BuiltVirtualHost;
      const key = `${host.requireTls}|${host.sources.join(',')}`;
      const into = byRoutes.get(key);
      if (into) into.domains.push(...host.domains);
      else {
        byRoutes.set(key, host);
        collapsed.push(host);
      }
    }
    laidOut = collapsed
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((host) => ({
        name: host.name,
        domains: host.domains,
        ...(host.routes.length > 0 ? { routes: catchAllLast(host.routes) } : {}),
        // Istio's default proxy headers: x-envoy-attempt-count goes upstream.
        include_request_attempt_count: true,
        ...(host.requireTls ? { require_tls: 'ALL' } : {}),
      }));
  }
  return {
    name: routeName,
    virtual_hosts: laidOut,
    validate_clusters: { value: false },
    ignore_port_in_host_matching: true,
    max_direct_response_body_size_bytes: { value: 1024 * 1024 },
  };
}

/** Istio's SortVHostRoutes: catch-all routes (prefix `/` or regex `.*`, no header or query match) after the rest, order kept. */
function catchAllLast(routes: Resource[]): Resource[] {
  const catchAll = (route: Resource) => {
    const match = (route['match'] ?? {}) as Record<string, unknown>;
    const path = match['prefix'] === '/' || (match['safe_regex'] as { regex?: string } | undefined)?.regex === '.*';
    return path && !match['headers'] && !match['query_parameters'];
  };
  return [...routes.filter((r) => !catchAll(r)), ...routes.filter(catchAll)];
}
