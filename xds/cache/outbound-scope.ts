// The outbound config of one group of proxies (same kind, namespace and outbound
// selectors: see traffic/scope-signature), kept up to date per host. Each visible
// host contributes its clusters, its ClusterLoadAssignments and, per port, a
// virtual host (Envoy) or a listener and route (proxyless gRPC); the hosts each
// contribution read (its own, and the destinations of its VirtualService) are
// recorded, so a change to host X derives again exactly the contributions that
// read X. Envoy's per-port route configurations are assembled from virtual hosts
// encoded once, by concatenating their bytes.
import { typeUrls } from '../protos.js';
import {
  catchAllVirtualHost,
  clientTelemetryFields,
  envoyOutboundCluster,
  envoyOutboundFixed,
  envoyOutboundListener,
  envoyVirtualHost,
  registryOnly,
} from '../generate/envoy-sidecar-resources.js';
import { grpcApiListener, grpcCluster, grpcRouteConfiguration, withDigest } from '../generate/grpc-client-resources.js';
import { outboundPorts, serviceClusters } from '../traffic/outbound-clusters.js';
import { ProxyView, type EffectiveDestinationRule, type VisibleService } from '../traffic/proxy-view.js';
import type { ConfigObject, VirtualServiceSpec } from '../model/istio-config.js';
import type { ProxyScope } from '../traffic/proxy-scope.js';
import { hostMatches } from '../traffic/host-names.js';
import type { EncodedResource } from '../server/discovery-types.js';
import type { GenerationContext } from './generation-context.js';
import { includes, type ModelChange } from './model-change.js';
import { PortRoutes } from './port-routes.js';
import { ResourceMap } from './resource-map.js';

/** Per type URL, the names whose resource changed or went away. */
export type ChangedNames = Map<string, Set<string>>;

/** A view that records which hosts a derivation read (krt's Fetch, by hand). */
class TrackingView extends ProxyView {
  reads: Set<string> | undefined;

  override service(hostname: string): VisibleService | undefined {
    this.reads?.add(hostname);
    return super.service(hostname);
  }

  override destinationRuleFor(hostname: string): EffectiveDestinationRule | undefined {
    this.reads?.add(hostname);
    return super.destinationRuleFor(hostname);
  }

  override virtualServiceFor(hostname: string): ConfigObject<VirtualServiceSpec> | undefined {
    this.reads?.add(hostname);
    return super.virtualServiceFor(hostname);
  }
}

interface HostPart {
  clusters: Map<string, EncodedResource>;
  endpoints: Map<string, EncodedResource>;
  /** Envoy: port to the encoded virtual host. */
  virtualHosts: Map<number, Buffer>;
  /** Proxyless gRPC: listeners and routes by name. */
  listeners: Map<string, EncodedResource>;
  routes: Map<string, EncodedResource>;
  reads: Set<string>;
}

export class OutboundScope {
  readonly listeners = new ResourceMap();
  readonly routes = new ResourceMap();
  readonly clusters = new ResourceMap();
  readonly endpoints = new ResourceMap();
  /** Proxies using this group; it is dropped at the next change once none does. */
  connected = 0;
  private readonly parts = new Map<string, HostPart>();
  private readonly readers = new Map<string, Set<string>>();
  /** Envoy: per port, the virtual hosts by hostname, kept in the from-scratch generator's order. */
  private readonly ports = new Map<number, PortRoutes>();
  private fixedNames = { listeners: new Set<string>(), clusters: new Set<string>() };
  private telemetry: Record<string, unknown> = {};
  private blocked = false;
  /** Set while a derivation runs: still set after one that threw, so the next is whole. */
  private stale = false;

  constructor(
    readonly key: string,
    /** The member whose labels stand for the group (any member: they differ only in labels no selector reads). */
    public scope: ProxyScope,
  ) {}

  /** Derives everything again (a new group, or its Sidecar, Telemetry or mesh-wide inputs changed); notes changes in `changed`. */
  rebuild(ctx: GenerationContext, changed: ChangedNames = new Map()): ChangedNames {
    this.stale = true;
    const view = new TrackingView(ctx.model, this.scope, ctx.index);
    if (this.scope.kind === 'sidecar') this.deriveFixed(ctx, view, changed);
    const hosts = new Set([...this.parts.keys(), ...ctx.index.byHost.keys()]);
    const dirtyPorts = new Set<number>(this.ports.keys());
    for (const host of hosts) this.derive(ctx, view, host, false, changed, dirtyPorts);
    this.assemblePorts(ctx, dirtyPorts, changed, true);
    this.stale = false;
    return changed;
  }

  /** Derives again what one change touches: the changed hosts, the contributions that read them, moved endpoints. */
  apply(ctx: GenerationContext, change: ModelChange, changed: ChangedNames = new Map()): ChangedNames {
    // A group whose last derivation failed part way is derived whole.
    if (this.stale || change.everything || includes(change.outboundNamespaces, this.scope.namespace)) return this.rebuild(ctx, changed);
    this.stale = true;
    const view = new TrackingView(ctx.model, this.scope, ctx.index);
    const dirty = new Set(change.hosts);
    for (const host of change.hosts) for (const reader of this.readers.get(host) ?? []) dirty.add(reader);
    // Wildcard rules also reach hosts a route read that are no service (a VirtualService's external destination).
    for (const pattern of change.hostPatterns) {
      for (const [read, readers] of this.readers) if (hostMatches(pattern, read)) for (const reader of readers) dirty.add(reader);
    }
    const dirtyPorts = new Set<number>();
    for (const host of dirty) this.derive(ctx, view, host, false, changed, dirtyPorts);
    for (const host of change.endpointHosts)
      if (!dirty.has(host) && this.parts.has(host)) this.derive(ctx, view, host, true, changed, dirtyPorts);
    this.assemblePorts(ctx, dirtyPorts, changed, false);
    this.stale = false;
    return changed;
  }

  private deriveFixed(ctx: GenerationContext, view: ProxyView, changed: ChangedNames): void {
    this.blocked = registryOnly(view);
    this.telemetry = clientTelemetryFields(view);
    const fixed = envoyOutboundFixed(view);
    const apply = (map: ResourceMap, typeUrl: string, resources: Record<string, Record<string, unknown>>, held: Set<string>) => {
      for (const [name, object] of Object.entries(resources)) if (map.set(ctx.encode(typeUrl, name, object))) note(changed, typeUrl, name);
      for (const name of held) if (!(name in resources) && map.delete(name)) note(changed, typeUrl, name);
      return new Set(Object.keys(resources));
    };
    this.fixedNames = {
      listeners: apply(this.listeners, typeUrls.listener, fixed.listeners, this.fixedNames.listeners),
      clusters: apply(this.clusters, typeUrls.cluster, fixed.clusters, this.fixedNames.clusters),
    };
  }

  /** One host's contribution, derived again (`endpointsOnly`: its clusters and endpoints only). */
  private derive(
    ctx: GenerationContext,
    view: TrackingView,
    host: string,
    endpointsOnly: boolean,
    changed: ChangedNames,
    dirtyPorts: Set<number>,
  ): void {
    const old = this.parts.get(host);
    view.reads = new Set([host]);
    const visible = view.service(host);
    if (!visible) {
      view.reads = undefined;
      if (old) this.replace(host, old, undefined, changed, dirtyPorts);
      return;
    }
    const part: HostPart = {
      clusters: new Map(),
      endpoints: new Map(),
      virtualHosts: endpointsOnly && old ? old.virtualHosts : new Map(),
      listeners: endpointsOnly && old ? old.listeners : new Map(),
      routes: endpointsOnly && old ? old.routes : new Map(),
      reads: view.reads,
    };
    const rule = view.destinationRuleFor(host);
    for (const cluster of serviceClusters(view, visible)) {
      const derived = ctx.cluster(this.scope.kind, cluster, rule?.rules ?? [], () =>
        this.scope.kind === 'grpc' ? grpcCluster(cluster, ctx.model) : envoyOutboundCluster(cluster, ctx.model),
      );
      part.clusters.set(cluster.name, derived.resource);
      if (derived.eds) part.endpoints.set(cluster.name, ctx.loadAssignment(cluster));
    }
    if (!endpointsOnly || !old) {
      for (const port of outboundPorts(visible.service)) {
        if (this.scope.kind === 'sidecar') {
          part.virtualHosts.set(port.port, ctx.encodePart(typeUrls.route, { virtual_hosts: [envoyVirtualHost(view, visible, port.port)] }));
        } else {
          const name = `${host}:${port.port}`;
          part.listeners.set(
            name,
            ctx.encodeOnce(typeUrls.listener, name, 'api-listener', () => withDigest(grpcApiListener(name))),
          );
          part.routes.set(name, ctx.encodeStamped(typeUrls.route, name, grpcRouteConfiguration(view, visible, port.port)));
        }
      }
    } else {
      for (const read of old.reads) part.reads.add(read);
    }
    view.reads = undefined;
    this.replace(host, old, part, changed, dirtyPorts);
  }

  /** Swaps a host's contribution in the group's resources, noting what changed. */
  private replace(
    host: string,
    old: HostPart | undefined,
    part: HostPart | undefined,
    changed: ChangedNames,
    dirtyPorts: Set<number>,
  ): void {
    const swap = (
      map: ResourceMap,
      typeUrl: string,
      before: Map<string, EncodedResource> | undefined,
      after: Map<string, EncodedResource> | undefined,
    ) => {
      for (const name of before?.keys() ?? []) if (!after?.has(name) && map.delete(name)) note(changed, typeUrl, name);
      for (const resource of after?.values() ?? []) if (map.set(resource)) note(changed, typeUrl, resource.name);
    };
    swap(this.clusters, typeUrls.cluster, old?.clusters, part?.clusters);
    swap(this.endpoints, typeUrls.endpoint, old?.endpoints, part?.endpoints);
    swap(this.listeners, typeUrls.listener, old?.listeners, part?.listeners);
    swap(this.routes, typeUrls.route, old?.routes, part?.routes);
    if (old?.virtualHosts !== part?.virtualHosts) {
      for (const port of new Set([...(old?.virtualHosts.keys() ?? []), ...(part?.virtualHosts.keys() ?? [])])) {
        const bytes = part?.virtualHosts.get(port);
        let routes = this.ports.get(port);
        if (!routes && bytes) this.ports.set(port, (routes = new PortRoutes()));
        if (bytes ? routes?.set(host, bytes) : routes?.delete(host)) dirtyPorts.add(port);
      }
    }
    for (const read of old?.reads ?? []) {
      if (part?.reads.has(read)) continue;
      const readers = this.readers.get(read);
      readers?.delete(host);
      if (readers?.size === 0) this.readers.delete(read);
    }
    for (const read of part?.reads ?? []) {
      let readers = this.readers.get(read);
      if (!readers) this.readers.set(read, (readers = new Set()));
      readers.add(host);
    }
    if (part) this.parts.set(host, part);
    else this.parts.delete(host);
  }

  /** Envoy: each changed port's route configuration, from its virtual hosts' bytes; and its listener. */
  private assemblePorts(ctx: GenerationContext, ports: Set<number>, changed: ChangedNames, listenersToo: boolean): void {
    if (this.scope.kind !== 'sidecar') return;
    for (const port of [...ports].sort((a, b) => a - b)) {
      const routes = this.ports.get(port);
      const routeName = String(port);
      const listenerName = `0.0.0.0_${port}`;
      if (!routes || routes.size === 0) {
        this.ports.delete(port);
        if (this.routes.delete(routeName)) note(changed, typeUrls.route, routeName);
        if (this.listeners.delete(listenerName)) note(changed, typeUrls.listener, listenerName);
        continue;
      }
      const prefix = ctx.encodePart(typeUrls.route, { name: routeName });
      const suffix = ctx.encodePart(typeUrls.route, {
        virtual_hosts: [catchAllVirtualHost(this.blocked)],
        validate_clusters: { value: false },
      });
      // Groups whose virtual hosts are the same share one assembled configuration.
      const digest = routes.digest(routeName, prefix, suffix);
      const resource = ctx.assembled(typeUrls.route, routeName, digest, () => routes.bytes(prefix, suffix));
      if (this.routes.set(resource, digest)) note(changed, typeUrls.route, routeName);
      if (listenersToo || !this.listeners.has(listenerName)) {
        const listener = ctx.encode(typeUrls.listener, listenerName, envoyOutboundListener(port, this.telemetry));
        if (this.listeners.set(listener)) note(changed, typeUrls.listener, listenerName);
      }
    }
  }
}

export function note(changed: ChangedNames, typeUrl: string, name: string): void {
  let names = changed.get(typeUrl);
  if (!names) changed.set(typeUrl, (names = new Set()));
  names.add(name);
}
