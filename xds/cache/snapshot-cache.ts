// Versioned resources, encoded once and shared by every proxy: the ConfigSource
// the ADS server reads. A type's version moves only when one of its resources'
// bytes change, so an endpoint change pushes only EDS.
import { typeUrls, encodeResource } from '../protos.js';
import type { ConfigSource, DiscoveryNode, EncodedResource, ResourceSet } from '../server/discovery-types.js';

type Resources = Map<string, EncodedResource>;

export class SnapshotCache implements ConfigSource {
  private readonly byType = new Map<string, { version: number; resources: Resources; namedOnly: Resources }>();
  private readonly listeners = new Set<(typeUrls: string[]) => void>();
  // Encoding dominates generation cost; identical objects are encoded once.
  private encoded = new Map<string, Buffer>();

  serves(typeUrl: string): boolean {
    return (Object.values(typeUrls) as string[]).includes(typeUrl);
  }

  resources(_node: DiscoveryNode, typeUrl: string, names: string[]): ResourceSet {
    const entry = this.byType.get(typeUrl);
    if (!entry) return { version: '0', resources: [] };
    const resources =
      names.length === 0
        ? [...entry.resources.values()]
        : names.flatMap((name) => entry.resources.get(name) ?? entry.namedOnly.get(name) ?? []);
    return { version: String(entry.version), resources };
  }

  onChange(listener: (typeUrls: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Replaces every type given; returns (and announces) the types whose content changed.
   * `namedOnly` resources are served only to proxies that ask for them by name.
   */
  update(
    snapshot: Record<string, Record<string, Record<string, unknown>>>,
    namedOnly: Record<string, Record<string, Record<string, unknown>>> = {},
  ): string[] {
    const changed: string[] = [];
    const nextEncoded = new Map<string, Buffer>();
    const encode = (typeUrl: string, objects: Record<string, Record<string, unknown>>): Resources => {
      const resources: Resources = new Map();
      for (const [name, object] of Object.entries(objects)) {
        const key = `${typeUrl}\u0000${JSON.stringify(object)}`;
        const value = this.encoded.get(key) ?? nextEncoded.get(key) ?? encodeResource(typeUrl, object);
        nextEncoded.set(key, value);
        resources.set(name, { name, resource: { type_url: typeUrl, value } });
      }
      return resources;
    };
    for (const typeUrl of new Set([...Object.keys(snapshot), ...Object.keys(namedOnly)])) {
      const resources = encode(typeUrl, snapshot[typeUrl] ?? {});
      const named = encode(typeUrl, namedOnly[typeUrl] ?? {});
      const previous = this.byType.get(typeUrl);
      if (previous && sameResources(previous.resources, resources) && sameResources(previous.namedOnly, named)) continue;
      this.byType.set(typeUrl, { version: (previous?.version ?? 0) + 1, resources, namedOnly: named });
      changed.push(typeUrl);
    }
    this.encoded = nextEncoded;
    if (changed.length > 0) for (const listener of this.listeners) listener(changed);
    return changed;
  }
}

function sameResources(a: Resources, b: Resources): boolean {
  if (a.size !== b.size) return false;
  for (const [name, resource] of a) {
    const other = b.get(name);
    if (!other || !other.resource.value.equals(resource.resource.value)) return false;
  }
  return true;
}
