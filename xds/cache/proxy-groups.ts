// The ConfigSource weftd serves: proxies grouped by what their config depends on
// (outbound and inbound keys from traffic/scope-signature), each group's
// resources kept up to date incrementally (cache/outbound-scope, cache/inbound-scope)
// from the change between the previous model and the next (cache/model-change).
// A change costs what it touches: an endpoint move derives that service's
// ClusterLoadAssignments once and notifies only the proxies holding them; a
// VirtualService edit derives the virtual hosts of its hosts in the groups that
// see them. Groups are derived when their first proxy connects and dropped after
// the last one leaves.
import { typeUrls } from '../protos.js';
import { grpcServerListenerName, grpcServerListenerPrefix, grpcServerListenersOf } from '../generate/grpc-client-resources.js';
import { parseProxyId } from '../server/proxy-id.js';
import { encodeResource, typeOf } from '../protos.js';
import { KeyedMemo } from '../collections/keyed-memo.js';
import type { MeshModel } from '../model/mesh-model.js';
import type { ConfigChange, ConfigSource, DiscoveryNode, EncodedResource, ResourceSet } from '../server/discovery-types.js';
import { proxyScopeOf, scopeKey, type ProxyScope } from '../traffic/proxy-scope.js';
import { gatewayScopeKey, inboundScopeKey, outboundScopeKey, outboundScopeOf } from '../traffic/scope-signature.js';
import { GatewayScope } from './gateway-scope.js';
import { GenerationContext } from './generation-context.js';
import { InboundScope } from './inbound-scope.js';
import { modelChange, serviceKey, type ModelChange } from './model-change.js';
import { OutboundScope, type ChangedNames } from './outbound-scope.js';
import { ResourceMap, versionOf } from './resource-map.js';

interface ProxyEntry {
  /** The proxy's kind, namespace and labels as its node metadata gives them. */
  scope: ProxyScope;
  /** The scope its outbound group is derived for (a gateway's: a label-less sidecar of its namespace). */
  outScope: ProxyScope;
  labelKey: string;
  outKey: string;
  /** Sidecars only: proxyless clients have no inbound listener of their own (their servers ask by name), gateways none. */
  inKey: string | undefined;
  /** Gateway proxies (`router`) only: the group of their Gateway listeners and routes. */
  gwKey: string | undefined;
  connected: number;
}

/** The cluster a gateway proxy does not get of its outbound group: it has no original-destination listener (Istio's cluster.go). */
const notForGateways = 'PassthroughCluster';

export interface ProxyGroupStats {
  /** Distinct label sets among connected proxies (what grouping by labels would have made). */
  labelSets: number;
  outboundScopes: number;
  inboundScopes: number;
  gatewayScopes: number;
  /** Derivations per collection since the start. */
  derivations: Record<string, number>;
  /** Values each shared collection holds. */
  collections: Record<string, number>;
}

const served = new Set<string>(Object.values(typeUrls));

export class ProxyGroups implements ConfigSource {
  private readonly ctx = new GenerationContext();
  private previous: MeshModel | undefined;
  private readonly outbound = new Map<string, OutboundScope>();
  private readonly inbound = new Map<string, InboundScope>();
  private readonly gateway = new Map<string, GatewayScope>();
  private readonly proxies = new Map<string, ProxyEntry>();
  private readonly entryOf = new WeakMap<DiscoveryNode, ProxyEntry>();
  /** Inbound listeners of xDS-enabled gRPC servers, served only by name. */
  private readonly serverListeners = new ResourceMap();
  /** A server listener under the names it was asked for by (see ownServerListener), kept while it is the current one. */
  private readonly renamedServerListeners = new WeakMap<EncodedResource, Map<string, EncodedResource>>();
  // Kept until their service goes (dropped in the rounds that look at every service).
  private readonly serverListenersOf = new KeyedMemo<string, Map<string, EncodedResource>>(
    'grpc-server-listeners',
    this.ctx.derivations,
    Infinity,
  );
  private readonly listeners = new Set<(change: ConfigChange) => void>();
  /** One update at a time: updateAsync yields between groups. */
  private updating: Promise<unknown> = Promise.resolve();

  static isProxylessGrpc(node: DiscoveryNode): boolean {
    return proxyScopeOf(node).kind === 'grpc';
  }

  serves(typeUrl: string): boolean {
    return served.has(typeUrl);
  }

  resources(node: DiscoveryNode, typeUrl: string, names: string[]): ResourceSet {
    const entry = this.entry(node);
    const out = this.outboundOf(entry);
    const inb = this.inboundOf(entry);
    const gw = this.gatewayOf(entry);
    if (gw) return this.gatewayResources(gw, out, typeUrl, names);
    let maps: ResourceMap[];
    switch (typeUrl) {
      case typeUrls.listener:
        maps = [out.listeners, ...(inb ? [inb.listeners] : []), ...(names.length > 0 ? [this.serverListeners] : [])];
        break;
      case typeUrls.cluster:
        maps = [out.clusters, ...(inb ? [inb.clusters] : [])];
        break;
      case typeUrls.route:
        maps = [out.routes];
        break;
      case typeUrls.endpoint:
        maps = [out.endpoints];
        break;
      default:
        return { version: '0', resources: [] };
    }
    if (names.length === 0) {
      const resources = maps.length === 1 ? (maps[0] as ResourceMap).values() : maps.flatMap((m) => m.values());
      return { version: maps.map((m) => m.version).join('.'), resources };
    }
    const resources = names.flatMap((name) => {
      for (const map of maps) {
        const found = map.get(name);
        if (found) return [found];
      }
      const own =
        typeUrl === typeUrls.listener
          ? (this.ownServerListener(node, name) ?? this.aliasedClientListener(node, name, out.listeners))
          : undefined;
      return own ? [own] : [];
    });
    return { version: versionOf(resources), resources };
  }

  /**
   * A gateway proxy's resources: its Gateway listeners and route configurations, and the
   * clusters and endpoints of its outbound group but the passthrough cluster.
   */
  private gatewayResources(gw: GatewayScope, out: OutboundScope, typeUrl: string, names: string[]): ResourceSet {
    const map =
      typeUrl === typeUrls.listener
        ? gw.listeners
        : typeUrl === typeUrls.route
          ? gw.routes
          : typeUrl === typeUrls.cluster
            ? out.clusters
            : typeUrl === typeUrls.endpoint
              ? out.endpoints
              : undefined;
    if (!map) return { version: '0', resources: [] };
    const keep = (resource: EncodedResource) => typeUrl !== typeUrls.cluster || resource.name !== notForGateways;
    // AUTO_PASSTHROUGH servers' SNI-DNAT clusters come from the gateway group.
    const extra = typeUrl === typeUrls.cluster && gw.clusters.size > 0 ? gw.clusters : undefined;
    if (names.length === 0) {
      const resources = map.values().filter(keep);
      if (!extra) return { version: map.version, resources };
      return { version: `${map.version}.${extra.version}`, resources: [...resources, ...extra.values()] };
    }
    const resources = names.flatMap((name) => {
      const found = map.get(name) ?? extra?.get(name);
      return found && keep(found) ? [found] : [];
    });
    return { version: versionOf(resources), resources };
  }

  /**
   * A gRPC server's inbound listener asked for by another address than the pod's
   * own: grpc-go's xDS server listening on all interfaces asks for
   * `xds.istio.io/grpc/lds/inbound/0.0.0.0:<port>` (or `[::]:<port>`). istiod
   * answers by port from the proxy's own workload (pilot/pkg/networking/grpcgen/lds.go);
   * so does Weft: the listener of the proxy's IP (from its node id) on that port,
   * under the name and address asked for.
   */
  private ownServerListener(node: DiscoveryNode, name: string): EncodedResource | undefined {
    if (!name.startsWith(grpcServerListenerPrefix)) return undefined;
    const hostPort = /^\[?([^\]]*?)\]?:(\d+)$/.exec(name.slice(grpcServerListenerPrefix.length));
    const ip = parseProxyId(node.id)?.ip;
    if (!hostPort || !ip) return undefined;
    const [, host, port] = hostPort as unknown as [string, string, string];
    // Only the wildcard addresses: any other name would let a client grow this cache without bound.
    if (host !== '0.0.0.0' && host !== '::') return undefined;
    const own = this.serverListeners.get(grpcServerListenerName(ip, Number(port)));
    if (!own) return undefined;
    let renamed = this.renamedServerListeners.get(own);
    if (!renamed) this.renamedServerListeners.set(own, (renamed = new Map()));
    let resource = renamed.get(name);
    if (!resource) {
      const listener = typeOf(typeUrls.listener).toObject(typeOf(typeUrls.listener).decode(own.resource.value), { longs: Number });
      const address = (listener['address'] as { socket_address: Record<string, unknown> }).socket_address;
      const value = encodeResource(typeUrls.listener, { ...listener, name, address: { socket_address: { ...address, address: host } } });
      resource = { name, resource: { type_url: typeUrls.listener, value } };
      renamed.set(name, resource);
    }
    return resource;
  }

  /**
   * A proxyless client's API listener asked for by a shorter name of its service:
   * `xds:///reviews:9080` from the service's namespace, `reviews.bookinfo:9080`,
   * `reviews.bookinfo.svc:9080`. istiod resolves such names against the proxy's
   * namespace and serves the listener under the name asked for
   * (pilot/pkg/networking/grpcgen/lds.go, newListenerNameFilter); so does Weft.
   * Shape: the FQDN listener renamed, still reading the FQDN's route configuration.
   */
  private aliasedClientListener(node: DiscoveryNode, name: string, listeners: ResourceMap): EncodedResource | undefined {
    if (!ProxyGroups.isProxylessGrpc(node) || name.startsWith(grpcServerListenerPrefix)) return undefined;
    const colon = name.lastIndexOf(':');
    if (colon <= 0) return undefined;
    const host = name.slice(0, colon);
    const port = name.slice(colon + 1);
    const domain = this.previous?.clusterDomain ?? 'cluster.local';
    const labels = host.split('.');
    const fqdn =
      labels.length === 1
        ? `${host}.${proxyScopeOf(node).namespace}.svc.${domain}`
        : labels.length === 2
          ? `${host}.svc.${domain}`
          : labels.length === 3 && labels[2] === 'svc'
            ? `${host}.${domain}`
            : undefined;
    const full = fqdn ? listeners.get(`${fqdn}:${port}`) : undefined;
    if (!full) return undefined;
    let renamed = this.renamedServerListeners.get(full);
    if (!renamed) this.renamedServerListeners.set(full, (renamed = new Map()));
    let resource = renamed.get(name);
    if (!resource) {
      const listener = typeOf(typeUrls.listener).toObject(typeOf(typeUrls.listener).decode(full.resource.value), { longs: Number });
      resource = { name, resource: { type_url: typeUrls.listener, value: encodeResource(typeUrls.listener, { ...listener, name }) } };
      renamed.set(name, resource);
    }
    return resource;
  }

  connected(node: DiscoveryNode): () => void {
    const entry = this.entry(node);
    entry.connected++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.connected--;
    };
  }

  onChange(listener: (change: ConfigChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Number of config groups held (outbound plus inbound), for metrics and tests. */
  get scopeCount(): number {
    return this.outbound.size + this.inbound.size + this.gateway.size;
  }

  /** What the grouping and the shared collections hold, and the work done so far. */
  stats(): ProxyGroupStats {
    const live = [...this.proxies.values()].filter((e) => e.connected > 0);
    return {
      labelSets: live.length,
      outboundScopes: this.outbound.size,
      inboundScopes: this.inbound.size,
      gatewayScopes: this.gateway.size,
      derivations: this.ctx.derivations.snapshot(),
      collections: this.ctx.sizes(),
    };
  }

  /**
   * A new model: derives what changed since the last one, synchronously; returns (and
   * announces) the types that changed for any proxy. The model is a value: pass new
   * objects for what changed, never edit the last model in place (see modelChange).
   */
  update(model: MeshModel): string[] {
    const steps = this.steps(model);
    for (;;) {
      const next = steps.next();
      if (next.done) return next.value;
    }
  }

  /**
   * As `update`, yielding to the event loop between groups whenever `sliceMs` of
   * work has run, so the gRPC server, the CA and health checks answer during a
   * large derivation. Updates run one at a time, in call order.
   */
  updateAsync(model: MeshModel, sliceMs = 20): Promise<string[]> {
    const run = this.updating.then(async () => {
      const steps = this.steps(model);
      let sliceStart = performance.now();
      for (;;) {
        const next = steps.next();
        if (next.done) return next.value;
        if (performance.now() - sliceStart >= sliceMs) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          sliceStart = performance.now();
        }
      }
    });
    this.updating = run.catch(() => undefined);
    return run;
  }

  /** The derivation of one change, one group per step. */
  private *steps(model: MeshModel): Generator<void, string[], void> {
    const change = modelChange(this.previous, model);
    this.previous = model;
    this.ctx.use(model);
    if (change.peerAuthentication) this.ctx.epochs.peerAuthentication++;
    if (change.authorization) this.ctx.epochs.authorization++;
    if (change.everything) this.ctx.epochs.mesh++;

    // Proxies gone since the last change take their groups with them.
    for (const [key, entry] of this.proxies) if (entry.connected <= 0) this.proxies.delete(key);
    // A selector changed: proxies may now belong to other groups.
    const moved = new Set<ProxyEntry>();
    if (change.selectorsChanged) {
      for (const entry of this.proxies.values()) {
        const outKey = outboundScopeKey(this.ctx.index, entry.outScope);
        const inKey = entry.scope.kind === 'sidecar' ? inboundScopeKey(this.ctx.index, entry.scope) : undefined;
        const gwKey = entry.scope.kind === 'router' ? gatewayScopeKey(this.ctx.index, entry.scope) : undefined;
        if (outKey !== entry.outKey || inKey !== entry.inKey || gwKey !== entry.gwKey) {
          entry.outKey = outKey;
          entry.inKey = inKey;
          entry.gwKey = gwKey;
          moved.add(entry);
        }
      }
    }
    const liveOut = new Set([...this.proxies.values()].map((e) => e.outKey));
    const liveIn = new Set([...this.proxies.values()].flatMap((e) => (e.inKey ? [e.inKey] : [])));
    const liveGw = new Set([...this.proxies.values()].flatMap((e) => (e.gwKey ? [e.gwKey] : [])));
    for (const key of this.outbound.keys()) if (!liveOut.has(key)) this.outbound.delete(key);
    for (const key of this.inbound.keys()) if (!liveIn.has(key)) this.inbound.delete(key);
    for (const key of this.gateway.keys()) if (!liveGw.has(key)) this.gateway.delete(key);
    if (change.selectorsChanged) {
      // A group stands for its members by one member's labels: if that member would now belong
      // elsewhere, the group is derived anew from a current member, and its members get everything.
      for (const [key, group] of this.outbound) {
        if (outboundScopeKey(this.ctx.index, group.scope) === key) continue;
        this.outbound.delete(key);
        for (const entry of this.proxies.values()) if (entry.outKey === key) moved.add(entry);
      }
      for (const [key, group] of this.inbound) {
        if (inboundScopeKey(this.ctx.index, group.scope) === key) continue;
        this.inbound.delete(key);
        for (const entry of this.proxies.values()) if (entry.inKey === key) moved.add(entry);
      }
      for (const [key, group] of this.gateway) {
        if (gatewayScopeKey(this.ctx.index, group.scope) === key) continue;
        this.gateway.delete(key);
        for (const entry of this.proxies.values()) if (entry.gwKey === key) moved.add(entry);
      }
    }
    this.countConnected();

    const changedOut = new Map<string, ChangedNames>();
    const changedIn = new Map<string, ChangedNames>();
    const changedGw = new Map<string, ChangedNames>();
    const failures: string[] = [];
    yield* this.deriveGroups(this.outbound, liveOut, change, changedOut, failures, (key) => this.createOutbound(key));
    yield* this.deriveGroups(this.inbound, liveIn, change, changedIn, failures, (key) => this.createInbound(key));
    yield* this.deriveGroups(this.gateway, liveGw, change, changedGw, failures, (key) => this.createGateway(key));
    let serverListenersChanged = new Set<string>();
    try {
      serverListenersChanged = this.updateServerListeners(model, change);
    } catch (error) {
      failures.push(`proxyless server listeners: ${error instanceof Error ? error.message : String(error)}`);
    }
    for (const changed of [changedOut, changedIn, changedGw]) for (const [key, names] of changed) if (names.size === 0) changed.delete(key);
    // Everything derived for a host that changed was derived again in this round, if anyone still needs it.
    this.ctx.endRound(change.everything ? 'all' : new Set([...change.hosts, ...change.endpointHosts]));

    const types = new Set<string>();
    for (const names of [...changedOut.values(), ...changedIn.values(), ...changedGw.values()])
      for (const typeUrl of names.keys()) types.add(typeUrl);
    if (serverListenersChanged.size > 0) types.add(typeUrls.listener);
    if (moved.size > 0) for (const typeUrl of served) types.add(typeUrl);
    const changedTypes = [...types];
    if (changedTypes.length > 0) this.announce(changedTypes, changedOut, changedIn, changedGw, moved, serverListenersChanged);
    if (failures.length > 0) {
      throw new Error(`generation failed for ${failures.length} proxy group(s), which keep their last config: ${failures.join('; ')}`);
    }
    return changedTypes;
  }

  /** Each live group of one side, one per step: created when new, else the change applied to it. */
  private *deriveGroups<S extends OutboundScope | InboundScope | GatewayScope>(
    groups: Map<string, S>,
    keys: ReadonlySet<string>,
    change: ModelChange,
    changed: Map<string, ChangedNames>,
    failures: string[],
    create: (key: string) => S,
  ): Generator<void, void, void> {
    for (const key of keys) {
      try {
        const existing = groups.get(key);
        if (!existing) create(key);
        else {
          // Noted before deriving: what changed before a failure is still announced.
          const names: ChangedNames = new Map();
          changed.set(key, names);
          existing.apply(this.ctx, change, names);
        }
      } catch (error) {
        // One group's failure keeps its last config and does not hold back the others.
        failures.push(`${key}: ${error instanceof Error ? error.message : String(error)}`);
      }
      yield;
    }
  }

  private announce(
    changedTypes: string[],
    changedOut: Map<string, ChangedNames>,
    changedIn: Map<string, ChangedNames>,
    changedGw: Map<string, ChangedNames>,
    moved: Set<ProxyEntry>,
    serverListeners: Set<string>,
  ): void {
    const names = new Map<string, Set<string>>();
    if (moved.size === 0) {
      // RDS and EDS are asked for by name: streams compare only the names that changed.
      for (const typeUrl of [typeUrls.route, typeUrls.endpoint]) {
        const union = new Set<string>();
        for (const changed of [...changedOut.values(), ...changedGw.values()])
          for (const name of changed.get(typeUrl) ?? []) union.add(name);
        names.set(typeUrl, union);
      }
      // Proxyless servers ask for their listeners by name: when only those changed, say which.
      const groupListeners = [...changedOut.values(), ...changedIn.values(), ...changedGw.values()].some((changed) =>
        changed.has(typeUrls.listener),
      );
      if (serverListeners.size > 0 && !groupListeners) {
        // Servers listening on all interfaces ask by the wildcard address (see ownServerListener).
        const withAliases = new Set(serverListeners);
        for (const name of serverListeners) {
          const port = name.slice(name.lastIndexOf(':') + 1);
          withAliases.add(`${grpcServerListenerPrefix}0.0.0.0:${port}`).add(`${grpcServerListenerPrefix}[::]:${port}`);
        }
        names.set(typeUrls.listener, withAliases);
      }
    }
    const change: ConfigChange = {
      typeUrls: changedTypes,
      affects: (node, typeUrl) => {
        const entry = this.entryOf.get(node);
        if (!entry || moved.has(entry) || this.proxies.get(entry.labelKey) !== entry) return true;
        if (entry.gwKey) {
          // A gateway reads only clusters and endpoints of its outbound group.
          if (changedGw.get(entry.gwKey)?.has(typeUrl)) return true;
          return (typeUrl === typeUrls.cluster || typeUrl === typeUrls.endpoint) && !!changedOut.get(entry.outKey)?.has(typeUrl);
        }
        if (changedOut.get(entry.outKey)?.has(typeUrl)) return true;
        if (entry.inKey && changedIn.get(entry.inKey)?.has(typeUrl)) return true;
        return typeUrl === typeUrls.listener && serverListeners.size > 0 && entry.scope.kind === 'grpc';
      },
      ...(names.size > 0 ? { names } : {}),
    };
    for (const listener of this.listeners) listener(change);
  }

  /** Proxyless servers' listeners, per service (derived again when its endpoints or the security policy change). */
  private updateServerListeners(model: MeshModel, change: ModelChange): Set<string> {
    const changed = new Set<string>();
    if (!change.everything && change.services.size === 0 && !change.peerAuthentication && !change.authorization) return changed;
    const epochs = this.ctx.epochs;
    const next = new Map<string, EncodedResource>();
    for (const service of model.services) {
      const listeners = this.serverListenersOf.get(
        serviceKey(service),
        [service, epochs.peerAuthentication, epochs.authorization, epochs.mesh],
        () => {
          const objects = grpcServerListenersOf(model, service);
          return new Map(Object.entries(objects).map(([name, object]) => [name, this.ctx.encode(typeUrls.listener, name, object)]));
        },
      );
      for (const [name, resource] of listeners) next.set(name, resource);
    }
    // Services not looked up in this pass are gone.
    this.serverListenersOf.dropUnused('all');
    this.serverListenersOf.endRound();
    for (const name of [...this.serverListeners.names()]) if (!next.has(name) && this.serverListeners.delete(name)) changed.add(name);
    for (const resource of next.values()) if (this.serverListeners.set(resource)) changed.add(resource.name);
    return changed;
  }

  private countConnected(): void {
    for (const group of [...this.outbound.values(), ...this.inbound.values(), ...this.gateway.values()]) group.connected = 0;
    for (const entry of this.proxies.values()) {
      const out = this.outbound.get(entry.outKey);
      if (out) out.connected += entry.connected;
      const inb = entry.inKey ? this.inbound.get(entry.inKey) : undefined;
      if (inb) inb.connected += entry.connected;
      const gw = entry.gwKey ? this.gateway.get(entry.gwKey) : undefined;
      if (gw) gw.connected += entry.connected;
    }
  }

  private entry(node: DiscoveryNode): ProxyEntry {
    const known = this.entryOf.get(node);
    if (known && this.proxies.get(known.labelKey) === known) return known;
    const scope = proxyScopeOf(node);
    const labelKey = scopeKey(scope);
    let entry = this.proxies.get(labelKey);
    if (!entry) {
      const outScope = outboundScopeOf(scope);
      entry = {
        scope,
        outScope,
        labelKey,
        outKey: outboundScopeKey(this.ctx.index, outScope),
        inKey: scope.kind === 'sidecar' ? inboundScopeKey(this.ctx.index, scope) : undefined,
        gwKey: scope.kind === 'router' ? gatewayScopeKey(this.ctx.index, scope) : undefined,
        connected: 0,
      };
      this.proxies.set(labelKey, entry);
    }
    this.entryOf.set(node, entry);
    return entry;
  }

  private outboundOf(entry: ProxyEntry): OutboundScope {
    return this.outbound.get(entry.outKey) ?? this.createOutbound(entry.outKey, entry.outScope);
  }

  private gatewayOf(entry: ProxyEntry): GatewayScope | undefined {
    if (!entry.gwKey) return undefined;
    return this.gateway.get(entry.gwKey) ?? this.createGateway(entry.gwKey, entry.scope);
  }

  private inboundOf(entry: ProxyEntry): InboundScope | undefined {
    if (!entry.inKey) return undefined;
    return this.inbound.get(entry.inKey) ?? this.createInbound(entry.inKey, entry.scope);
  }

  private createOutbound(
    key: string,
    scope = this.memberScope(
      (e) => e.outKey === key,
      (e) => e.outScope,
    ),
  ): OutboundScope {
    const group = new OutboundScope(key, scope);
    group.rebuild(this.ctx);
    this.outbound.set(key, group);
    return group;
  }

  private createInbound(key: string, scope = this.memberScope((e) => e.inKey === key)): InboundScope {
    const group = new InboundScope(key, scope);
    group.rebuild(this.ctx);
    this.inbound.set(key, group);
    return group;
  }

  private createGateway(key: string, scope = this.memberScope((e) => e.gwKey === key)): GatewayScope {
    const group = new GatewayScope(key, scope);
    group.rebuild(this.ctx);
    this.gateway.set(key, group);
    return group;
  }

  /** Any member's scope stands for the group: members differ only in labels no selector reads. */
  private memberScope(member: (entry: ProxyEntry) => boolean, scopeOf = (entry: ProxyEntry) => entry.scope): ProxyScope {
    for (const entry of this.proxies.values()) if (member(entry)) return scopeOf(entry);
    throw new Error('a proxy group without members');
  }
}
