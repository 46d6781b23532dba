/**
 * Cached reads: an ETag on a read's answer, 304 for an If-None-Match that names it, and the
 * answer itself from the read cache (reads/body-cache.ts) when another request produced it
 * already. A route calls `answer` once, after it has loaded what it reads and checked who is
 * asking, so a cached answer never reaches a caller the route would refuse:
 *
 *   const session = await findSessionOr404(repository, id);
 *   authorizeSession(config, request, 'sessions:read', sessionRef(session));
 *   return readCache.answer(request, reply, {
 *     resource: 'aggregate', version: sessionVersion(session), variant: request.query,
 *     produce: async () => ({ json: await aggregate(...) }),
 *   });
 *
 * What makes it correct: the tag, and the cache key it is, digests the route, `variant` (every
 * input of the request that shapes the body) and `version` (the row the route just loaded,
 * storage/session-version.ts), and `produce` must answer as of that version and no later, so
 * that one tag always names one body. A read after an ack loads a row that counts the acked
 * samples, hence a tag no earlier answer had: it can only be a miss, or a hit on an answer
 * made from that same version, on any instance. /data and /latest read up to the version's
 * lastSeq. An aggregate cannot bound itself so: its buckets may hold a sample committed after
 * the row was read, and a compaction of its roll-ups moves the rounding of its sums (never the
 * version), so its answers of one version are equivalent, not byte-equal: it asks for a weak
 * tag (`equivalentOnly`).
 *
 * Bodies are kept up to the cache's entry bound; a streamed body is passed on piece by piece
 * as before and kept only while it stays under that bound, so a large export is never held
 * whole in memory to be cached.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { type Metrics, readCacheCounters } from '../observability/metrics.ts';
import { BodyCache } from '../reads/body-cache.ts';
import { type CachedBody, ownedCopy } from '../reads/cached-body.ts';
import { RedisBodies } from '../reads/redis-bodies.ts';
import { entityTag, ifNoneMatchHits } from './entity-tags.ts';

/**
 * Part of every tag: raised whenever a cached representation changes (a field added to the
 * Session, a format written otherwise), so that instances of two releases behind one Redis
 * during a deploy never take each other's answers, and clients' tags change with them.
 */
const representationVersion = '1';

/**
 * What a route's read produces on a miss: JSON the route's response schema serializes, or bytes
 * of a media type. A streamed body's pieces are kept as they are: its producer must not write
 * into one it has yielded (export-body.ts allocates a new piece after each).
 */
export type ProducedBody =
  | { json: unknown; headers?: Record<string, string> }
  | { type: string; body: Buffer | AsyncIterable<Buffer>; headers?: Record<string, string> };

export interface CachedRead {
  /** Which read: its route, say `data`; distinct per route. */
  resource: string;
  /** What the body is read from: sessionVersion(record), or several versions joined. */
  version: string;
  /** Every other input that shapes the body (the query, a format chosen from Accept), as JSON. */
  variant: unknown;
  /**
   * Whether two answers of one version may differ in their bytes, being equivalent only: then
   * the tag is weak (RFC 9110, section 8.8.1), as instances that make the answer apart (a Redis
   * entry expired, two misses at once) may answer different bytes under it.
   */
  equivalentOnly?: boolean;
  produce(): Promise<ProducedBody>;
}

export interface ReadCacheCounters {
  notModified(): void;
}

export class ReadCache {
  /** `cache` null: tags and 304 only (READ_CACHE_MAX_BYTES=0). */
  constructor(
    private readonly cache: BodyCache | null,
    private readonly counters: ReadCacheCounters,
  ) {}

  async answer(request: FastifyRequest, reply: FastifyReply, read: CachedRead): Promise<FastifyReply> {
    const strong = entityTag([representationVersion, read.resource, JSON.stringify(read.variant) ?? '', read.version]);
    const tag = read.equivalentOnly === true ? `W/${strong}` : strong;
    // no-cache: a browser or proxy may keep the answer, but asks again each time (RFC 9111,
    // 5.2.2.4), so it never shows one older than an ack; the ask is a cheap 304. Set only on
    // an answer: a 503 of a read that failed must not carry the tag of a body it does not have.
    const validators = { etag: tag, 'cache-control': 'no-cache' };
    if (ifNoneMatchHits(request.headers['if-none-match'], strong)) {
      this.counters.notModified();
      return reply.headers(validators).code(304).send();
    }
    const key = strong.slice(1, -1);
    const cached = await this.cache?.get(key);
    if (cached !== undefined) return reply.headers(cached.headers).headers(validators).type(cached.type).send(cached.body);
    const produced = await read.produce();
    const headers = produced.headers ?? {};
    reply.headers(headers).headers(validators);
    if ('json' in produced) {
      // The route's own serializer for its 200 schema: the bytes it would have sent.
      const body = Buffer.from(reply.serialize(produced.json) as string);
      const type = 'application/json; charset=utf-8';
      this.keep(key, { type, headers, body });
      return reply.type(type).send(body);
    }
    const { type, body } = produced;
    if (Buffer.isBuffer(body)) {
      this.keep(key, { type, headers, body: ownedCopy([body], body.length) });
      return reply.type(type).send(body);
    }
    const kept = this.cache === null ? body : this.keepWhileSmall(key, type, headers, body);
    // The route's response schema types the JSON shape; the body is that shape, streamed.
    return reply.type(type).send(Readable.from(kept) as never);
  }

  private keep(key: string, entry: CachedBody): void {
    this.cache?.set(key, entry);
  }

  /** Passes `pieces` on, keeping a copy while they stay within the entry bound; keeps it once they all went through. */
  private async *keepWhileSmall(
    key: string,
    type: string,
    headers: Record<string, string>,
    pieces: AsyncIterable<Buffer>,
  ): AsyncGenerator<Buffer> {
    let kept: Buffer[] | null = [];
    let size = 0;
    for await (const piece of pieces) {
      if (kept !== null) {
        size += piece.length;
        if (this.cache!.fits(size)) kept.push(piece);
        else kept = null;
      }
      yield piece;
    }
    if (kept !== null) this.keep(key, { type, headers, body: ownedCopy(kept, size) });
    else this.cache!.passOversized();
  }
}

/**
 * The read cache of an app: an LRU here, shared through Redis when there is one, on a client of
 * its own (redis-bodies.ts), which the caller starts and closes with its other parts.
 */
export function readCacheOf(config: Config, metrics: Metrics, log: Logger): { readCache: ReadCache; shared: RedisBodies | null } {
  const counters = readCacheCounters(metrics);
  if (config.readCache.maxBytes === 0) return { readCache: new ReadCache(null, counters), shared: null };
  const { redisUrl, readCache } = config;
  const options = { ttlS: readCache.redisTtlS, log: log.child({ part: 'read cache' }), failed: counters.redisFailed };
  const shared = redisUrl === null ? null : new RedisBodies({ url: redisUrl, ...options });
  const cache = new BodyCache(config.readCache, counters, shared);
  metrics.observeReadCache(cache);
  return { readCache: new ReadCache(cache, counters), shared };
}
