/**
 * The Redis store of the REST rate limits, given to @fastify/rate-limit through its public
 * `store` option in place of its own Redis store. That one names a limiter's keys after the route
 * it was made for (`<method><url>-`), and a limiter made by createRateLimit(options) is made for
 * no route, so the refused credentials of an address were counted under
 * `wavehouse:ratelimit:undefinedundefined-refused:<ip>`. Here a route's limiter keeps
 * `<nameSpace><method><url>-<bucket>`, and a limiter of no route `<nameSpace><bucket>`, its
 * keyGenerator naming what it counts (`refused:<ip>`, rate-limits.ts).
 *
 * A fixed window, as the plugin's: the first hit of a bucket starts its window, a hit is one round
 * trip (a script, so a crash never leaves a counter without its expiry), and a read counts nothing.
 */
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { Redis } from 'ioredis';

const hitScript = `
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {current, redis.call('PTTL', KEYS[1])}`;

const readScript = `
local current = redis.call('GET', KEYS[1])
if not current then return {0, 0} end
return {tonumber(current), math.max(redis.call('PTTL', KEYS[1]), 0)}`;

type Count = { current: number; ttl: number };
type Answer = (error: Error | null, count?: Count) => void;

/** The scripts, defined once on the client (ioredis sends each by its SHA after the first call). */
interface LimitScripts {
  wavehouseLimitHit(key: string, windowMs: number): Promise<[number, number]>;
  wavehouseLimitRead(key: string): Promise<[number, number]>;
}

function scriptsOf(redis: Redis): LimitScripts {
  const scripts = redis as unknown as Partial<LimitScripts>;
  if (scripts.wavehouseLimitHit === undefined) redis.defineCommand('wavehouseLimitHit', { numberOfKeys: 1, lua: hitScript });
  if (scripts.wavehouseLimitRead === undefined) redis.defineCommand('wavehouseLimitRead', { numberOfKeys: 1, lua: readScript });
  return redis as unknown as LimitScripts;
}

const answered = (counted: Promise<[number, number]>, answer: Answer) =>
  void counted.then(([current, ttl]) => answer(null, { current, ttl }), answer);

class RedisLimitStore implements FastifyRateLimitStore {
  constructor(
    private readonly scripts: LimitScripts,
    private readonly prefix: string,
  ) {}

  incr(bucket: string, answer: Answer, windowMs: number): void {
    answered(this.scripts.wavehouseLimitHit(this.prefix + bucket, windowMs), answer);
  }

  read(bucket: string, answer: Answer): void {
    answered(this.scripts.wavehouseLimitRead(this.prefix + bucket), answer);
  }

  /** The plugin hands a child its merged options, the route among them (empty for a limiter of no route). */
  child(options: unknown): FastifyRateLimitStore {
    const { method, url } = (options as { routeInfo?: { method?: string; url?: string } }).routeInfo ?? {};
    return new RedisLimitStore(this.scripts, method === undefined ? this.prefix : `${this.prefix}${method}${url}-`);
  }
}

/** The store for `redis`, every key under `nameSpace`. */
export function redisLimitStore(redis: Redis, nameSpace: string): FastifyRateLimitStoreCtor {
  const scripts = scriptsOf(redis);
  return class extends RedisLimitStore {
    constructor() {
      super(scripts, nameSpace);
    }
  };
}
