// The outbound config of one group of proxies (same kind, namespace and outbound
// selectors: see traffic/scope-signature), kept up to date per host. Each visible
// host contributes its clusters, its ClusterLoadAssignments and, per port, a
// virtual host (Envoy) or a listener and route (proxyless gRPC); the hosts each
// contribution read (its own, and the destinations of its VirtualService) are
// recorded, so a change to host X derives again exactly the contributions that
// read X. Envoy's per-port route configurations are assembled from virtual hosts
// encoded once, by concatenating their bytes.
import { isDeepStrictEqual } from 'node:util';
import { typeOf, typeUrls } from '../protos.js';
import {
  envoyOutboundCluster,
  envoyOutboundFixed,
  envoyVirtualHost,
  outboundListenerContext,
  registryOnly,
  routeConfigurationTail,
} from '../generate/envoy-sidecar-resources.js';
import { grpcApiListener, grpcCluster, grpcRouteConfiguration, withDigest } from '../generate/grpc-client-resources.js';
import {
  outboundListener,
  outboundListenerClaims,
  routedPorts,
  sniffedRouteConfiguration,
  type ListenerClaim,
  type OutboundListenerContext,
} from '../generate/envoy-outbound.js';
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
  /** Envoy: port to the encoded virtual host and its domains. */
  virtualHosts: Map<number, { bytes: Buffer; domains: string[] }>;
  /** Envoy: the listeners its ports claim (see generate/envoy-outbound.ts). */
  claims: ListenerClaim[];
  /** Proxyless gRPC: listeners and routes by name; Envoy: the route configurations of its detected ports (`<host>:<port>`). */
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
  /** Envoy: per listener name, the claims of each host on it; and the route configurations each listener reads. */
  private readonly claims = new Map<string, Map<string, ListenerClaim[]>>();
  /** Per listener name, its claiming hosts in locale order; dropped when a host joins or leaves it (sorting thousands per edit was the cost). */
  private readonly claimOrder = new Map<string, string[]>();
  private readonly listenerRds = new Map<string, string[]>();
  private fixedNames = { listeners: new Set<string>(), clusters: new Set<string>() };
  private listenerContext: OutboundListenerContext = { telemetry: {}, unknownHosts: 'PassthroughCluster' };
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
    const dirtyListeners = new Set<string>(this.claims.keys());
    for (const host of hosts) this.derive(ctx, view, host, false, changed, dirtyPorts, dirtyListeners);
    this.assembleListeners(ctx, dirtyListeners, dirtyPorts, changed);
    this.assemblePorts(ctx, dirtyPorts, changed);
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
    const dirtyListeners = new Set<string>();
    for (const host of dirty) this.derive(ctx, view, host, false, changed, dirtyPorts, dirtyListeners);
    for (const host of change.endpointHosts)
      if (!dirty.has(host) && this.parts.has(host)) this.derive(ctx, view, host, true, changed, dirtyPorts, dirtyListeners);
    this.assembleListeners(ctx, dirtyListeners, dirtyPorts, changed);
    this.assemblePorts(ctx, dirtyPorts, changed);
    this.stale = false;
    return changed;
  }

  private deriveFixed(ctx: GenerationContext, view: ProxyView, changed: ChangedNames): void {
    this.blocked = registryOnly(view);
    this.listenerContext = outboundListenerContext(view);
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
    dirtyListeners: Set<string>,
  ): void {
    const old = this.parts.get(host);
    // Counted so tests and the benchmark see which changes reach outbound groups at all.
    ctx.derivations.add('outbound-host');
    view.reads = new Set([host]);
    const visible = view.service(host);
    if (!visible) {
      view.reads = undefined;
      if (old) this.replace(host, old, undefined, changed, dirtyPorts, dirtyListeners);
      return;
    }
    const part: HostPart = {
      clusters: new Map(),
      endpoints: new Map(),
      virtualHosts: endpointsOnly && old ? old.virtualHosts : new Map(),
      // A ServiceEntry with resolution NONE claims a listener per endpoint: its claims follow its endpoints.
      claims:
        this.scope.kind !== 'sidecar'
          ? []
          : endpointsOnly && old && !(visible.service.hostname !== undefined && visible.service.resolution === 'NONE')
            ? old.claims
            : sameOr(old?.claims, outboundListenerClaims(view, visible)),
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
      if (this.scope.kind === 'sidecar') {
        for (const port of routedPorts(visible.service)) {
          const virtualHost = envoyVirtualHost(view, visible, port);
          part.virtualHosts.set(port, {
            bytes: ctx.encodePart(typeUrls.route, { virtual_hosts: [virtualHost] }),
            domains: virtualHost['domains'] as string[],
          });
        }
        for (const claim of part.claims) {
          if (claim.listenerProtocol !== 'AUTO' || claim.rds === String(claim.port) || part.routes.has(claim.rds)) continue;
          const config = sniffedRouteConfiguration(claim.rds, envoyVirtualHost(view, visible, claim.port));
          part.routes.set(claim.rds, ctx.encode(typeUrls.route, claim.rds, config));
        }
      }
      for (const port of this.scope.kind === 'sidecar' ? [] : outboundPorts(visible.service)) {
        const name = `${host}:${port.port}`;
        part.listeners.set(
          name,
          ctx.encodeOnce(typeUrls.listener, name, 'api-listener', () => withDigest(grpcApiListener(name))),
        );
        part.routes.set(name, ctx.encodeStamped(typeUrls.route, name, grpcRouteConfiguration(view, visible, port.port)));
      }
    } else {
      for (const read of old.reads) part.reads.add(read);
    }
    view.reads = undefined;
    this.replace(host, old, part, changed, dirtyPorts, dirtyListeners);
  }

  /** Swaps a host's contribution in the group's resources, noting what changed. */
  private replace(
    host: string,
    old: HostPart | undefined,
    part: HostPart | undefined,
    changed: ChangedNames,
    dirtyPorts: Set<number>,
    dirtyListeners: Set<string>,
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
        const virtualHost = part?.virtualHosts.get(port);
        let routes = this.ports.get(port);
        if (!routes && virtualHost) this.ports.set(port, (routes = new PortRoutes()));
        if (virtualHost ? routes?.set(host, virtualHost.bytes, virtualHost.domains) : routes?.delete(host)) dirtyPorts.add(port);
      }
    }
    if (old?.claims !== part?.claims) {
      const before = new Set((old?.claims ?? []).map((claim) => claim.name));
      const after = new Set((part?.claims ?? []).map((claim) => claim.name));
      for (const claim of old?.claims ?? []) {
        dirtyListeners.add(claim.name);
        this.claims.get(claim.name)?.delete(host);
      }
      for (const claim of part?.claims ?? []) {
        dirtyListeners.add(claim.name);
        let byHost = this.claims.get(claim.name);
        if (!byHost) this.claims.set(claim.name, (byHost = new Map()));
        byHost.set(host, [...(byHost.get(host) ?? []), claim]);
      }
      for (const name of before) if (!after.has(name)) this.claimOrder.delete(name);
      for (const name of after) if (!before.has(name)) this.claimOrder.delete(name);
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

  /**
   * Envoy: each changed listener, from its claims in the from-scratch generator's
   * order (hosts by locale order, then port order); a change to `0.0.0.0_<port>`
   * may change whether the route configuration `<port>` is read, so that port is
   * assembled again too.
   */
  private assembleListeners(ctx: GenerationContext, names: Set<string>, dirtyPorts: Set<number>, changed: ChangedNames): void {
    if (this.scope.kind !== 'sidecar') return;
    for (const name of names) {
      const byHost = this.claims.get(name);
      let order = this.claimOrder.get(name);
      if (!order) this.claimOrder.set(name, (order = [...(byHost?.keys() ?? [])].sort(collator.compare)));
      const claims = order.flatMap((host) => byHost?.get(host) ?? []);
      if (claims.length > 0) ctx.derivations.add('outbound-listener');
      const built = claims.length > 0 ? outboundListener(claims, this.listenerContext) : undefined;
      if (byHost && byHost.size === 0) {
        this.claims.delete(name);
        this.claimOrder.delete(name);
      }
      if (name.startsWith('0.0.0.0_')) dirtyPorts.add(Number(name.slice(name.lastIndexOf('_') + 1)));
      if (!built) {
        this.listenerRds.delete(name);
        if (this.listeners.delete(name)) note(changed, typeUrls.listener, name);
        continue;
      }
      this.listenerRds.set(name, built.rds);
      if (this.listeners.set(ctx.encode(typeUrls.listener, name, built.listener))) note(changed, typeUrls.listener, name);
    }
  }

  /** Envoy: each changed port's route configuration, from its virtual hosts' bytes, where its listener reads it. */
  private assemblePorts(ctx: GenerationContext, ports: Set<number>, changed: ChangedNames): void {
    if (this.scope.kind !== 'sidecar') return;
    for (const port of [...ports].sort((a, b) => a - b)) {
      const routes = this.ports.get(port);
      const routeName = String(port);
      if (routes?.size === 0) this.ports.delete(port);
      if (!routes || routes.size === 0 || !this.listenerRds.get(`0.0.0.0_${port}`)?.includes(routeName)) {
        if (this.routes.delete(routeName)) note(changed, typeUrls.route, routeName);
        continue;
      }
      const prefix = ctx.encodePart(typeUrls.route, { name: routeName });
      const suffix = ctx.encodePart(typeUrls.route, routeConfigurationTail(this.blocked));
      // Groups whose virtual hosts are the same share one assembled configuration.
      const digest = routes.digest(routeName, prefix, suffix);
      const resource = ctx.assembled(typeUrls.route, routeName, digest, () => routes.bytes(prefix, suffix, dropDomains));
      if (this.routes.set(resource, digest)) note(changed, typeUrls.route, routeName);
    }
  }
}

/** A virtual host part (a RouteConfiguration holding it alone) again, without some domains (see PortRoutes). */
function dropDomains(bytes: Buffer, drop: ReadonlySet<string>): Buffer | undefined {
  const type = typeOf(typeUrls.route);
  const message = type.decode(bytes) as unknown as { virtual_hosts: Array<{ domains: string[] }> };
  const virtualHost = message.virtual_hosts[0] as { domains: string[] };
  virtualHost.domains = virtualHost.domains.filter((domain) => !drop.has(domain.toLowerCase()));
  return virtualHost.domains.length > 0 ? Buffer.from(type.encode(message as unknown as protobufMessage).finish()) : undefined;
}

type protobufMessage = Parameters<ReturnType<typeof typeOf>['encode']>[0];

const collator = new Intl.Collator();

/** The previous value when the new one is equal: identity then tells later steps nothing changed. */
function sameOr<T>(previous: T | undefined, next: T): T {
  return previous !== undefined && isDeepStrictEqual(previous, next) ? previous : next;
}

export function note(changed: ChangedNames, typeUrl: string, name: string): void {
  let names = changed.get(typeUrl);
  if (!names) changed.set(typeUrl, (names = new Set()));
  names.add(name);
}
