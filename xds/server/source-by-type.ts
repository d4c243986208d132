// One ConfigSource made of several, each serving its own types: weftd's ADS streams carry
// the generated config (ProxyGroups) and SDS secrets (xds/credentials) side by side, as
// istiod's generators share one connection, keyed by type URL.
import type { ConfigChange, ConfigSource, DiscoveryNode, ResourceSet } from './discovery-types.js';

/**
 * Serves each type in `byType` from its source and every other type from `fallback`.
 * Each part hears of every connected proxy (`connected`); a part is only asked about,
 * and only announces changes of, its own types.
 */
export class SourceByType implements ConfigSource {
  private readonly parts: ConfigSource[];

  constructor(
    private readonly fallback: ConfigSource,
    private readonly byType: Readonly<Record<string, ConfigSource>>,
  ) {
    this.parts = [fallback, ...new Set(Object.values(byType))];
  }

  private partFor(typeUrl: string): ConfigSource {
    return Object.hasOwn(this.byType, typeUrl) ? (this.byType[typeUrl] as ConfigSource) : this.fallback;
  }

  serves(typeUrl: string): boolean {
    return this.partFor(typeUrl).serves(typeUrl);
  }

  resources(node: DiscoveryNode, typeUrl: string, names: string[]): ResourceSet {
    return this.partFor(typeUrl).resources(node, typeUrl, names);
  }

  connected(node: DiscoveryNode): () => void {
    const releases = this.parts.map((part) => part.connected?.(node));
    return () => {
      for (const release of releases) release?.();
    };
  }

  /** Each part's changes, narrowed to the types it serves here (a part's other types never reach a proxy from it). */
  onChange(listener: (change: ConfigChange) => void): () => void {
    const unsubscribes = this.parts.map((part) =>
      part.onChange((change) => {
        const typeUrls = change.typeUrls.filter((typeUrl) => this.partFor(typeUrl) === part);
        if (typeUrls.length === change.typeUrls.length) listener(change);
        else if (typeUrls.length > 0) listener({ ...change, typeUrls });
      }),
    );
    return () => {
      for (const unsubscribe of unsubscribes) unsubscribe();
    };
  }
}
