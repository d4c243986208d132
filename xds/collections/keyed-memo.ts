// A keyed collection of derived values, each recomputed only when one of its
// inputs changed: the shape of Istio's krt collections (pilot/pkg/krt), reduced
// to what Weft needs. The caller names a value's inputs (`deps`), compared by
// identity (Object.is), so inputs must be immutable values that are replaced,
// not edited, when they change; the model's objects are.
import type { Derivations } from './derivations.js';

interface Entry<V> {
  deps: readonly unknown[];
  value: V;
  usedInRound: number;
  tag: string | undefined;
}

/**
 * `get(key, deps, derive)` returns the value last derived for `key` while `deps`
 * are the same, else derives it again (counted in `derivations` under `name`).
 * Entries no `get` asked for during `keepRounds` rounds are dropped at `endRound`,
 * so values for deleted inputs do not accumulate.
 */
export class KeyedMemo<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private round = 0;

  constructor(
    readonly name: string,
    private readonly derivations?: Derivations,
    /** Rounds an unused entry is kept; Infinity: until `dropUnused` drops it. */
    private readonly keepRounds = 2,
  ) {}

  /** `tag` groups entries for `dropUnused` (for example the host a cluster belongs to). */
  get(key: K, deps: readonly unknown[], derive: () => V, tag?: string): V {
    const entry = this.entries.get(key);
    if (entry && sameDeps(entry.deps, deps)) {
      entry.usedInRound = this.round;
      return entry.value;
    }
    const value = derive();
    this.derivations?.add(this.name);
    this.entries.set(key, { deps, value, usedInRound: this.round, tag });
    return value;
  }

  /**
   * Drops the entries of these tags that no `get` asked for in this round: when
   * every user of a tag's values derived them again this round, the rest are stale.
   */
  dropUnused(tags: ReadonlySet<string> | 'all'): void {
    if (tags !== 'all' && tags.size === 0) return;
    for (const [key, entry] of this.entries) {
      if (entry.usedInRound === this.round) continue;
      if (tags === 'all' || (entry.tag !== undefined && tags.has(entry.tag))) this.entries.delete(key);
    }
  }

  /** The value held for `key`, without deriving it. */
  peek(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Ends a round of changes; drops what was not used in the last `keepRounds` rounds. */
  endRound(): void {
    this.round++;
    if (this.keepRounds === Infinity) return;
    for (const [key, entry] of this.entries) if (this.round - entry.usedInRound > this.keepRounds) this.entries.delete(key);
  }
}

/** Shallow identity comparison of two dependency lists. */
export function sameDeps(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

const ids = new WeakMap<object, number>();
let nextId = 0;

/** A small number naming an object for as long as it lives: lets object identity be part of a string key. */
export function objectId(object: object): number {
  let id = ids.get(object);
  if (id === undefined) {
    id = ++nextId;
    ids.set(object, id);
  }
  return id;
}
