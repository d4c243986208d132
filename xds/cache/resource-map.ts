// One type's resources for a group of proxies, by name, with a version that
// follows the content: a sum of per-resource digests, updated in O(1) when one
// resource changes (a multiset hash), so equal content has equal versions on
// every replica and no change costs a pass over the whole map.
import { createHash } from 'node:crypto';
import type { EncodedResource } from '../server/discovery-types.js';

const digests = new WeakMap<EncodedResource, bigint>();
const mask = (1n << 64n) - 1n;

function digestOf(resource: EncodedResource): bigint {
  let digest = digests.get(resource);
  if (digest === undefined) {
    const hash = createHash('sha256').update(resource.name).update('\u0000').update(resource.resource.value).digest();
    digest = hash.readBigUInt64BE(0);
    digests.set(resource, digest);
  }
  return digest;
}

export class ResourceMap {
  private readonly items = new Map<string, EncodedResource>();
  private sum = 0n;
  private list: EncodedResource[] | undefined;

  /**
   * Sets a resource; returns whether its bytes changed (a resource with equal bytes keeps the one held).
   * `digest`, when given, stands for the resource's content (see PortRoutes.digest).
   */
  set(resource: EncodedResource, digest?: bigint): boolean {
    const previous = this.items.get(resource.name);
    if (previous === resource || previous?.resource.value.equals(resource.resource.value)) return false;
    if (digest !== undefined) digests.set(resource, digest);
    if (previous) this.sum = (this.sum - digestOf(previous)) & mask;
    this.sum = (this.sum + digestOf(resource)) & mask;
    this.items.set(resource.name, resource);
    this.list = undefined;
    return true;
  }

  /** Removes a resource; returns whether there was one. */
  delete(name: string): boolean {
    const previous = this.items.get(name);
    if (!previous) return false;
    this.sum = (this.sum - digestOf(previous)) & mask;
    this.items.delete(name);
    this.list = undefined;
    return true;
  }

  get(name: string): EncodedResource | undefined {
    return this.items.get(name);
  }

  has(name: string): boolean {
    return this.items.has(name);
  }

  names(): IterableIterator<string> {
    return this.items.keys();
  }

  /** Every resource, in insertion order (the array is kept until the next change). */
  values(): EncodedResource[] {
    this.list ??= [...this.items.values()];
    return this.list;
  }

  get size(): number {
    return this.items.size;
  }

  /** A digest of the content: names and bytes. */
  get version(): string {
    return `${this.sum.toString(16).padStart(16, '0')}-${this.items.size}`;
  }
}

/** The version of a list of resources (a named subscription's answer): a digest of names and bytes. */
export function versionOf(resources: ReadonlyArray<EncodedResource>): string {
  let sum = 0n;
  for (const resource of resources) sum = (sum + digestOf(resource)) & mask;
  return `${sum.toString(16).padStart(16, '0')}-${resources.length}`;
}

const partDigests = new WeakMap<Buffer, Buffer>();

/** A 16-byte digest of one part's bytes, computed once per part. */
export function partDigest(part: Buffer): Buffer {
  let digest = partDigests.get(part);
  if (!digest) {
    digest = createHash('sha256').update(part).digest().subarray(0, 16);
    partDigests.set(part, digest);
  }
  return digest;
}
