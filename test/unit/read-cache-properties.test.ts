/**
 * The read cache's pieces that need no server: the Redis value codec (untrusted: anyone who
 * can write to that Redis wrote it) round-trips what the server keeps and refuses anything
 * else without throwing; the LRU stays within its bytes, counts its evictions, and keeps no
 * body over the entry bound.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BodyCache, type SharedBodies } from '../../src/reads/body-cache.ts';
import { type CachedBody, decodeCachedBody, encodeCachedBody } from '../../src/reads/cached-body.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const entry = fc.record({
  type: fc.constantFrom('application/json; charset=utf-8', 'text/csv; charset=utf-8', 'application/x-ndjson'),
  headers: fc.constantFrom<Record<string, string>>({}, { 'wavehouse-next-from-seq': '17' }),
  body: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
});

test('an encoded answer decodes to itself', () => {
  fc.assert(
    fc.property(entry, (original) => {
      const decoded = decodeCachedBody(encodeCachedBody(original));
      assert.ok(decoded !== null);
      assert.equal(decoded.type, original.type);
      assert.deepEqual({ ...decoded.headers }, { ...original.headers });
      assert.ok(decoded.body.equals(original.body));
    }),
    fuzzParameters(500),
  );
});

test('arbitrary and mutated values decode to null or to a well-formed answer, never a throw', () => {
  const mutated = fc.tuple(entry, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([original, at, byte]) => {
    const encoded = encodeCachedBody(original);
    encoded[at % encoded.length] = byte;
    return encoded;
  });
  const values = fc.oneof(
    fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    mutated,
    fc.tuple(entry, fc.nat()).map(([original, cut]) => {
      const encoded = encodeCachedBody(original);
      return encoded.subarray(0, cut % encoded.length);
    }),
  );
  fc.assert(
    fc.property(values, (value) => {
      const decoded = decodeCachedBody(value);
      if (decoded === null) return;
      assert.equal(typeof decoded.type, 'string');
      assert.ok(Buffer.isBuffer(decoded.body));
      for (const [name, text] of Object.entries(decoded.headers)) assert.match(`${name}: ${text}`, /^[a-z0-9-]+: [\x20-\x7e]*$/);
    }),
    fuzzParameters(2_000),
  );
});

function countingCache(maxBytes: number, maxEntryBytes: number, shared: SharedBodies | null = null) {
  const counts = { memory: 0, redis: 0, misses: 0, evictions: 0, oversized: 0 };
  const cache = new BodyCache(
    { maxBytes, maxEntryBytes },
    {
      hit: (tier) => counts[tier]++,
      miss: () => counts.misses++,
      evicted: () => counts.evictions++,
      oversized: () => counts.oversized++,
    },
    shared,
  );
  return { cache, counts };
}

const body = (bytes: number): CachedBody => ({ type: 'text/csv', headers: {}, body: Buffer.alloc(bytes, 0x31) });

test('the LRU stays within its bytes, evicting the least recently used, and keeps nothing over the entry bound', async () => {
  const { cache, counts } = countingCache(10_000, 4_000);
  for (let i = 0; i < 20; i++) cache.set(`k${i}`, body(1_000));
  assert.ok(cache.bytes <= 10_000, `${cache.bytes} bytes`);
  assert.ok(counts.evictions >= 10);
  assert.equal(await cache.get('k0'), undefined);
  assert.equal((await cache.get('k19'))?.body.length, 1_000);
  cache.set('large', body(4_000));
  assert.equal(counts.oversized, 1);
  assert.equal(await cache.get('large'), undefined);
  assert.deepEqual([counts.memory, counts.misses], [1, 2]);
});

test('an answer found in the shared tier is kept here too', async () => {
  const remote = new Map<string, CachedBody>([['k', body(10)]]);
  const shared: SharedBodies = { get: async (key) => remote.get(key) ?? null, set: (key, value) => remote.set(key, value) };
  const { cache, counts } = countingCache(10_000, 4_000, shared);
  assert.equal((await cache.get('k'))?.body.length, 10);
  remote.clear();
  assert.equal((await cache.get('k'))?.body.length, 10);
  assert.deepEqual([counts.redis, counts.memory], [1, 1]);
  cache.set('n', body(5));
  assert.equal(remote.get('n')?.body.length, 5);
});
