// One port's virtual hosts for an Envoy route configuration, by hostname, kept
// in the order the from-scratch generator uses (hostnames by locale order) with
// their digests laid side by side: replacing one virtual host updates one slot,
// and the configuration's digest is one hash over those slots, not its bytes.
import { createHash } from 'node:crypto';
import { partDigest } from './resource-map.js';

const collator = new Intl.Collator();

export class PortRoutes {
  private readonly hosts = new Map<string, Buffer>();
  private order: { sorted: string[]; index: Map<string, number>; digests: Buffer } | undefined;

  /** Sets a host's encoded virtual host; returns whether it changed. */
  set(host: string, bytes: Buffer): boolean {
    const before = this.hosts.get(host);
    if (before === bytes) return false;
    this.hosts.set(host, bytes);
    const slot = this.order?.index.get(host);
    if (this.order && slot !== undefined) partDigest(bytes).copy(this.order.digests, slot * 16);
    else this.order = undefined;
    return true;
  }

  delete(host: string): boolean {
    if (!this.hosts.delete(host)) return false;
    this.order = undefined;
    return true;
  }

  get size(): number {
    return this.hosts.size;
  }

  private ordered() {
    if (!this.order) {
      const sorted = [...this.hosts.keys()].sort(collator.compare);
      const digests = Buffer.alloc(sorted.length * 16);
      sorted.forEach((host, i) => partDigest(this.hosts.get(host) as Buffer).copy(digests, i * 16));
      this.order = { sorted, index: new Map(sorted.map((host, i) => [host, i])), digests };
    }
    return this.order;
  }

  /** The digest of the configuration `prefix`, the virtual hosts in order, `suffix`. */
  digest(name: string, prefix: Buffer, suffix: Buffer): bigint {
    return createHash('sha256')
      .update(name)
      .update(partDigest(prefix))
      .update(this.ordered().digests)
      .update(partDigest(suffix))
      .digest()
      .readBigUInt64BE(0);
  }

  /** The configuration's bytes: protobuf messages concatenate, repeated fields append. */
  bytes(prefix: Buffer, suffix: Buffer): Buffer {
    return Buffer.concat([prefix, ...this.ordered().sorted.map((host) => this.hosts.get(host) as Buffer), suffix]);
  }
}
