/**
 * Cached reads on the real PostgreSQL and Redis: the ETag of the session, /data, /latest and /aggregate
 * changes exactly when the record or the committed data does; If-None-Match answers 304, and
 * any header value answers 200 or 304, never an error; access is checked before the cache; a
 * read after an ack includes the acked sample, under concurrent readers that keep the cache
 * warm, on one instance and across two sharing Redis; the LRU keeps to its bytes; and with
 * Redis gone, answers stay right.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { bearer, createKey, privateMode } from '../support/access.ts';
import { startApp, startTwoInstances } from '../support/app.ts';
import { type CreatedSession, createSession, endSession, ingestUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { fuzzParameters } from '../support/fuzz.ts';
import { ingest, metric, type Read, read, readUrls } from '../support/reads.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

const noLimits = { RATE_LIMIT_PER_MINUTE: '0' };

async function tagsOf(urls: readonly string[]): Promise<string[]> {
  return Promise.all(urls.map(async (url) => (await read(url)).etag!));
}

describe('the ETag of a cached read', () => {
  test('changes exactly when the record or the committed data does', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, noLimits);
    const session = await createSession(baseUrl);
    const other = await createSession(baseUrl);
    const { session: record, data, latest, aggregate } = readUrls(baseUrl, session.sessionId);
    const urls = [record, data, latest, `${data}?format=csv`, `${data}?fromSeq=3&limit=4`, aggregate, `${aggregate}&format=csv`];
    const empty = await tagsOf(urls);
    assert.equal(new Set(empty).size, urls.length, 'each read and query has a tag of its own');
    assert.deepEqual(await tagsOf(urls), empty, 'a repeat has the same tag');

    await ingest(baseUrl, session, makeSamples(1, 10));
    const ten = await tagsOf(urls);
    for (const [i, tag] of ten.entries()) assert.notEqual(tag, empty[i], urls[i]);

    await ingest(baseUrl, session, makeSamples(1, 10));
    await ingest(baseUrl, session, []);
    await ingest(baseUrl, other, makeSamples(1, 5));
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await producer.opened;
    producer.close();
    await producer.waitForClose();
    assert.deepEqual(await tagsOf(urls), ten, 'duplicates, an empty batch, another session and a reconnect change nothing');

    assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);
    const ended = await tagsOf(urls);
    for (const [i, tag] of ended.entries()) assert.notEqual(tag, ten[i], urls[i]);
    assert.deepEqual(await tagsOf(urls), ended);
  });

  test('is the same for a format chosen by Accept or by ?format=, and /data varies on Accept', async (t) => {
    const { baseUrl } = await startApp(t, noLimits);
    const session = await createSession(baseUrl);
    await ingest(baseUrl, session, makeSamples(1, 3));
    const { data } = readUrls(baseUrl, session.sessionId);
    const byAccept = await read(data, { accept: 'text/csv' });
    const byFormat = await read(`${data}?format=csv`);
    assert.equal(byAccept.etag, byFormat.etag);
    assert.equal(byAccept.body, byFormat.body);
    assert.match(byAccept.headers.get('vary') ?? '', /accept/i);
    assert.equal(byAccept.headers.get('cache-control'), 'no-cache');
  });
});

/** A GET with an If-None-Match of any bytes a client may send (node:http passes what fetch would refuse). */
function getWith(url: string, ifNoneMatch: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers: { 'if-none-match': ifNoneMatch } }, (response) => {
      const pieces: Buffer[] = [];
      response.on('data', (piece: Buffer) => pieces.push(piece));
      response.on('end', () => resolve({ status: response.statusCode!, body: Buffer.concat(pieces).toString() }));
    });
    request.on('error', reject);
  });
}

describe('If-None-Match', () => {
  test('answers 304 with no body for the current tag, in a list, weak or *, and 200 otherwise', async (t) => {
    const { baseUrl } = await startApp(t, noLimits);
    const session = await createSession(baseUrl);
    await ingest(baseUrl, session, makeSamples(1, 5));
    for (const url of Object.values(readUrls(baseUrl, session.sessionId))) {
      const first = await read(url);
      const tag = first.etag!;
      // An aggregate's tag is weak (W/"..."): If-None-Match compares weakly, so either form matches it.
      const opaque = tag.replace(/^W\//, '');
      for (const header of [tag, opaque, `W/${opaque}`, `"nope", ${tag}`, '*', ` ${tag} ,`]) {
        const again = await read(url, { 'if-none-match': header });
        assert.equal(again.status, 304, `${url} ${header}`);
        assert.equal(again.body, '');
        assert.equal(again.etag, tag);
      }
      for (const header of ['"nope"', tag.slice(1, -1), `${tag} x`, `"${tag}`, '', ',', `*, ${tag}`]) {
        const again = await read(url, { 'if-none-match': header });
        assert.equal(again.status, 200, `${url} ${header}`);
        assert.equal(again.body, first.body);
      }
    }
    const { data } = readUrls(baseUrl, session.sessionId);
    const before = (await read(data)).etag!;
    await ingest(baseUrl, session, makeSamples(6, 1));
    const after = await read(data, { 'if-none-match': before });
    assert.equal(after.status, 200, 'an ack makes the tag a client holds stale');
    assert.equal(JSON.parse(after.body).samples.at(-1).seq, 6);
  });

  test('any header value is answered 200 or 304, never an error', async (t) => {
    const { baseUrl } = await startApp(t, noLimits);
    const session = await createSession(baseUrl);
    await ingest(baseUrl, session, makeSamples(1, 2));
    const { latest } = readUrls(baseUrl, session.sessionId);
    const current = await read(latest);
    const tag = current.etag!;
    // What a client can put in a header: HTAB, visible ASCII and space, obs-text (DEL is refused by node:http itself).
    const headerChar = fc
      .oneof(fc.constant(0x09), fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }))
      .map((code) => String.fromCharCode(code));
    const value = fc.oneof(
      fc.string({ unit: headerChar, maxLength: 60 }),
      fc.tuple(fc.nat(), fc.string({ unit: headerChar, maxLength: 3 })).map(([at, by]) => {
        const index = at % (tag.length + 1);
        return tag.slice(0, index) + by + tag.slice(index + 1);
      }),
      fc.string({ unit: headerChar, maxLength: 20 }).map((noise) => `${noise}, ${tag}`),
    );
    await fc.assert(
      fc.asyncProperty(value, async (header) => {
        const answer = await getWith(latest, header);
        assert.ok(answer.status === 200 || answer.status === 304, `${JSON.stringify(header)}: ${answer.status} ${answer.body}`);
        if (answer.status === 200) assert.equal(answer.body, current.body);
        else assert.equal(answer.body, '');
      }),
      fuzzParameters(150),
    );
  });
});

test('access is checked on every read, before the cache and before 304', async (t) => {
  const signing = privateMode();
  const { baseUrl, databaseUrl } = await startApp(t, { ...noLimits, ...signing });
  const admin = await createKey(databaseUrl, { name: 'admin', scopes: ['admin', 'sessions:read', 'sessions:write'] });
  const foreign = await createKey(databaseUrl, { name: 'tenant', scopes: ['sessions:read'], keyPrefix: 'tenant-b/' });
  const created = await fetch(`${baseUrl}/api/v1/sessions`, {
    method: 'POST',
    headers: { ...bearer(admin.key), 'content-type': 'application/json' },
    body: JSON.stringify({ key: 'tenant-a/one' }),
  });
  const session = (await created.json()) as CreatedSession;
  await ingest(baseUrl, session, makeSamples(1, 3));
  for (const url of Object.values(readUrls(baseUrl, session.sessionId))) {
    const allowed = await read(url, bearer(admin.key));
    assert.equal(allowed.status, 200);
    assert.equal((await read(url, bearer(admin.key))).body, allowed.body);
    for (const headers of [{}, bearer(foreign.key)]) {
      const refused = await read(url, { ...headers, 'if-none-match': allowed.etag! });
      assert.ok(refused.status === 401 || refused.status === 403, `${url}: ${refused.status}`);
      assert.ok(!refused.body.includes('"seq"'));
      assert.equal((await read(url, headers)).status, refused.status);
    }
  }
});

/**
 * Readers that keep reading the session's reads, so that the cache always holds the
 * answer of some version a moment old: the one a stale cache would serve.
 */
function keepReading(urls: readonly string[]) {
  let running = true;
  const loops = urls.map(async (url) => {
    while (running) await read(url);
  });
  return async () => {
    running = false;
    await Promise.all(loops);
  };
}

async function assertIncludes(reads: ReturnType<typeof readUrls>, seq: number): Promise<void> {
  const [record, data, latest, aggregate] = await Promise.all([
    read(reads.session),
    read(reads.data),
    read(reads.latest),
    read(reads.aggregate),
  ]);
  const counted = (JSON.parse(aggregate.body).buckets as Array<{ count: number }>).reduce((sum, bucket) => sum + bucket.count, 0);
  assert.equal(counted, seq, "the aggregate's buckets count every acked sample");
  assert.equal(JSON.parse(record.body).lastSeq, seq, 'the session counts the acked sample');
  assert.equal(JSON.parse(data.body).samples.at(-1).seq, seq, '/data includes the acked sample');
  assert.equal(JSON.parse(latest.body).sample.seq, seq, '/latest is the acked sample');
}

describe('no stale answer after an ack', () => {
  test('on one instance, under readers keeping the cache warm', async (t) => {
    const { baseUrl } = await startApp(t, noLimits);
    const session = await createSession(baseUrl);
    const reads = readUrls(baseUrl, session.sessionId);
    const stop = keepReading([reads.session, reads.data, reads.latest, reads.aggregate]);
    try {
      for (let seq = 1; seq <= 60; seq++) {
        assert.equal(await ingest(baseUrl, session, makeSamples(seq, 1)), seq);
        await assertIncludes(reads, seq);
      }
    } finally {
      await stop();
    }
    assert.ok((await metric(baseUrl, 'wavehouse_read_cache_hits_total', '{tier="memory"}')) > 0, 'the readers were served from the cache');
  });

  test('across two instances sharing PostgreSQL and Redis, reading on either', async (t) => {
    const { a, b } = await startTwoInstances(t, noLimits);
    const session = await createSession(a.baseUrl);
    const onA = readUrls(a.baseUrl, session.sessionId);
    const onB = readUrls(b.baseUrl, session.sessionId);
    const stop = keepReading([onA.data, onA.latest, onA.aggregate, onB.data, onB.latest, onB.aggregate, onB.session]);
    try {
      for (let seq = 1; seq <= 40; seq++) {
        assert.equal(await ingest(seq % 2 === 0 ? a.baseUrl : b.baseUrl, session, makeSamples(seq, 1)), seq);
        await assertIncludes(onB, seq);
        await assertIncludes(onA, seq);
      }
    } finally {
      await stop();
    }
    // An answer one instance made is found by the other through Redis.
    const url = `${onA.data}?fromSeq=2&limit=3`;
    const made = await read(url);
    await eventually(async () => {
      const before = await metric(b.baseUrl, 'wavehouse_read_cache_hits_total', '{tier="redis"}');
      const shared = await read(url.replace(a.baseUrl, b.baseUrl));
      assert.equal(shared.body, made.body);
      assert.equal(shared.etag, made.etag);
      assert.ok((await metric(b.baseUrl, 'wavehouse_read_cache_hits_total', '{tier="redis"}')) > before);
    });
  });
});

test('the cache keeps to READ_CACHE_MAX_BYTES, and streams a larger answer without keeping it', async (t) => {
  const maxBytes = 64 * 1024;
  const { baseUrl } = await startApp(t, { ...noLimits, READ_CACHE_MAX_BYTES: String(maxBytes), READ_CACHE_MAX_ENTRY_BYTES: '16384' });
  const session = await createSession(baseUrl);
  await ingest(baseUrl, session, makeSamples(1, 2_000));
  const { data } = readUrls(baseUrl, session.sessionId);
  for (let from = 1; from <= 1_000; from += 10) {
    const page = await read(`${data}?fromSeq=${from}&limit=50`);
    assert.equal(JSON.parse(page.body).samples[0].seq, from);
  }
  assert.ok((await metric(baseUrl, 'wavehouse_read_cache_evictions_total')) > 0);
  assert.ok((await metric(baseUrl, 'wavehouse_read_cache_bytes')) <= maxBytes);
  const hitsBefore = await metric(baseUrl, 'wavehouse_read_cache_hits_total', '{tier="memory"}');
  await read(`${data}?fromSeq=991&limit=50`);
  assert.equal(await metric(baseUrl, 'wavehouse_read_cache_hits_total', '{tier="memory"}'), hitsBefore + 1);

  const whole = await read(data);
  assert.equal(JSON.parse(whole.body).samples.length, 2_000);
  assert.ok(whole.body.length > 16_384);
  assert.equal(await metric(baseUrl, 'wavehouse_read_cache_oversized_total'), 1);
  const missesBefore = await metric(baseUrl, 'wavehouse_read_cache_misses_total');
  assert.equal((await read(data)).body, whole.body);
  assert.equal(await metric(baseUrl, 'wavehouse_read_cache_misses_total'), missesBefore + 1, 'a larger answer is read again');
});

test('with Redis gone, reads are answered right from this instance', async (t) => {
  const redis = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
  const { baseUrl } = await startApp(t, { ...noLimits, REDIS_URL: `redis://127.0.0.1:${redis.port}` });
  // After the app's close (hooks run in order): the broker's quit waits for a Redis it can reach.
  t.after(() => redis.close());
  const session = await createSession(baseUrl);
  const reads = readUrls(baseUrl, session.sessionId);
  await ingest(baseUrl, session, makeSamples(1, 1));
  await assertIncludes(reads, 1);
  redis.cut();
  try {
    for (let seq = 2; seq <= 20; seq++) {
      assert.equal(await ingest(baseUrl, session, makeSamples(seq, 1)), seq);
      await assertIncludes(reads, seq);
      const again: Read = await read(reads.data);
      assert.equal(again.status, 200);
    }
    assert.ok((await metric(baseUrl, 'wavehouse_read_cache_redis_errors_total')) > 0);
    assert.ok((await metric(baseUrl, 'wavehouse_read_cache_hits_total', '{tier="memory"}')) > 0);
  } finally {
    redis.restore();
  }
});
