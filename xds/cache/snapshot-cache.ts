// Versioned resources, encoded once and shared by every proxy of a snapshot:
// the ConfigSource the ADS server reads. A type's version moves only when one of its resources'
// bytes change, so an endpoint change pushes only EDS.
import { createHash } from 'node:crypto';
import { typeUrls, encodeResource } from '../protos.js';
import type { ConfigChange, ConfigSource, DiscoveryNode, EncodedResource, ResourceSet } from '../server/discovery-types.js';

type Resources = Map<string, EncodedResource>;

/**
 * Encodes each distinct resource object once, shared by every snapshot that holds
 * it. Entries not used since the previous round are dropped at the next one.
 */
export class ResourceEncoder {
  private current = new Map<string, Buffer>();
  private previous = new Map<string, Buffer>();

  encode(typeUrl: string, object: Record<string, unknown>): Buffer {
    const key = `${typeUrl}\u0000${JSON.stringify(object)}`;
    const value = this.current.get(key) ?? this.previous.get(key) ?? encodeResource(typeUrl, object);
    this.current.set(key, value);
    return value;
  }

  /** Starts a round: what the last round did not use can go. */
  nextRound(): void {
    this.previous = this.current;
    this.current = new Map();
  }
}

export class SnapshotCache implements ConfigSource {
  private readonly byType = new Map<string, { version: string; resources: Resources; namedOnly: Resources }>();
  private readonly listeners = new Set<(change: ConfigChange) => void>();
  private readonly ownsEncoder: boolean;

  constructor(private readonly encoder?: ResourceEncoder) {
    this.ownsEncoder = !encoder;
    this.encoder ??= new ResourceEncoder();
  }

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
    return { version: entry.version, resources };
  }

  onChange(listener: (change: ConfigChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Replaces every type given; returns (and announces) the types whose content changed.
   * `namedOnly` resources are served only to proxies that ask for them by name.
   * A type's version is a digest of its content, so equal content has equal
   * versions in every snapshot (a proxy moved between snapshots is not re-sent
   * what it has).
   */
  update(
    snapshot: Record<string, Record<string, Record<string, unknown>>>,
    namedOnly: Record<string, Record<string, Record<string, unknown>>> = {},
  ): string[] {
    const encoder = this.encoder as ResourceEncoder;
    if (this.ownsEncoder) encoder.nextRound();
    const changed: string[] = [];
    const encode = (typeUrl: string, objects: Record<string, Record<string, unknown>>): Resources => {
      const resources: Resources = new Map();
      for (const [name, object] of Object.entries(objects)) {
        resources.set(name, { name, resource: { type_url: typeUrl, value: encoder.encode(typeUrl, object) } });
      }
      return resources;
    };
    for (const typeUrl of new Set([...Object.keys(snapshot), ...Object.keys(namedOnly)])) {
      const resources = encode(typeUrl, snapshot[typeUrl] ?? {});
      const named = encode(typeUrl, namedOnly[typeUrl] ?? {});
      const previous = this.byType.get(typeUrl);
      if (previous && sameResources(previous.resources, resources) && sameResources(previous.namedOnly, named)) continue;
      this.byType.set(typeUrl, { version: contentVersion(resources, named), resources, namedOnly: named });
      changed.push(typeUrl);
    }
    if (changed.length > 0) for (const listener of this.listeners) listener({ typeUrls: changed });
    return changed;
  }
}

function contentVersion(resources: Resources, named: Resources): string {
  const hash = createHash('sha256');
  for (const map of [resources, named]) {
    for (const name of [...map.keys()].sort()) {
      hash
        .update(name)
        .update('\u0000')
        .update((map.get(name) as EncodedResource).resource.value);
    }
    hash.update('\u0001');
  }
  return hash.digest('hex').slice(0, 16);
}

function sameResources(a: Resources, b: Resources): boolean {
  if (a.size !== b.size) return false;
  for (const [name, resource] of a) {
    const other = b.get(name);
    if (!other || !other.resource.value.equals(resource.resource.value)) return false;
  }
  return true;
}
