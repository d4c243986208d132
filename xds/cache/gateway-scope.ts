// The listeners and route configurations of one group of gateway proxies (same
// namespace, same Gateways selecting them, same Services selecting their workload:
// see traffic/scope-signature gatewayScopeKey). Derived whole (a gateway's config is
// small next to a sidecar's), when the group is created and again only when one of
// its Gateways, a VirtualService bound to one of them, or a destination host its
// routes read (Service or DestinationRule) changes, or its namespace's Telemetry, or
// the mesh-wide inputs (an AUTO_PASSTHROUGH server reads every service: any
// Service or DestinationRule change). Its clusters and endpoints come from an
// outbound group (cache/outbound-scope.ts) of its namespace, as a sidecar's would,
// plus its AUTO_PASSTHROUGH servers' SNI-DNAT clusters.
import { typeUrls } from '../protos.js';
import { envoyGatewayResources } from '../generate/envoy-gateway.js';
import type { ConfigObject, VirtualServiceSpec } from '../model/istio-config.js';
import { serviceHost } from '../model/mesh-model.js';
import { gatewaysSelecting, mergeGateways, proxyServicePorts } from '../traffic/gateway-servers.js';
import { hostMatches, labelsMatch } from '../traffic/host-names.js';
import type { ProxyScope } from '../traffic/proxy-scope.js';
import { ProxyView, type EffectiveDestinationRule, type VisibleService } from '../traffic/proxy-view.js';
import type { GenerationContext } from './generation-context.js';
import { includes, type ModelChange } from './model-change.js';
import { note, type ChangedNames } from './outbound-scope.js';
import { ResourceMap } from './resource-map.js';

/** A view recording the hosts a derivation read, so only their changes derive the group again. */
class ReadRecordingView extends ProxyView {
  readonly reads = new Set<string>();

  override service(hostname: string): VisibleService | undefined {
    this.reads.add(hostname);
    return super.service(hostname);
  }

  override destinationRuleFor(hostname: string): EffectiveDestinationRule | undefined {
    this.reads.add(hostname);
    return super.destinationRuleFor(hostname);
  }

  override virtualServiceFor(hostname: string): ConfigObject<VirtualServiceSpec> | undefined {
    this.reads.add(hostname);
    return super.virtualServiceFor(hostname);
  }
}

export class GatewayScope {
  readonly listeners = new ResourceMap();
  readonly routes = new ResourceMap();
  /** SNI-DNAT clusters of AUTO_PASSTHROUGH servers. */
  readonly clusters = new ResourceMap();
  /** Proxies using this group; it is dropped at the next change once none does. */
  connected = 0;
  /** What Weft left out of these Gateways for this group (for status and debugging). */
  notApplied: string[] = [];
  private gateways = new Set<string>();
  private reads = new Set<string>();
  /** An AUTO_PASSTHROUGH server reads every visible service; its DNS services' endpoints are inline. */
  private autoPassthrough = false;
  private dnsHosts = new Set<string>();
  /** Set while a derivation runs: still set after one that threw, so the next one happens. */
  private stale = false;

  constructor(
    readonly key: string,
    /** The member whose labels stand for the group (members differ only in labels no selector reads). */
    public scope: ProxyScope,
  ) {}

  /** Derives the group's listeners and routes whole; notes what changed in `changed`. */
  rebuild(ctx: GenerationContext, changed: ChangedNames = new Map()): ChangedNames {
    this.stale = true;
    ctx.derivations.add('gateway');
    const view = new ReadRecordingView(ctx.model, this.scope, ctx.index);
    const selecting = gatewaysSelecting(ctx.index, this.scope);
    const targets = proxyServicePorts(ctx.index, this.scope);
    const merged = mergeGateways(selecting, targets);
    const resources = envoyGatewayResources(view, merged);
    const apply = (map: ResourceMap, typeUrl: string, objects: Record<string, Record<string, unknown>>) => {
      for (const name of [...map.names()]) if (!(name in objects) && map.delete(name)) note(changed, typeUrl, name);
      for (const [name, object] of Object.entries(objects)) if (map.set(ctx.encode(typeUrl, name, object))) note(changed, typeUrl, name);
    };
    apply(this.listeners, typeUrls.listener, resources.listeners);
    apply(this.routes, typeUrls.route, resources.routes);
    apply(this.clusters, typeUrls.cluster, resources.clusters);
    this.autoPassthrough = resources.autoPassthrough;
    this.dnsHosts = resources.dnsHosts;
    this.gateways = new Set(merged.gateways);
    // The Services whose ports decide the listener ports are read too.
    for (const service of ctx.index.byNamespace.get(this.scope.namespace) ?? []) {
      if (service.selector && Object.keys(service.selector).length > 0 && labelsMatch(service.selector, this.scope.labels))
        view.reads.add(serviceHost(service, ctx.model.clusterDomain));
    }
    this.reads = view.reads;
    this.notApplied = resources.notApplied;
    this.stale = false;
    return changed;
  }

  /** Derives the group again when the change touches what it read; else nothing. */
  apply(ctx: GenerationContext, change: ModelChange, changed: ChangedNames = new Map()): ChangedNames {
    if (this.stale || this.affectedBy(change)) return this.rebuild(ctx, changed);
    return changed;
  }

  private affectedBy(change: ModelChange): boolean {
    if (change.everything || includes(change.outboundNamespaces, this.scope.namespace)) return true;
    for (const gateway of change.gateways) if (this.gateways.has(gateway)) return true;
    for (const gateway of change.gatewayRoutes) if (this.gateways.has(gateway)) return true;
    if (this.autoPassthrough && (change.destinationHosts.size > 0 || change.destinationPatterns.size > 0)) return true;
    for (const host of change.endpointHosts) if (this.dnsHosts.has(host)) return true;
    for (const host of change.destinationHosts) if (this.reads.has(host)) return true;
    for (const pattern of change.destinationPatterns) for (const read of this.reads) if (hostMatches(pattern, read)) return true;
    return false;
  }
}
