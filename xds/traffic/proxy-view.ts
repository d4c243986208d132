// One proxy's view of the mesh, derived from the model and the proxy's scope:
// which services it sees (exportTo, Sidecar egress hosts), which VirtualService
// routes each host and which DestinationRule applies to it, with Istio's
// precedence. Pure; each lookup is a small index, not one big context.
import type { ConfigObject, DestinationRuleSpec, IstioConfig, SidecarSpec, Subset, VirtualServiceSpec } from '../model/istio-config.js';
import { byAge } from '../model/istio-config.js';
import { serviceHost, type MeshModel, type MeshService } from '../model/mesh-model.js';
import { exportedTo, hostMatches, hostSpecificity, labelsMatch, virtualHostDomains } from './host-names.js';
import type { ProxyScope } from './proxy-scope.js';
import { MeshIndex } from './mesh-index.js';
import { portProtocol, type Protocol } from './port-protocol.js';

/** Istio's annotation on the VirtualServices it converts from the Kubernetes Gateway API (constants.InternalRouteSemantics). */
export const routeSemanticsAnnotation = 'internal.istio.io/route-semantics';

/**
 * Whether a VirtualService takes the Gateway API's semantics (Istio's model.UseGatewaySemantics:
 * annotation `internal.istio.io/route-semantics: gateway`): path-separated prefixes, 500 for
 * invalid backends, prefix-stripping rewrites and GAMMA precedence. Only VirtualServices from
 * `gatewayapi/` carry it; the model keeps no other annotation of a user's object but `istio.io/dry-run`.
 */
export const usesGatewaySemantics = (rule: ConfigObject<VirtualServiceSpec>): boolean =>
  rule.annotations?.[routeSemanticsAnnotation] === 'gateway';

export interface VisibleService {
  service: MeshService;
  hostname: string;
}

/** A DestinationRule merged as Istio does for one host: the oldest rule's policy, every rule's subsets. */
export interface EffectiveDestinationRule {
  rules: ConfigObject<DestinationRuleSpec>[];
  trafficPolicy?: DestinationRuleSpec['trafficPolicy'];
  subsets: Subset[];
}

export class ProxyView {
  readonly config: IstioConfig;
  readonly rootNamespace: string;
  readonly sidecar: ConfigObject<SidecarSpec> | undefined;
  private readonly egressHosts: string[] | undefined;
  private readonly index: MeshIndex;
  private visibleServices: VisibleService[] | undefined;

  constructor(
    readonly model: MeshModel,
    readonly scope: ProxyScope,
    index?: MeshIndex,
  ) {
    this.index = index ?? MeshIndex.of(model);
    this.config = this.index.config;
    this.rootNamespace = this.index.rootNamespace;
    this.sidecar = sidecarFor(this.config.sidecars, scope, this.rootNamespace);
    this.egressHosts = this.sidecar?.spec.egress?.flatMap((listener) => listener.hosts ?? []);
  }

  /** Whether this proxy sees a service: its exportTo, then the Sidecar's egress hosts. */
  sees(service: MeshService, hostname = serviceHost(service, this.model.clusterDomain)): boolean {
    return (
      exportedTo(service.exportTo, service.namespace, this.scope.namespace) &&
      (!this.egressHosts || egressAllows(this.egressHosts, this.sidecar?.namespace ?? '', service.namespace, hostname))
    );
  }

  /** Every service this proxy sees, by hostname. */
  get services(): VisibleService[] {
    this.visibleServices ??= this.model.services
      .map((service) => ({ service, hostname: serviceHost(service, this.model.clusterDomain) }))
      .filter(({ service, hostname }) => this.sees(service, hostname))
      .sort((a, b) => a.hostname.localeCompare(b.hostname));
    return this.visibleServices;
  }

  /**
   * The ports this proxy's workload serves: the target ports of the Services in its
   * namespace that select its labels, with Istio's protocol of the service port
   * (traffic/port-protocol.ts). Of two Services on one target port, the first in the
   * model decides, as Istio keeps one chain per target port. Only TCP (L4) ports:
   * Istio builds no inbound chain for UDP.
   */
  inboundPorts(): Array<{ port: number; protocol: Protocol }> {
    const ports = new Map<number, Protocol>();
    for (const service of this.index.byNamespace.get(this.scope.namespace) ?? []) {
      if (!service.selector || !labelsMatch(service.selector, this.scope.labels)) continue;
      for (const port of service.ports) {
        if (port.targetPort === undefined || port.protocol !== 'TCP' || ports.has(port.targetPort)) continue;
        ports.set(port.targetPort, portProtocol(service, port));
      }
    }
    return [...ports].sort((a, b) => a[0] - b[0]).map(([port, protocol]) => ({ port, protocol }));
  }

  /** The service a hostname names, if this proxy sees it (of several with one hostname, the last in model order). */
  service(hostname: string): VisibleService | undefined {
    const candidates = this.index.byHost.get(hostname) ?? [];
    for (let i = candidates.length - 1; i >= 0; i--) {
      const service = candidates[i] as MeshService;
      if (this.sees(service, hostname)) return { service, hostname };
    }
    return undefined;
  }

  /**
   * The domains of a visible service's virtual host for this proxy (host-names.ts virtualHostDomains):
   * each also with `:port` when a port is given (proxyless gRPC); without, for sidecars, whose route
   * configurations ignore the port in host matching, as Istio's do.
   */
  domainsOf({ service, hostname }: VisibleService, port?: number): string[] {
    return virtualHostDomains({
      hostname,
      ...(service.addresses ? { addresses: service.addresses } : {}),
      ...(service.headless ? { headless: true } : {}),
      callerNamespace: this.scope.namespace,
      clusterDomain: this.model.clusterDomain,
      ...(port !== undefined ? { port } : {}),
    });
  }

  /**
   * The VirtualService routing a host: the most specific host pattern, then a Gateway API (GAMMA)
   * route in this proxy's own namespace, then the oldest rule (Istio does not merge them for sidecars).
   *
   * A VirtualService converted from a GAMMA HTTPRoute or GRPCRoute (`usesGatewaySemantics`) applies only to
   * callers in its namespace (a consumer route) or to a Service in its namespace (a producer route),
   * and only to a Service this proxy sees, as istiod's buildSidecarVirtualHostsForVirtualService
   * (pilot/pkg/networking/core/route/route.go); a consumer route comes before every other rule of the
   * same host, as istiod's SelectVirtualServices (pilot/pkg/model/virtualservice.go) lists the
   * gateway-semantics rules of the proxy's namespace first, and the GAMMA specification has consumer routes
   * override producer routes (GEP-1426). Undefined when no rule applies.
   */
  virtualServiceFor(hostname: string): ConfigObject<VirtualServiceSpec> | undefined {
    let best: { rule: ConfigObject<VirtualServiceSpec>; specificity: number; consumer: boolean } | undefined;
    for (const { rule, hosts } of this.index.virtualServices.candidates(hostname)) {
      if (!exportedTo(rule.spec.exportTo, rule.namespace, this.scope.namespace)) continue;
      // Rules bound to gateways only do not apply to sidecars ("mesh" is the sidecars' name).
      if (rule.spec.gateways && rule.spec.gateways.length > 0 && !rule.spec.gateways.includes('mesh')) continue;
      const gatewaySemantics = usesGatewaySemantics(rule);
      if (gatewaySemantics) {
        const serviceNamespace = this.service(hostname)?.service.namespace;
        if (serviceNamespace === undefined || (serviceNamespace !== rule.namespace && this.scope.namespace !== rule.namespace)) continue;
      }
      const consumer = gatewaySemantics && rule.namespace === this.scope.namespace;
      const specificity = Math.max(-1, ...hosts.filter((pattern) => hostMatches(pattern, hostname)).map(hostSpecificity));
      // Candidates come oldest first, so a later one wins only by a more specific host or as the first consumer route.
      if (specificity < 0) continue;
      if (!best || specificity > best.specificity || (specificity === best.specificity && consumer && !best.consumer))
        best = { rule, specificity, consumer };
    }
    return best?.rule;
  }

  /**
   * Istio's lookup order: a rule in the proxy's namespace, then in the service's
   * namespace, then in the root namespace; within one namespace the most specific
   * host wins and rules for the same host merge (subsets appended, oldest policy first).
   */
  destinationRuleFor(hostname: string): EffectiveDestinationRule | undefined {
    const applicable = this.index.destinationRules
      .candidates(hostname)
      .filter(({ rule, host }) => hostMatches(host, hostname) && exportedTo(rule.spec.exportTo, rule.namespace, this.scope.namespace))
      .filter(
        ({ rule }) =>
          !rule.spec.workloadSelector ||
          (rule.namespace === this.scope.namespace && labelsMatch(rule.spec.workloadSelector.matchLabels, this.scope.labels)),
      );
    if (applicable.length === 0) return undefined;
    const serviceNamespace = this.service(hostname)?.service.namespace;
    const namespaces = [this.scope.namespace, serviceNamespace, this.rootNamespace].filter((ns): ns is string => ns !== undefined);
    for (const namespace of [...new Set(namespaces)]) {
      const candidates = applicable.filter(({ rule }) => rule.namespace === namespace);
      if (candidates.length === 0) continue;
      const specificity = Math.max(...candidates.map(({ host }) => hostSpecificity(host)));
      // A rule with a workload selector beats the namespace-wide one for the workloads it selects.
      const rules = candidates
        .filter(({ host }) => hostSpecificity(host) === specificity)
        .map(({ rule }) => rule)
        .sort((a, b) => Number(!!b.spec.workloadSelector) - Number(!!a.spec.workloadSelector));
      const seen = new Set<string>();
      const subsets = rules
        .flatMap((rule) => rule.spec.subsets ?? [])
        .filter((subset) => !seen.has(subset.name) && !!seen.add(subset.name));
      const policy = rules.find((rule) => rule.spec.trafficPolicy)?.spec.trafficPolicy;
      return { rules, subsets, ...(policy ? { trafficPolicy: policy } : {}) };
    }
    return undefined;
  }
}

/** The Sidecar resource for a proxy: one selecting its labels, else its namespace's default, else the root namespace's. */
export function sidecarFor(
  sidecars: ReadonlyArray<ConfigObject<SidecarSpec>>,
  scope: ProxyScope,
  rootNamespace: string,
): ConfigObject<SidecarSpec> | undefined {
  const sorted = [...sidecars].sort(byAge);
  return (
    sorted.find(
      (s) => s.namespace === scope.namespace && s.spec.workloadSelector && labelsMatch(s.spec.workloadSelector.labels, scope.labels),
    ) ??
    sorted.find((s) => s.namespace === scope.namespace && !s.spec.workloadSelector) ??
    sorted.find((s) => s.namespace === rootNamespace && !s.spec.workloadSelector)
  );
}

/** Sidecar egress `hosts` entries, `namespace/dnsName`: `*` any namespace, `.` the Sidecar's own, `~` none. */
function egressAllows(entries: ReadonlyArray<string>, sidecarNamespace: string, serviceNamespace: string, hostname: string): boolean {
  return entries.some((entry) => {
    const slash = entry.indexOf('/');
    const [namespace, host] = slash < 0 ? ['*', entry] : [entry.slice(0, slash), entry.slice(slash + 1)];
    if (namespace === '~') return false;
    const namespaceOk = namespace === '*' || (namespace === '.' ? serviceNamespace === sidecarNamespace : namespace === serviceNamespace);
    return namespaceOk && hostMatches(host, hostname);
  });
}
