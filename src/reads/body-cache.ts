/**
 * The cache of read answers: an LRU in this process, bounded in bytes, in front of an optional
 * shared tier (Redis, redis-bodies.ts) that other instances fill too.
 *
 * Keys are digests of everything a body depends on, the session's version included
 * (http/read-cache.ts), so an entry never goes stale: a newer version is another key, and the
 * old entries age out of the LRU (and out of Redis by their TTL). Nothing is ever invalidated,
 * and nothing here can serve an answer older than the version the caller looked up.
 *
 * The shared tier is a help, never a dependency: its failures are misses (it answers null)
 * and its writes are fire-and-forget.
 */
import { LRUCache } from 'lru-cache';
import { type CachedBody, cachedSize, entryOverheadBytes } from './cached-body.ts';

/** Another instance's cache: answers null for a miss, a failure or a timeout; never throws. */
export interface SharedBodies {
  get(key: string): Promise<CachedBody | null>;
  set(key: string, entry: CachedBody): void;
}

export interface BodyCacheLimits {
  /** The LRU's bound: bodies plus a small overhead each. */
  maxBytes: number;
  /** A larger body is not kept, in memory or Redis: one export must not flush every other answer. */
  maxEntryBytes: number;
}

export interface BodyCacheCounters {
  hit(tier: 'memory' | 'redis'): void;
  miss(): void;
  evicted(): void;
  oversized(): void;
}

export class BodyCache {
  private readonly memory: LRUCache<string, CachedBody>;

  constructor(
    readonly limits: BodyCacheLimits,
    private readonly counters: BodyCacheCounters,
    private readonly shared: SharedBodies | null,
  ) {
    this.memory = new LRUCache<string, CachedBody>({
      maxSize: limits.maxBytes,
      maxEntrySize: limits.maxEntryBytes,
      sizeCalculation: cachedSize,
      dispose: (_entry, _key, reason) => {
        if (reason === 'evict') counters.evicted();
      },
    });
  }

  /** Bytes the LRU holds now. */
  get bytes(): number {
    return this.memory.calculatedSize;
  }

  async get(key: string): Promise<CachedBody | undefined> {
    const local = this.memory.get(key);
    if (local !== undefined) {
      this.counters.hit('memory');
      return local;
    }
    const remote = this.shared === null ? null : await this.shared.get(key);
    if (remote === null) {
      this.counters.miss();
      return undefined;
    }
    this.counters.hit('redis');
    this.memory.set(key, remote);
    return remote;
  }

  /** Whether a body of `bytes` would be kept: the caller stops collecting a streamed one past it. */
  fits(bytes: number): boolean {
    return bytes + entryOverheadBytes <= this.limits.maxEntryBytes;
  }

  /** Counts an answer that went out uncached, for its size. */
  passOversized(): void {
    this.counters.oversized();
  }

  set(key: string, entry: CachedBody): void {
    if (!this.fits(entry.body.length)) {
      this.passOversized();
      return;
    }
    this.memory.set(key, entry);
    this.shared?.set(key, entry);
  }
}
