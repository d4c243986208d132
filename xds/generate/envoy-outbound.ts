// The per-port outbound listeners of an Envoy sidecar, as istiod builds them
// (pilot/pkg/networking/core/listener.go buildSidecarOutboundListener and
// buildListenerFromEntry, tls.go, networkfilter.go). Each service port claims a
// listener by its protocol (traffic/port-protocol.ts):
// - HTTP ports share `0.0.0.0_<port>`, whose HTTP chain (selected by the HTTP
//   inspector's application protocols) reads the route configuration `<port>`;
//   other bytes fall through to the PassthroughFilterChain (PassthroughCluster,
//   or BlackHoleCluster under REGISTRY_ONLY);
// - TCP ports (TCP, TLS, HTTPS, Mongo, MySQL, Redis) get `<clusterIP>_<port>`
//   with tcp_proxy to `outbound|<port>||<host>`; TLS ports without an address
//   share `0.0.0.0_<port>` with a chain per host matched by SNI;
// - ports of undeclared protocol get detection: a TCP chain to the service and
//   an HTTP chain reading the service's own route configuration `<host>:<port>`.
// Claims on one listener are merged as istiod merges them (HTTP and TCP on one
// port become detection; TCP chains are kept when their matches differ).
// Pure: both the from-scratch generator and the incremental path
// (cache/outbound-scope.ts) assemble listeners with these functions.
import { tlsRoutingChains } from '../traffic/tls-routes.js';
import { isIP } from 'node:net';
import { protoDuration } from '../../lib/duration.js';
import { any } from '../protos.js';
import { faultFilterName, outboundClusterName, tcpRouting } from '../traffic/http-routes.js';
import { outboundPorts } from '../traffic/outbound-clusters.js';
import { isHttp, isTcp, isTls, listenerProtocol, portProtocol, type Protocol } from '../traffic/port-protocol.js';
import type { ProxyView, VisibleService } from '../traffic/proxy-view.js';
import type { PolicyFields } from '../traffic/cluster-policy.js';

const types = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  fault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  mongoProxy: 'type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy',
  tlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  httpInspector: 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
};

const wildcard = '0.0.0.0';
/** What the HTTP inspector reports for plaintext HTTP (Istio's plaintextHTTPALPNs, HTTP/1.0 off). */
export const plaintextHttpAlpns = ['http/1.1', 'h2c'];
const ads = { ads: {}, resource_api_version: 'V3' };

/** The listener filters Istio adds when a chain matches on SNI (TLS inspector) or application protocols (HTTP inspector). */
export const tlsInspector = () => ({
  name: 'envoy.filters.listener.tls_inspector',
  typed_config: any(types.tlsInspector, { initial_read_buffer_size: { value: 512 } }),
});
export const httpInspector = () => ({ name: 'envoy.filters.listener.http_inspector', typed_config: any(types.httpInspector, {}) });

/** One filter chain before it is laid out (Istio's filterChainOpts): its match and either network filters or an RDS name. */
export interface OutboundChain {
  sniHosts?: string[];
  /** Destination CIDRs (a ServiceEntry address that is a range). */
  cidrs?: string[];
  applicationProtocols?: string[];
  transportProtocol?: string;
  /** A TCP chain's network filters. */
  filters?: Array<Record<string, unknown>>;
  /** An HTTP chain's route configuration name. */
  rds?: string;
}

/** One service port's claim on an outbound listener (Istio's outboundListenerOpts with its chains built). */
export interface ListenerClaim {
  /** `<bind>_<port>`: the listener's name. */
  name: string;
  bind: string;
  port: number;
  protocol: Protocol;
  listenerProtocol: 'HTTP' | 'TCP' | 'AUTO';
  hostname: string;
  /** TCP and AUTO: the TCP (or SNI) chains to the service. */
  tcpChains: OutboundChain[];
  /** HTTP and AUTO: the route configuration the HTTP chain reads (`<port>`, or `<host>:<port>` for a detected port with an address). */
  rds: string;
}

/** What the assembled listeners need beyond the claims: the client-side HCM telemetry and where unmatched bytes go. */
export interface OutboundListenerContext {
  telemetry: Record<string, unknown>;
  /** PassthroughCluster (ALLOW_ANY) or BlackHoleCluster (REGISTRY_ONLY). */
  unknownHosts: string;
}

/** A tcp_proxy to one cluster, with the DestinationRule's TCP settings Istio copies onto it (networkfilter.go). */
function tcpProxyFilter(cluster: string, policy: PolicyFields | undefined): Record<string, unknown> {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: any(types.tcpProxy, { stat_prefix: cluster, cluster, ...tcpProxyFields(policy) }),
  };
}

/** The DestinationRule's TCP settings Istio copies onto a tcp_proxy: idle timeout, connection duration, source-IP hashing. */
export function tcpProxyFields(policy: PolicyFields | undefined): Record<string, unknown> {
  const tcp = (policy?.connectionPool?.tcp ?? {}) as { idleTimeout?: string; maxConnectionDuration?: string };
  return {
    ...(tcp.idleTimeout ? { idle_timeout: protoDuration(tcp.idleTimeout) } : {}),
    ...(tcp.maxConnectionDuration ? { max_downstream_connection_duration: protoDuration(tcp.maxConnectionDuration) } : {}),
    ...(policy?.loadBalancer?.consistentHash?.useSourceIp ? { hash_policy: [{ source_ip: {} }] } : {}),
  };
}

/** The network filters to one service port's cluster: mongo_proxy first for Mongo (on in istiod by default), then tcp_proxy. */
function singleDestinationFilters(cluster: string, protocol: Protocol, policy: PolicyFields | undefined): Array<Record<string, unknown>> {
  const proxy = tcpProxyFilter(cluster, policy);
  if (protocol !== 'Mongo') return [proxy];
  return [{ name: 'envoy.filters.network.mongo_proxy', typed_config: any(types.mongoProxy, { stat_prefix: cluster }) }, proxy];
}

/**
 * The network filters of a TCP chain: the service's own cluster, or where its
 * VirtualService's `tcp` route sends it (one destination, or weighted clusters with
 * the rule's `<name>.<namespace>` as stat prefix), as Istio's buildOutboundNetworkFilters (networkfilter.go).
 */
function tcpChainFilters(
  view: ProxyView,
  hostname: string,
  port: number,
  protocol: Protocol,
  ownCluster: string,
): Array<Record<string, unknown>> {
  const routing = tcpRouting({ view, hostname, port });
  const ownPolicy = view.destinationRuleFor(hostname)?.trafficPolicy as PolicyFields | undefined;
  if (!routing) return singleDestinationFilters(ownCluster, protocol, ownPolicy);
  return routedChainFilters(view, protocol, routing);
}

/** tcp_proxy to a route's destinations: one cluster, or weighted clusters with the rule's `<name>.<namespace>` as stat prefix. */
function routedChainFilters(
  view: ProxyView,
  protocol: Protocol,
  routing: { rule: { name: string; namespace: string }; destinations: Array<{ host: string; cluster: string; weight: number }> },
): Array<Record<string, unknown>> {
  const [first] = routing.destinations;
  // The DestinationRule of the first destination's host shapes the proxy, as in Istio.
  const policy = first ? (view.destinationRuleFor(first.host)?.trafficPolicy as PolicyFields | undefined) : undefined;
  if (routing.destinations.length === 1 && first) return singleDestinationFilters(first.cluster, protocol, policy);
  const statPrefix = `${routing.rule.name}.${routing.rule.namespace}`;
  const weighted = routing.destinations.filter((d) => d.weight > 0);
  const proxy = {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: any(types.tcpProxy, {
      stat_prefix: statPrefix,
      weighted_clusters: { clusters: weighted.map((d) => ({ name: d.cluster, weight: d.weight })) },
      ...tcpProxyFields(policy),
    }),
  };
  if (protocol !== 'Mongo') return [proxy];
  return [{ name: 'envoy.filters.network.mongo_proxy', typed_config: any(types.mongoProxy, { stat_prefix: statPrefix }) }, proxy];
}

/**
 * The listeners one visible service claims, one per port (UDP ports claim none),
 * in port order. Binds as istiod's default Sidecar: HTTP on 0.0.0.0; TCP and
 * detected ports on the service's address, or 0.0.0.0 with a CIDR match when the
 * address is a range, or 0.0.0.0 when it has none. Passthrough services (headless
 * Kubernetes Services, ServiceEntries with resolution NONE) with TCP or detected
 * ports get istiod's per-endpoint listeners only for ServiceEntries; headless
 * Kubernetes Services claim nothing for them (their connections pass through to
 * the address dialled), since the outbound cluster load-balances over EDS here.
 */
export function outboundListenerClaims(view: ProxyView, visible: VisibleService): ListenerClaim[] {
  const { service, hostname } = visible;
  const claims: ListenerClaim[] = [];
  // A ServiceEntry with several addresses is one service per address in istiod (serviceentry/conversion.go).
  const addresses =
    service.addresses && service.addresses.length > 0
      ? service.hostname
        ? service.addresses
        : [service.addresses[0] as string]
      : [wildcard];
  const passthrough = service.headless === true || (service.hostname !== undefined && service.resolution === 'NONE');
  for (const port of outboundPorts(service)) {
    const protocol = portProtocol(service, port);
    const lp = listenerProtocol(protocol);
    if (lp === 'NONE') continue;
    const cluster = outboundClusterName(port.port, hostname);
    const tlsRoutes = isTls(protocol) ? tlsRoutingChains(view, hostname, port.port) : [];
    const claim = (bind: string, cidrs: string[] | undefined, sni: boolean): ListenerClaim => ({
      name: `${bind}_${port.port}`,
      bind,
      port: port.port,
      protocol,
      listenerProtocol: lp,
      hostname,
      tcpChains:
        lp === 'HTTP'
          ? []
          : tlsRoutes.length > 0
            ? // A VirtualService's `tls` routes replace the service's own chain (Istio's hasTLSMatch).
              tlsRoutes.map((route) => ({
                sniHosts: route.sniHosts,
                ...(route.destinationSubnets ? { cidrs: route.destinationSubnets } : cidrs ? { cidrs } : {}),
                filters: routedChainFilters(view, protocol, route),
              }))
            : [
                {
                  ...(isTls(protocol) && sni ? { sniHosts: [hostname] } : {}),
                  ...(cidrs ? { cidrs } : {}),
                  filters: tcpChainFilters(view, hostname, port.port, protocol, cluster),
                },
              ],
      rds: lp === 'AUTO' && bind !== wildcard ? `${hostname}:${port.port}` : String(port.port),
    });
    if (lp === 'HTTP') {
      claims.push(claim(wildcard, undefined, false));
      continue;
    }
    for (const address of addresses) {
      if (passthrough && address === wildcard) {
        if (service.headless) continue;
        // A ServiceEntry with resolution NONE: a listener per endpoint address; with none, the wildcard.
        const endpointAddresses = service.endpoints.map((e) => e.address).filter((a) => isIP(a) !== 0);
        if (service.endpoints.length === 0) claims.push(claim(wildcard, undefined, true));
        for (const endpoint of endpointAddresses) claims.push(claim(endpoint, undefined, false));
        continue;
      }
      // Istio matches by SNI when the listener cannot tell services apart: a range, or no address at all.
      if (address.includes('/')) claims.push(claim(wildcard, [address], true));
      else claims.push(claim(address, undefined, address === wildcard));
    }
  }
  return claims;
}

/** The route configurations named by detected ports with an address: that service's virtual host alone, for any Host. */
export function sniffedRouteConfiguration(name: string, virtualHost: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    virtual_hosts: [{ ...virtualHost, domains: ['*'] }],
    validate_clusters: { value: false },
    ignore_port_in_host_matching: true,
  };
}

const isMatchAll = (chain: OutboundChain) =>
  (!chain.sniHosts?.length || chain.sniHosts.includes('*')) &&
  !chain.applicationProtocols?.length &&
  !chain.transportProtocol &&
  !chain.cidrs?.length;

const setOf = (values: string[] | undefined, skip: (v: string) => boolean) => new Set((values ?? []).filter((v) => !skip(v)));
const sameSet = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((v) => b.has(v));

/** Two chains Envoy could not tell apart (Istio's conflictsWith): the later one is dropped. */
function conflicts(a: OutboundChain, b: OutboundChain): boolean {
  if ((a.transportProtocol ?? '') !== (b.transportProtocol ?? '')) return false;
  const alpnA = a.applicationProtocols ?? [];
  const alpnB = b.applicationProtocols ?? [];
  if (alpnA.length !== alpnB.length || alpnA.some((v, i) => v !== alpnB[i])) return false;
  if (
    !sameSet(
      setOf(a.sniHosts, (v) => v === '*'),
      setOf(b.sniHosts, (v) => v === '*'),
    )
  )
    return false;
  return sameSet(
    setOf(a.cidrs, (v) => v.startsWith('0.0.0.0')),
    setOf(b.cidrs, (v) => v.startsWith('0.0.0.0')),
  );
}

function merge(current: OutboundChain[], incoming: OutboundChain[]): OutboundChain[] {
  const merged = [...current];
  for (const chain of incoming) if (!merged.some((existing) => conflicts(existing, chain))) merged.push(chain);
  return merged;
}

/** Mongo and MySQL share a port with no other protocol: the inspector would break them (isConflictWithWellKnownPort). */
const wellKnownConflict = (incoming: Protocol, existing: Protocol) =>
  (incoming === 'Mongo' || incoming === 'MySQL' || existing === 'Mongo' || existing === 'MySQL') && incoming !== existing;

/**
 * The chains of one listener from its claims, in order, merged as istiod's
 * buildSidecarOutboundListener: the first claim sets the listener; HTTP over TCP,
 * TCP over HTTP and detection over TCP turn it into detection with both kinds of
 * chain; a later HTTP or detected claim on an HTTP or detected listener adds
 * nothing (its virtual host is in the shared route configuration); TCP claims add
 * the chains whose matches differ. Returns undefined when no claim is kept.
 */
export function resolveListenerChains(
  claims: ReadonlyArray<ListenerClaim>,
): { port: number; bind: string; chains: OutboundChain[] } | undefined {
  let entry: { protocol: Protocol; chains: OutboundChain[]; port: number; bind: string } | undefined;
  for (const claim of claims) {
    const httpChain = (): OutboundChain => ({
      rds: claim.rds,
      ...(claim.bind === wildcard || claim.listenerProtocol === 'AUTO'
        ? { applicationProtocols: plaintextHttpAlpns, transportProtocol: 'raw_buffer' }
        : {}),
    });
    let upgrade: boolean;
    let opts: OutboundChain[];
    let protocol = claim.protocol;
    switch (claim.listenerProtocol) {
      case 'HTTP':
        if (entry && !isTcp(entry.protocol)) continue;
        upgrade = !!entry;
        opts = [httpChain()];
        // On the wildcard, HTTP shares the port with a TCP fallthrough: it is detection already.
        if (claim.bind === wildcard) protocol = 'UnsupportedProtocol';
        break;
      case 'TCP':
        opts = claim.tcpChains;
        upgrade = !!entry && isHttp(entry.protocol);
        break;
      default:
        if (entry && !isHttp(entry.protocol) && !isTcp(entry.protocol)) continue;
        upgrade = !!entry && isTcp(entry.protocol);
        // An AUTO claim over an HTTP listener replaces it.
        if (entry && isHttp(entry.protocol)) entry = undefined;
        opts = [...claim.tcpChains, httpChain()];
    }
    if (entry && wellKnownConflict(claim.protocol, entry.protocol)) continue;
    if (!entry) entry = { protocol, chains: opts, port: claim.port, bind: claim.bind };
    else {
      entry.chains = merge(entry.chains, opts);
      if (upgrade) entry.protocol = 'UnsupportedProtocol';
    }
  }
  return entry && { port: entry.port, bind: entry.bind, chains: entry.chains };
}

/** The HCM of an outbound HTTP chain: RDS by name, Istio's stat prefix (`outbound_<listener>;`), the fault filter, the router. */
function outboundHcm(listenerName: string, rds: string, telemetry: Record<string, unknown>): Record<string, unknown> {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: any(types.hcm, {
      stat_prefix: `outbound_${listenerName};`,
      rds: { config_source: ads, route_config_name: rds },
      ...telemetry,
      http_filters: [
        { name: faultFilterName, typed_config: any(types.fault, {}) },
        { name: 'envoy.filters.http.router', typed_config: any(types.router, {}) },
      ],
    }),
  };
}

function chainMatch(chain: OutboundChain): Record<string, unknown> {
  const match: Record<string, unknown> = {};
  if (chain.applicationProtocols?.length) match['application_protocols'] = chain.applicationProtocols;
  if (chain.transportProtocol) match['transport_protocol'] = chain.transportProtocol;
  if (chain.sniHosts?.length && !chain.sniHosts.includes('*')) match['server_names'] = [...chain.sniHosts].sort();
  if (chain.cidrs?.length) {
    match['prefix_ranges'] = [...chain.cidrs].sort().map((cidr) => {
      const [address, length] = cidr.split('/') as [string, string | undefined];
      return { address_prefix: address, prefix_len: { value: length === undefined ? 32 : Number(length) } };
    });
  }
  return match;
}

/**
 * One outbound listener from its claims (in service order), as istiod lays it out
 * (buildListenerFromEntry): bind_to_port false (15001 hands it the connections);
 * the TLS inspector when a chain matches SNI, the HTTP inspector when one matches
 * application protocols; a match-all chain becomes the default chain, else
 * unmatched bytes take the PassthroughFilterChain. Also returns the route
 * configurations its HTTP chains read. Undefined when no claim is kept.
 */
export function outboundListener(
  claims: ReadonlyArray<ListenerClaim>,
  context: OutboundListenerContext,
): { listener: Record<string, unknown>; rds: string[] } | undefined {
  const resolved = resolveListenerChains(claims);
  if (!resolved) return undefined;
  const name = `${resolved.bind}_${resolved.port}`;
  const needTls = resolved.chains.some((chain) => (chain.sniHosts?.length ?? 0) > 0);
  const needHttp = resolved.chains.some((chain) => (chain.applicationProtocols?.length ?? 0) > 0);
  const filterChains: Array<Record<string, unknown>> = [];
  let defaultChain: Record<string, unknown> | undefined;
  for (const chain of resolved.chains) {
    const laidOut = {
      filters: chain.rds !== undefined ? [outboundHcm(name, chain.rds, context.telemetry)] : (chain.filters ?? []),
      // Istio bounds every chain's TLS handshake (PILOT_GATEWAY_TRANSPORT_SOCKET_CONNECT_TIMEOUT).
      transport_socket_connect_timeout: { seconds: 15 },
    };
    if (isMatchAll(chain)) defaultChain = laidOut;
    else filterChains.push({ filter_chain_match: chainMatch(chain), ...laidOut });
  }
  if (defaultChain && filterChains.length === 0) {
    filterChains.push(defaultChain);
    defaultChain = undefined;
  } else if (!defaultChain) {
    defaultChain = {
      filter_chain_match: {},
      name: 'PassthroughFilterChain',
      filters: [
        {
          name: 'envoy.filters.network.tcp_proxy',
          typed_config: any(types.tcpProxy, { stat_prefix: context.unknownHosts, cluster: context.unknownHosts }),
        },
      ],
    };
  }
  const listener = {
    name,
    address: { socket_address: { address: resolved.bind, port_value: resolved.port } },
    bind_to_port: { value: false },
    traffic_direction: 'OUTBOUND',
    continue_on_listener_filters_timeout: true,
    listener_filters: [...(needTls ? [tlsInspector()] : []), ...(needHttp ? [httpInspector()] : [])],
    // MeshConfig's protocolDetectionTimeout, 0 (no timeout) by default; 0 as well without the HTTP inspector.
    listener_filters_timeout: {},
    filter_chains: filterChains,
    ...(defaultChain ? { default_filter_chain: defaultChain } : {}),
  };
  const rds = [...new Set(resolved.chains.flatMap((chain) => (chain.rds !== undefined ? [chain.rds] : [])))];
  return { listener, rds };
}

/** Claims grouped by listener name, each group in the order given (service order, then port order). */
export function claimsByListener(claims: Iterable<ListenerClaim>): Map<string, ListenerClaim[]> {
  const byName = new Map<string, ListenerClaim[]>();
  for (const claim of claims) {
    const group = byName.get(claim.name);
    if (group) group.push(claim);
    else byName.set(claim.name, [claim]);
  }
  return byName;
}

/** Istio's listener order has no meaning; Weft lays listeners out by port, then name, in both generators. */
export const listenerOrder = (a: { port: number; name: string }, b: { port: number; name: string }) =>
  a.port - b.port || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The port numbers whose virtual host a service adds to the per-port route
 * configurations: its HTTP and detected ports (Istio's IsHTTPOrSniffed), once per
 * number (kube-dns lists 53 for UDP and TCP).
 */
export function routedPorts(service: VisibleService['service']): number[] {
  const ports = outboundPorts(service).filter((port) => {
    const lp = listenerProtocol(portProtocol(service, port));
    return lp === 'HTTP' || lp === 'AUTO';
  });
  return [...new Set(ports.map((port) => port.port))];
}
