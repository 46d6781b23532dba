/** Streams are sessions with a key: unique keys, 409 key_taken, key prefixes, and listing with a cursor. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import type { KeyRequest } from '../../src/access/api-keys.ts';
import { type Answer, assertProblem, bearer, call, createKey, privateMode } from '../support/access.ts';
import { startApp } from '../support/app.ts';

async function keyedApp(t: Parameters<typeof startApp>[0], env: Record<string, string> = {}) {
  const running = await startApp(t, env);
  const createKeyed = async (request: KeyRequest) => (await createKey(running.databaseUrl, request)).key;
  const keyOf = (role: string, keyPrefix: string | null = null) => createKeyed({ name: role, role, keyPrefix });
  const sessions = `${running.baseUrl}/api/v1/sessions`;
  const create = (body: object, credential?: string) => call(sessions, 'POST', credential ? bearer(credential) : {}, body);
  const list = (query: string, credential: string) => call(`${sessions}?${query}`, 'GET', bearer(credential));
  return { ...running, sessions, keyOf, createKeyed, create, list };
}

function created(answer: Answer): string {
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body.sessionId;
}

/** Every page of a listing, following nextCursor. */
async function allPages(list: (query: string) => Promise<Answer>, query: string): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const answer: Answer = await list(cursor === null ? query : `${query}&cursor=${encodeURIComponent(cursor)}`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    pages.push(answer.body.sessions.map((session: { sessionId: string }) => session.sessionId));
    cursor = answer.body.nextCursor;
  } while (cursor !== null && pages.length < 1000);
  return pages;
}

test('a key is stored, returned and unique: the second create is 409 key_taken, the holder id only to a reader', async (t) => {
  const { sessions, create, keyOf, createKeyed } = await keyedApp(t);
  const writer = await keyOf('writer');
  const first = created(await create({ key: 'plant-1/pump.3:flow_rate' }, writer));
  const got = await call(`${sessions}/${first}`);
  assert.equal(got.body.key, 'plant-1/pump.3:flow_rate');
  assert.equal((await call(`${sessions}/${created(await create({}))}`)).body.key, null);

  const again = await create({ key: 'plant-1/pump.3:flow_rate' }, writer);
  assertProblem(again, 409, 'key_taken');
  assert.equal(again.body.sessionId, first);
  assert.equal(again.body.status, 409, 'an extension never replaces a standard member');
  // A key that writes but does not read learns nothing of the holder.
  const writeOnly = await createKeyed({ name: 'w', scopes: ['sessions:write'], keyPrefix: null });
  const blind = await create({ key: 'plant-1/pump.3:flow_rate' }, writeOnly);
  assertProblem(blind, 409, 'key_taken');
  assert.equal(blind.body.sessionId, undefined);
  assert.equal((await create({ key: 'plant-1/pump.3:flow_rate' }, await keyOf('writer', 'plant-2/'))).status, 403);
});

test('in open mode too, a key needs a credential: no one squats a tenant stream name anonymously', async (t) => {
  const { create, keyOf } = await keyedApp(t);
  assertProblem(await create({ key: 'evara/tank-1' }), 401, 'missing_credential');
  created(await create({ key: 'evara/tank-1' }, await keyOf('writer', 'evara/')));
  created(await create({}));
});

test('concurrent creates of one key, batched into one insert: exactly one is stored, the others name it', async (t) => {
  const { create, keyOf, databaseUrl } = await keyedApp(t);
  const writer = await keyOf('writer');
  const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => create({ key: i % 2 === 0 ? 'shared' : `own-${i}` }, writer)));
  const shared = answers.filter((_, i) => i % 2 === 0);
  const winners = shared.filter((answer) => answer.status === 201);
  assert.equal(winners.length, 1);
  for (const loser of shared.filter((answer) => answer.status !== 201)) {
    assertProblem(loser, 409, 'key_taken');
    assert.equal(loser.body.sessionId, winners[0].body.sessionId);
  }
  for (const own of answers.filter((_, i) => i % 2 === 1)) created(own);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM sessions').finally(() => pool.end());
  assert.equal(rows[0].n, 21);
});

test('malformed keys are 400 and store nothing', async (t) => {
  const { create, list, keyOf } = await keyedApp(t);
  const writer = await keyOf('writer');
  for (const key of ['', 'a b', 'a'.repeat(201), 'ünicode', 'a\u0000b', 'semi;colon', 'a%2Fb', 42, null]) {
    assertProblem(await create({ key }, writer), 400, 'invalid_request');
  }
  created(await create({ key: 'a'.repeat(200) }, writer));
  const reader = await keyOf('reader');
  assert.equal((await list('', reader)).body.sessions.length, 1);
});

test('a prefixed key creates and reaches only sessions within its prefix', async (t) => {
  const { sessions, create, keyOf } = await keyedApp(t, privateMode());
  const plant1 = await keyOf('writer', 'plant-1/');
  const admin = await keyOf('admin');
  assertProblem(await create({}, plant1), 403, 'outside_key_prefix');
  assertProblem(await create({ key: 'plant-2/flow' }, plant1), 403, 'outside_key_prefix');
  assertProblem(await create({ key: 'plant-1' }, plant1), 403, 'outside_key_prefix');
  const inside = created(await create({ key: 'plant-1/flow' }, plant1));
  const outside = created(await create({ key: 'plant-10/flow' }, admin));
  assert.equal((await call(`${sessions}/${inside}`, 'GET', bearer(plant1))).status, 200);
  assertProblem(await call(`${sessions}/${outside}`, 'GET', bearer(plant1)), 403, 'outside_key_prefix');
  assertProblem(await call(`${sessions}/${outside}/data`, 'GET', bearer(plant1)), 403, 'outside_key_prefix');
});

test('listing needs sessions:read in either mode, and a prefixed key lists only its prefix', async (t) => {
  const { sessions, create, list, keyOf } = await keyedApp(t);
  assertProblem(await call(sessions), 401, 'missing_credential');
  const admin = await keyOf('admin');
  const tank1 = await create({ key: 'evara/tank-1' }, admin);
  created(tank1);
  // An ingest token is no credential here: in open mode it is ignored, as on every route but `end`.
  assertProblem(await call(sessions, 'GET', bearer(tank1.body.ingestToken)), 401, 'missing_credential');
  for (const key of ['evara/tank-2', 'evara_x/tank', 'evaraX', 'sched/a', 'sched/b']) created(await create({ key }, admin));
  created(await create({}, admin));
  const reader = await keyOf('reader');
  const keysOf = (answer: Answer) => answer.body.sessions.map((session: { key: string | null }) => session.key);

  assert.deepEqual(keysOf(await list('', reader)), [null, 'sched/b', 'sched/a', 'evaraX', 'evara_x/tank', 'evara/tank-2', 'evara/tank-1']);
  // `_` is a character like any other, not LIKE's wildcard.
  assert.deepEqual(keysOf(await list('keyPrefix=evara_', reader)), ['evara_x/tank']);
  assert.deepEqual(keysOf(await list('keyPrefix=evara/', reader)), ['evara/tank-2', 'evara/tank-1']);
  assert.deepEqual(keysOf(await list('key=sched/a', reader)), ['sched/a']);

  const evara = await keyOf('reader', 'evara/');
  assert.deepEqual(keysOf(await list('', evara)), ['evara/tank-2', 'evara/tank-1']);
  assert.deepEqual(keysOf(await list('keyPrefix=evara/tank-1', evara)), ['evara/tank-1']);
  assert.deepEqual(keysOf(await list('keyPrefix=e', evara)), ['evara/tank-2', 'evara/tank-1']);
  assert.deepEqual(keysOf(await list('keyPrefix=sched/', evara)), []);
  assert.deepEqual(keysOf(await list('key=sched/a', evara)), []);
});

test('listing filters by status and creation time, and refuses what it cannot read', async (t) => {
  const { sessions, create, list, keyOf } = await keyedApp(t);
  const writer = await keyOf('writer');
  const early = created(await create({ key: 'early' }, writer));
  const between = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 5));
  const late = await create({ key: 'late' }, writer);
  assert.equal((await call(`${sessions}/${late.body.sessionId}/end`, 'POST', bearer(late.body.ingestToken))).status, 200);
  const ids = async (query: string) => (await list(query, writer)).body.sessions.map((session: { sessionId: string }) => session.sessionId);

  assert.deepEqual(await ids('status=ended'), [late.body.sessionId]);
  assert.deepEqual(await ids('status=created'), [early]);
  assert.deepEqual(await ids(`createdBefore=${between}`), [early]);
  assert.deepEqual(await ids(`createdAfter=${between}`), [late.body.sessionId]);
  for (const query of [
    'limit=0',
    'limit=1001',
    'limit=x',
    'status=gone',
    'createdAfter=yesterday',
    'cursor=%00',
    'cursor=abc',
    'other=1',
  ]) {
    assertProblem(await list(query, writer), 400, 'invalid_request');
  }
});

test('paging with a cursor while sessions are created: every session once, newest first', async (t) => {
  const { create, list, keyOf } = await keyedApp(t, { RATE_LIMIT_CREATE_PER_MINUTE: '0' });
  const writer = await keyOf('writer');
  // Creates that arrive together share one INSERT, so one created_at: the id breaks the tie.
  const before = new Set(await Promise.all(Array.from({ length: 57 }, () => create({}, writer).then(created))));
  const pages: string[][] = [];
  let cursor: string | null = null;
  const during = new Set<string>();
  do {
    const answer: Answer = await list(`limit=7${cursor === null ? '' : `&cursor=${cursor}`}`, writer);
    pages.push(answer.body.sessions.map((session: { sessionId: string }) => session.sessionId));
    cursor = answer.body.nextCursor;
    for (const id of await Promise.all([create({}, writer), create({}, writer)].map((p) => p.then(created)))) during.add(id);
  } while (cursor !== null);
  const seen = pages.flat();
  assert.equal(new Set(seen).size, seen.length, 'no session twice');
  assert.deepEqual(new Set(seen.filter((id) => before.has(id))), before, 'every session that existed before paging');
  assert.ok(
    seen.every((id) => before.has(id)),
    'sessions created during paging are newer than the first page',
  );
  assert.ok(pages.slice(0, -1).every((page) => page.length === 7));
  const everything = (await allPages((query) => list(query, writer), 'limit=1000')).flat();
  assert.equal(everything.length, before.size + during.size);
  assert.deepEqual((await allPages((query) => list(query, writer), 'limit=3')).flat(), everything);
});
