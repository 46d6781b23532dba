/**
 * REST rate limits, counted per identity (@fastify/rate-limit, its counters in Redis when
 * REDIS_URL is set, so shared by the instances). A request whose credential was accepted
 * counts against its key (an access token against the key it was issued for) or its
 * identity provider's subject; any other counts against its client IP, an IPv6 client's /64.
 * Behind one NAT, each key has its own budget, and one key's load throttles no other.
 *
 * Ordering: the limit is a route hook, and Fastify runs route hooks after the instance's, so
 * it sees the principal the access guard (access-guard.ts) found. What the guard refuses never
 * reaches it, so the guard charges its refusals here itself (`refusals`): a request it refuses
 * counts against whoever sent it (a 401 against the client IP, its credential being no
 * one's), so random bearers escape nothing. A credential that is refused also counts against
 * the IP's refused credentials, a bucket of the same size checked before any credential is
 * looked up: past it, a brute force of wrong keys is answered 429 at the cost of one counter,
 * not a key lookup each. The right key from that IP waits too, as nothing tells it apart
 * without that lookup; anonymous load from the IP never counts there, so it cannot lock out
 * the keys behind the same NAT.
 *
 * Ingest tokens are not identities here: only their session checks them, once it is loaded,
 * so a random one is no one, and counting per token would let random ones go unlimited.
 */
import { normalizeIP, type RateLimitPluginOptions } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { Problem } from '../contract/errors.ts';

const windowMs = 60_000;

/** Whose bucket a request counts against. */
function bucketOf(request: FastifyRequest): string {
  return request.access?.principal.limitedAs ?? normalizeIP(request.ip);
}

/** How a 429 names the bucket that is spent. */
function holderOf(request: FastifyRequest): string {
  const { principal } = request.access ?? {};
  if (principal?.limitedAs == null) return 'client';
  return principal.kind === 'oidc' ? 'subject' : 'key';
}

function overLimit(max: number, holder: string, retryAfter: string, retryAfterS?: number): Problem {
  return new Problem('rate_limited', `at most ${max} requests a minute per ${holder}; retry in ${retryAfter}`, retryAfterS);
}

/** A key's own limit, else the default. */
function perMinuteOf(config: Config, request: FastifyRequest): number {
  return request.access?.principal.limits.requestsPerMinute ?? config.http.rateLimitPerMinute;
}

/** The Redis that shares the limits across instances when REDIS_URL is set; null keeps them in process. */
export function rateLimitRedisOf(config: Config, log: Logger): Redis | null {
  if (config.redisUrl === null) return null;
  // No offline queue and one retry: a limit check must not wait on a Redis that is away (skipOnError lets it pass).
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', (error: Error) => log.warn({ err: error }, 'rate-limit redis connection error'));
  return redis;
}

/** The options of @fastify/rate-limit, registered once on the server (server.ts). */
export function rateLimitOptions(config: Config, redis: Redis | null): RateLimitPluginOptions {
  const perMinute = (request: FastifyRequest) => perMinuteOf(config, request);
  // Over every REST route unless a route says otherwise (sockets are capped by count instead,
  // routes/sockets.ts); on even when RATE_LIMIT_PER_MINUTE is 0, for the keys that set a limit
  // of their own. A route with a limit of its own (creation) keeps it.
  return {
    global: true,
    keyGenerator: bucketOf,
    max: async (request) => perMinute(request),
    allowList: (request) => request.routeOptions.config.rateLimit === undefined && perMinute(request) === 0,
    timeWindow: windowMs,
    redis: redis ?? undefined,
    nameSpace: 'wavehouse:ratelimit:',
    skipOnError: true,
    errorResponseBuilder: (request, context) => overLimit(context.max, holderOf(request), context.after),
  };
}

/** The guard's side of the limits: refusals charged, and refused credentials kept from being looked up. */
export interface Refusals {
  /** Null if a credential from this request's client may be checked, else the 429 to answer. */
  beforeCredential(request: FastifyRequest): Promise<Problem | null>;
  /** Counts a refused credential against its client IP. */
  credentialRefused(request: FastifyRequest): Promise<void>;
  /** What to answer for a refusal by the guard, once it is counted: the refusal, or 429 if that spent the budget. */
  charged(request: FastifyRequest, refusal: unknown): Promise<unknown>;
}

/** Built once the limits are registered on `server`. */
export function refusalsOf(server: Pick<FastifyInstance, 'createRateLimit'>, config: Config): Refusals {
  const perIp = config.http.rateLimitPerMinute;
  const served = server.createRateLimit();
  const refusedCredentials = server.createRateLimit({ keyGenerator: (request) => `refused:${normalizeIP(request.ip)}`, max: perIp });
  return {
    async beforeCredential(request) {
      if (perIp === 0) return null;
      const spent = await refusedCredentials(request, { increment: false });
      if (spent.isAllowed || spent.remaining > 0) return null;
      const retryAfterS = Math.max(1, spent.ttlInSeconds);
      return overLimit(perIp, 'client', `${retryAfterS} s`, retryAfterS);
    },
    async credentialRefused(request) {
      if (perIp > 0) await refusedCredentials(request);
    },
    async charged(request, refusal) {
      const status = refusal instanceof Problem ? refusal.status : 0;
      if (status !== 401 && status !== 403) return refusal;
      if (request.routeOptions.config.rateLimit === false || perMinuteOf(config, request) === 0) return refusal;
      const counted = await served(request);
      if (counted.isAllowed || !counted.isExceeded) return refusal;
      return overLimit(counted.max, holderOf(request), `${counted.ttlInSeconds} s`, counted.ttlInSeconds);
    },
  };
}
