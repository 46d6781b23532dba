/**
 * When each API key was last used, kept off the request path: a use only notes the time in a
 * map, and the map is written in one UPDATE a minute, so a key busy with thousands of
 * requests a second costs the database one row update a minute. The time is advisory (an
 * operator looking for unused keys), so a failed write is dropped, and the next use notes the
 * key again; so are uses past the map's bound, which only keys beyond it would fill.
 */
import type { Logger } from 'pino';
import type { KeyUse } from '../storage/api-key-repository.ts';

export interface LastUsedOptions {
  readonly store: { recordUse(uses: readonly KeyUse[]): Promise<void> };
  /** How often the noted uses are written. Default 60 s: each key at most once a minute. */
  readonly flushIntervalMs?: number;
  /** The most keys noted between two writes. Default 10,000. */
  readonly maxPending?: number;
  readonly log?: Logger;
}

export class LastUsedTracker {
  readonly name = 'api-key last use';
  private pending = new Map<string, number>();
  private readonly flushIntervalMs: number;
  private readonly maxPending: number;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | null = null;

  constructor(private readonly options: LastUsedOptions) {
    this.flushIntervalMs = options.flushIntervalMs ?? 60_000;
    this.maxPending = options.maxPending ?? 10_000;
  }

  /** Notes that key `keyId` was used at `atMs` (epoch milliseconds). */
  used(keyId: string, atMs: number): void {
    if (this.pending.size >= this.maxPending && !this.pending.has(keyId)) return;
    this.pending.set(keyId, atMs);
  }

  get pendingKeys(): number {
    return this.pending.size;
  }

  async start(): Promise<void> {
    this.timer = setInterval(() => void this.flush(), this.flushIntervalMs);
    this.timer.unref();
  }

  /** Writes what was noted since the last write; one write at a time. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0) return;
    const noted = this.pending;
    this.pending = new Map();
    try {
      await this.options.store.recordUse([...noted].map(([id, atMs]) => ({ id, at: new Date(atMs) })));
    } catch (error) {
      this.options.log?.warn({ err: error, keys: noted.size }, 'recording when API keys were last used failed; dropped');
    }
  }

  /** Writes the last uses noted; the stack stops waiting at the deadline. */
  async close(_deadline: number): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }
}
