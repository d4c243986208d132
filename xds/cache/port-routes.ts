// One port's virtual hosts for an Envoy route configuration, by hostname, kept
// in the order the from-scratch generator uses (hostnames by locale order) with
// their digests laid side by side: replacing one virtual host updates one slot,
// and the configuration's digest is one hash over those slots, not its bytes.
// Each virtual host's domains are kept too: when one repeats a domain an earlier
// one has (a ServiceEntry's addresses shared by its hosts), the later one is
// assembled without it, as the from-scratch generator's dedupeVirtualHostDomains does.
import { createHash } from 'node:crypto';
import { partDigest } from './resource-map.js';

const collator = new Intl.Collator();

interface VirtualHostPart {
  bytes: Buffer;
  /** Lower-cased, as Envoy compares them. */
  domains: ReadonlyArray<string>;
  /** The domains joined: tells whether an edit changed them (most edits change routes only). */
  domainKey: string;
}

/** Re-encodes a virtual host's part without the given (lower-cased) domains; undefined when none is left. */
export type DropDomains = (bytes: Buffer, drop: ReadonlySet<string>) => Buffer | undefined;

export class PortRoutes {
  private readonly hosts = new Map<string, VirtualHostPart>();
  private order: { sorted: string[]; index: Map<string, number>; digests: Buffer } | undefined;
  /** Per host, the domains an earlier virtual host already has; kept until some host's domains or the hosts change. */
  private repeats: Map<string, Set<string>> | undefined;
  /** A part's bytes without its repeated domains, by the part's bytes; valid for the current `repeats`. */
  private trimmed = new WeakMap<Buffer, Buffer | null>();

  /** Sets a host's encoded virtual host and its domains; returns whether it changed. */
  set(host: string, bytes: Buffer, domains: ReadonlyArray<string>): boolean {
    const before = this.hosts.get(host);
    if (before?.bytes === bytes) return false;
    const lower = domains.map((domain) => domain.toLowerCase());
    const domainKey = lower.join('\n');
    if (before?.domainKey !== domainKey) this.repeats = undefined;
    this.hosts.set(host, { bytes, domains: lower, domainKey });
    const slot = this.order?.index.get(host);
    if (this.order && slot !== undefined) partDigest(bytes).copy(this.order.digests, slot * 16);
    else this.order = undefined;
    return true;
  }

  delete(host: string): boolean {
    if (!this.hosts.delete(host)) return false;
    this.order = undefined;
    this.repeats = undefined;
    return true;
  }

  get size(): number {
    return this.hosts.size;
  }

  private ordered() {
    if (!this.order) {
      const sorted = [...this.hosts.keys()].sort(collator.compare);
      const digests = Buffer.alloc(sorted.length * 16);
      sorted.forEach((host, i) => partDigest((this.hosts.get(host) as VirtualHostPart).bytes).copy(digests, i * 16));
      this.order = { sorted, index: new Map(sorted.map((host, i) => [host, i])), digests };
    }
    return this.order;
  }

  /** The digest of the configuration `prefix`, the virtual hosts in order, `suffix` (the domains follow from the bytes). */
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
  bytes(prefix: Buffer, suffix: Buffer, dropDomains: DropDomains): Buffer {
    const repeats = this.repeatedDomains();
    const parts: Buffer[] = [prefix];
    for (const host of this.ordered().sorted) {
      const part = this.hosts.get(host) as VirtualHostPart;
      const repeated = repeats.get(host);
      if (!repeated) parts.push(part.bytes);
      else {
        let kept = this.trimmed.get(part.bytes);
        if (kept === undefined) this.trimmed.set(part.bytes, (kept = dropDomains(part.bytes, repeated) ?? null));
        if (kept) parts.push(kept);
      }
    }
    parts.push(suffix);
    return Buffer.concat(parts);
  }

  /** Which domains each host repeats from an earlier one: derived again only when domains or hosts changed. */
  private repeatedDomains(): Map<string, Set<string>> {
    if (!this.repeats) {
      const seen = new Set<string>();
      this.repeats = new Map();
      this.trimmed = new WeakMap();
      for (const host of this.ordered().sorted) {
        const part = this.hosts.get(host) as VirtualHostPart;
        const repeated = new Set(part.domains.filter((domain) => seen.has(domain)));
        for (const domain of part.domains) seen.add(domain);
        if (repeated.size > 0) this.repeats.set(host, repeated);
      }
    }
    return this.repeats;
  }
}
