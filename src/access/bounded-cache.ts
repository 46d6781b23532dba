/**
 * A map with a cap on its entries and a time to live for each (principle 2: bounded
 * everywhere). At the cap, the oldest entry goes: a Map iterates in insertion order, so that
 * is its first key, found in O(1). Oldest-inserted rather than least-recently-used: every
 * entry expires within its TTL anyway, and a hit then costs a lookup and a comparison, no
 * reordering.
 */
export interface BoundedCacheOptions {
  /** The most entries held. */
  readonly maxEntries: number;
  /** Epoch milliseconds, the time entries expire by. */
  readonly clock: () => number;
}

export class BoundedCache<K, V> {
  private readonly entries = new Map<K, { value: V; expiresAtMs: number }>();
  private readonly maxEntries: number;
  private readonly clock: () => number;

  constructor({ maxEntries, clock }: BoundedCacheOptions) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError(`a cache holds at least one entry, not ${maxEntries}`);
    this.maxEntries = maxEntries;
    this.clock = clock;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= this.clock()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Keeps `value` until `expiresAtMs` (epoch milliseconds), making room if the cache is full. */
  set(key: K, value: V, expiresAtMs: number): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as K);
    this.entries.set(key, { value, expiresAtMs });
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
