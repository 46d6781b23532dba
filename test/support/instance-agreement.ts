/**
 * Asking several instances of one deployment the same thing, each directly (not through the
 * balancer), and checking that they answer alike: lists, aggregates, cached reads with their
 * ETags, and a key revoked through one of them. Used by the behind-nginx test once its stream
 * is over; every check names the instance that answered otherwise.
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import type { Sample } from '../../src/sdk/types.ts';
import { assertProblem, bearer, call } from './access.ts';
import { eventually } from './eventually.ts';

/** What an instance needs to be asked directly. */
export interface Instance {
  readonly baseUrl: string;
}

/** An answer as a cache sees it: the status, the validator and the bytes. */
export interface Representation {
  status: number;
  etag: string | null;
  body: string;
}

async function represent(url: string, headers: Record<string, string>): Promise<Representation> {
  const response = await fetch(url, { headers });
  return { status: response.status, etag: response.headers.get('etag'), body: await response.text() };
}

/** Asks every instance for `path` at once; each must answer what the first did, which is returned. */
export async function sameOnEvery(instances: readonly Instance[], path: string, headers: Record<string, string>): Promise<Representation> {
  const answers = await Promise.all(instances.map((instance) => represent(`${instance.baseUrl}${path}`, headers)));
  for (const [i, answer] of answers.entries()) assert.deepEqual(answer, answers[0], `instance ${i} and instance 0 on ${path}`);
  return answers[0];
}

/**
 * Waits until no roll-up part is pending: the compactors of every instance are done folding
 * what the stream committed. A fold regroups float sums (rollup-store.ts: exact but for
 * rounding), so a sum read just before it and one read just after may differ in the last
 * digits; reads compared across instances must see the same parts.
 */
export async function rollupsSettled(databaseUrl: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await eventually(
      async () => {
        const { rows } = await client.query<{ pending: number }>('SELECT count(*)::int AS pending FROM sample_rollups WHERE pending');
        assert.equal(rows[0].pending, 0, 'roll-up parts still pending');
      },
      { timeoutMs, intervalMs: 200 },
    );
  } finally {
    await client.end();
  }
}

/**
 * The session list, whole and a page at a time: every instance answers the same list, and a
 * cursor one instance gave pages on at another. Returns the list.
 */
export async function assertListsAgree(instances: readonly Instance[], admin: string): Promise<Array<Record<string, unknown>>> {
  const whole = await eventually(() => sameOnEvery(instances, '/api/v1/sessions', bearer(admin)));
  assert.equal(whole.status, 200, whole.body);
  const { sessions } = JSON.parse(whole.body) as { sessions: Array<Record<string, unknown>> };
  const paged: unknown[] = [];
  let cursor: string | null = null;
  for (let page = 0; page === 0 || cursor !== null; page++) {
    const instance = instances[page % instances.length];
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const answer = await call(`${instance.baseUrl}/api/v1/sessions?limit=2${query}`, 'GET', bearer(admin));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    paged.push(...answer.body.sessions);
    cursor = answer.body.nextCursor;
  }
  assert.deepEqual(paged, sessions, 'the pages, each from another instance, make the whole list');
  return sessions;
}

/**
 * One session's cached reads (its record, /data, /latest) on every instance: the same ETag and
 * body, then 304 for that tag; after `ingestMore` (through one instance), no instance answers
 * the old body or a 304 for the old tag, and all agree on the new one. `stored.before` is what
 * the session holds at first; `ingestMore` answers what it holds after.
 */
export async function assertCachedReadsAgree(
  instances: readonly Instance[],
  sessionPath: string,
  reader: string,
  stored: { before: Sample[]; ingestMore(): Promise<Sample[]> },
): Promise<void> {
  const reads = [sessionPath, `${sessionPath}/data`, `${sessionPath}/latest`];
  const assertHolds = (path: string, answer: Representation, samples: Sample[]) => {
    const body = JSON.parse(answer.body);
    if (path === sessionPath) assert.deepEqual([body.sampleCount, body.lastSeq], [samples.length, samples.at(-1)?.seq], path);
    else if (path.endsWith('/latest')) assert.deepEqual(body.sample, samples.at(-1), path);
    else assert.deepEqual([body.samples, body.nextFromSeq], [samples, null], path);
  };
  const old = new Map<string, Representation>();
  for (const path of reads) {
    // Twice: first made by each instance, then from their caches (memory, or Redis).
    const made = await sameOnEvery(instances, path, bearer(reader));
    assert.deepEqual(await sameOnEvery(instances, path, bearer(reader)), made, `${path} from the caches`);
    assert.equal(made.status, 200, made.body);
    assert.ok(made.etag !== null, `${path} carries an ETag`);
    assertHolds(path, made, stored.before);
    const revalidated = await sameOnEvery(instances, path, { ...bearer(reader), 'if-none-match': made.etag });
    assert.deepEqual([revalidated.status, revalidated.etag], [304, made.etag], `${path} revalidated`);
    old.set(path, made);
  }
  const after = await stored.ingestMore();
  for (const path of reads) {
    const stale = old.get(path)!;
    const fresh = await sameOnEvery(instances, path, { ...bearer(reader), 'if-none-match': stale.etag! });
    assert.equal(fresh.status, 200, `${path}: the old tag is not current anywhere`);
    assert.notEqual(fresh.etag, stale.etag, path);
    assertHolds(path, fresh, after);
    assert.deepEqual(await sameOnEvery(instances, path, bearer(reader)), fresh, `${path} asked without a tag`);
  }
}

/**
 * A key (and an access token of it) that every instance accepts, revoked through `revokeVia`:
 * every instance refuses both within `boundMs`. Answers how long each instance took, in ms.
 */
export async function assertRevocationAgrees(
  instances: readonly Instance[],
  revokeVia: Instance,
  admin: string,
  { keyId, key, token, path, boundMs }: { keyId: string; key: string; token: string; path: string; boundMs: number },
): Promise<number[]> {
  for (const instance of instances) {
    // Each process now holds the key in its cache: only the broadcast can make it refuse it within the bound.
    assert.equal((await call(`${instance.baseUrl}${path}`, 'GET', bearer(key))).status, 200);
    assert.equal((await call(`${instance.baseUrl}${path}`, 'GET', bearer(token))).status, 200);
  }
  const revokedAt = Date.now();
  assert.equal((await call(`${revokeVia.baseUrl}/api/v1/keys/${keyId}`, 'DELETE', bearer(admin))).status, 200);
  return Promise.all(
    instances.map(async (instance) => {
      await eventually(
        async () => {
          assertProblem(await call(`${instance.baseUrl}${path}`, 'GET', bearer(key)), 401, 'credential_revoked');
          assertProblem(await call(`${instance.baseUrl}${path}`, 'GET', bearer(token)), 401, 'credential_revoked');
        },
        { timeoutMs: boundMs },
      );
      return Date.now() - revokedAt;
    }),
  );
}

/** A channel's figures over a whole session, as a leaderboard row has them. */
export interface Totals {
  count: number;
  min: number;
  max: number;
  sum: number;
}

/**
 * Each session's aggregate of `channel` in buckets of `bucketMs` (a multiple of 600 ms: from the
 * roll-ups), and the leaderboard of `keyPrefix` (its sessions being `sessionIds`), on every
 * instance at once: each made by the instance itself (no cache holds it yet), the same bytes and
 * ETag everywhere. Every session's buckets add up to `totals`, and so does each leaderboard row;
 * `first` and `last` are the channel's values at the session's first and last seq.
 */
export async function assertAggregatesAgree(
  instances: readonly Instance[],
  reader: string,
  { sessionIds, keyPrefix, channel, bucketMs }: { sessionIds: readonly string[]; keyPrefix: string; channel: string; bucketMs: number },
  expected: Totals & { first: number; last: number },
): Promise<void> {
  const { first, last, ...totals } = expected;
  for (const id of sessionIds) {
    const query = `bucketMs=${bucketMs}&channels=${channel}&fn=count,min,max,sum,first,last`;
    const answer = await sameOnEvery(instances, `/api/v1/sessions/${id}/aggregate?${query}`, bearer(reader));
    assert.equal(answer.status, 200, answer.body);
    const buckets: Array<Totals & { first: number; last: number }> = JSON.parse(answer.body).buckets.map(
      (bucket: Record<string, unknown>) => bucket[channel],
    );
    const added = {
      count: buckets.reduce((sum, bucket) => sum + bucket.count, 0),
      min: Math.min(...buckets.map((bucket) => bucket.min)),
      max: Math.max(...buckets.map((bucket) => bucket.max)),
      sum: buckets.reduce((sum, bucket) => sum + bucket.sum, 0),
    };
    assert.deepEqual({ ...added, first: buckets[0].first, last: buckets.at(-1)?.last }, expected, `the buckets of ${id}`);
  }
  const board = await sameOnEvery(
    instances,
    `/api/v1/aggregate?keyPrefix=${keyPrefix}&channel=${channel}&fn=count,min,max,sum`,
    bearer(reader),
  );
  assert.equal(board.status, 200, board.body);
  const rows: Array<{ sessionId: string; values: Totals }> = JSON.parse(board.body).rows;
  assert.deepEqual(rows.map((row) => row.sessionId).sort(), [...sessionIds].sort());
  for (const row of rows) assert.deepEqual(row.values, totals, `the leaderboard row of ${row.sessionId}`);
}
