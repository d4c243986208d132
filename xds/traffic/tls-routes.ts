// A VirtualService's `tls` routes as a sidecar's outbound TLS chains, as istiod's
// buildSidecarOutboundTLSFilterChainOpts (pilot/pkg/networking/core/listener_builder.go and
// networkfilter.go): on a TLS or HTTPS service port, each match of a mesh-bound `tls` route
// that applies to this proxy (port, sourceLabels, sourceNamespace, gateways) is a chain by SNI
// (`sniHosts`) to the route's destinations; where some match applies, the service's own
// default chain is left out. This is the sidecar half of Istio's egress-gateway pattern for
// HTTPS (a `tls` route sending edition.cnn.com to the egress gateway).
import type { ConfigObject, VirtualServiceSpec } from '../model/istio-config.js';
import { labelsMatch, resolveHost } from './host-names.js';
import { outboundClusterName } from './http-routes.js';
import type { ProxyView } from './proxy-view.js';

type TlsRoute = NonNullable<VirtualServiceSpec['tls']>[number];
type TlsMatch = NonNullable<TlsRoute['match']>[number];

export interface TlsChainRouting {
  rule: ConfigObject<VirtualServiceSpec>;
  /** The match's `sniHosts`, as written (Envoy's server_names). */
  sniHosts: string[];
  /** The match's `destinationSubnets`, if any. */
  destinationSubnets?: string[];
  destinations: Array<{ host: string; cluster: string; weight: number }>;
}

/**
 * The TLS chains a sidecar gets for `hostname:port` from the VirtualService that applies to
 * it (ProxyView.virtualServiceFor: mesh-bound, exported, Istio's precedence), in route and
 * match order; an empty list when no `tls` match applies (the service's default chain then).
 */
export function tlsRoutingChains(view: ProxyView, hostname: string, port: number): TlsChainRouting[] {
  const rule = view.virtualServiceFor(hostname);
  if (!rule) return [];
  const { scope } = view;
  const applies = (match: TlsMatch) =>
    (match.port === undefined || match.port === port) &&
    (!match.sourceLabels || labelsMatch(match.sourceLabels as Record<string, string>, scope.labels)) &&
    (!match.sourceNamespace || match.sourceNamespace === scope.namespace) &&
    (!match.gateways || match.gateways.length === 0 || match.gateways.includes('mesh'));
  const chains: TlsChainRouting[] = [];
  for (const route of rule.spec.tls ?? []) {
    if (!route.route || route.route.length === 0) continue;
    const destinations = route.route.map((d) => {
      const host = resolveHost(d.destination?.host ?? '', rule.namespace, view.model.clusterDomain);
      const ports = view.service(host)?.service.ports ?? [];
      const destinationPort = d.destination?.port?.number ?? (ports.length === 1 ? (ports[0]?.port ?? port) : port);
      return { host, cluster: outboundClusterName(destinationPort, host, d.destination?.subset), weight: d.weight ?? 0 };
    });
    for (const match of route.match ?? []) {
      if (!applies(match)) continue;
      chains.push({
        rule,
        sniHosts: [...(match.sniHosts ?? [])],
        ...(match.destinationSubnets?.length ? { destinationSubnets: [...match.destinationSubnets] } : {}),
        destinations,
      });
    }
  }
  return chains;
}
