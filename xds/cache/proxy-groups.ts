// Proxies with the same scope (kind, namespace, labels: see traffic/proxy-scope)
// share one snapshot, generated from the model when the first of them connects
// and regenerated on every model change while any is connected. Resources are
// encoded once across all snapshots.
import { envoySidecarResources } from '../generate/envoy-sidecar-resources.js';
import { grpcClientResources, grpcServerListeners, type ResourcesByType } from '../generate/grpc-client-resources.js';
import type { MeshModel } from '../model/mesh-model.js';
import type { ConfigSource, DiscoveryNode, ResourceSet } from '../server/discovery-types.js';
import { proxyScopeOf, scopeKey, type ProxyScope } from '../traffic/proxy-scope.js';
import { ProxyView } from '../traffic/proxy-view.js';
import { ResourceEncoder, SnapshotCache } from './snapshot-cache.js';

interface ScopeEntry {
  scope: ProxyScope;
  cache: SnapshotCache;
  connected: number;
}

export class ProxyGroups implements ConfigSource {
  private model: MeshModel = { clusterDomain: 'cluster.local', services: [] };
  private serverListeners: ResourcesByType = {};
  private readonly scopes = new Map<string, ScopeEntry>();
  private readonly encoder = new ResourceEncoder();
  private readonly listeners = new Set<(typeUrls: string[]) => void>();
  private readonly probe = new SnapshotCache();

  static isProxylessGrpc(node: DiscoveryNode): boolean {
    return proxyScopeOf(node).kind === 'grpc';
  }

  serves(typeUrl: string): boolean {
    return this.probe.serves(typeUrl);
  }

  resources(node: DiscoveryNode, typeUrl: string, names: string[]): ResourceSet {
    return this.entry(proxyScopeOf(node)).cache.resources(node, typeUrl, names);
  }

  connected(node: DiscoveryNode): () => void {
    const entry = this.entry(proxyScopeOf(node));
    entry.connected++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.connected--;
    };
  }

  onChange(listener: (typeUrls: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Number of distinct snapshots held (for metrics and tests). */
  get scopeCount(): number {
    return this.scopes.size;
  }

  /** A new model: every snapshot still in use is regenerated; returns (and announces) the types that changed anywhere. */
  update(model: MeshModel): string[] {
    this.model = model;
    this.encoder.nextRound();
    this.serverListeners = grpcServerListeners(model);
    const changed = new Set<string>();
    const failures: string[] = [];
    for (const [key, entry] of this.scopes) {
      // Snapshots no connected proxy uses are dropped; they are rebuilt if one comes back.
      if (entry.connected <= 0) {
        this.scopes.delete(key);
        continue;
      }
      // One scope's failure leaves its last snapshot in place and does not hold back the others.
      try {
        for (const typeUrl of this.fill(entry)) changed.add(typeUrl);
      } catch (error) {
        failures.push(`${key}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    if (changed.size > 0) for (const listener of this.listeners) listener([...changed]);
    if (failures.length > 0) {
      throw new Error(`generation failed for ${failures.length} proxy scope(s), which keep their last config: ${failures.join('; ')}`);
    }
    return [...changed];
  }

  private entry(scope: ProxyScope): ScopeEntry {
    const key = scopeKey(scope);
    let entry = this.scopes.get(key);
    if (!entry) {
      entry = { scope, cache: new SnapshotCache(this.encoder), connected: 0 };
      this.fill(entry);
      this.scopes.set(key, entry);
    }
    return entry;
  }

  private fill(entry: ScopeEntry): string[] {
    const view = new ProxyView(this.model, entry.scope);
    return entry.scope.kind === 'grpc'
      ? entry.cache.update(grpcClientResources(view), this.serverListeners)
      : entry.cache.update(envoySidecarResources(view));
  }
}
