/**
 * The shared tier of the read cache in Redis: `wavehouse:read:<key>` holds an encoded answer
 * (cached-body.ts) for `ttlS` seconds; values are at most the cache's entry bound.
 *
 * A Redis outage must cost reads nothing but the cache: commands fail at once while the client
 * is disconnected (no offline queue), a command that gets no answer within `timeoutMs` is a
 * miss, and every failure is counted and otherwise ignored. The client reconnects by itself.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { within } from '../deadlines.ts';
import type { SharedBodies } from './body-cache.ts';
import { type CachedBody, decodeCachedBody, encodeCachedBody } from './cached-body.ts';

const keyPrefix = 'wavehouse:read:';
/**
 * A local Redis answers a GET of a small value in well under a millisecond; one that takes
 * this long is in trouble, and reading the answer from PostgreSQL is the better bet.
 */
const timeoutMs = 50;

export interface RedisBodiesOptions {
  url: string;
  ttlS: number;
  log: Logger;
  /** Counts a command that failed or timed out. */
  failed: () => void;
}

export class RedisBodies implements SharedBodies {
  readonly name = 'read cache redis';
  private readonly client: Redis;
  private readonly ttlS: number;
  private readonly failed: () => void;

  constructor({ url, ttlS, log, failed }: RedisBodiesOptions) {
    this.client = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
    this.client.on('error', (error: Error) => log.warn({ err: error }, 'read cache redis connection error'));
    this.ttlS = ttlS;
    this.failed = failed;
  }

  /** Connects, without waiting: the app starts and serves reads whether Redis is there or not. */
  async start(): Promise<void> {
    this.client.connect().catch(() => undefined);
  }

  async get(key: string): Promise<CachedBody | null> {
    const answer = this.client.getBuffer(keyPrefix + key);
    try {
      const value = await within(answer, timeoutMs, () => {
        throw new Error(`no answer within ${timeoutMs} ms`);
      });
      return value === null ? null : decodeCachedBody(value);
    } catch {
      this.failed();
      return null;
    }
  }

  set(key: string, entry: CachedBody): void {
    this.client.set(keyPrefix + key, encodeCachedBody(entry), 'EX', this.ttlS).catch(() => this.failed());
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
