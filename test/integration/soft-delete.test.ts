/**
 * Soft delete, restore and purge (issue #20) on the real PostgreSQL and Redis: a delete hides
 * the session from every read (the cached ones warm, with and without Redis), lists and
 * leaderboards, refuses its sockets and HTTP ingest, closes its producer and viewers (on
 * another instance too) and frees its key; a restore brings it back within the grace, or
 * answers 409 when its key was retaken; the purge empties it in batches, once, however many
 * instances run it; and who may do which.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { AuditTrail } from '../../src/access/audit-trail.ts';
import { SessionPurger } from '../../src/maintenance/session-purger.ts';
import { AuditRepository } from '../../src/storage/audit-repository.ts';
import { SessionDeletes } from '../../src/storage/session-deletes.ts';
import { type Answer, assertProblem, bearer, call, createKey } from '../support/access.ts';
import { startApp, startTwoInstances } from '../support/app.ts';
import { type CreatedSession, ingestUrl, liveUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { ingest, read, readUrls } from '../support/reads.ts';

const noLimits = { RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_CREATE_PER_MINUTE: '0' };

async function createKeyed(baseUrl: string, key: string, credential: string): Promise<CreatedSession> {
  const created = await call(`${baseUrl}/api/v1/sessions`, 'POST', bearer(credential), { key });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body;
}

const sessionUrl = (baseUrl: string, id: string) => `${baseUrl}/api/v1/sessions/${id}`;

/** Every read of a session, each format of /data among them. */
function everyRead(baseUrl: string, id: string): string[] {
  const { session, data, latest, aggregate } = readUrls(baseUrl, id);
  return [session, data, `${data}?format=ndjson`, `${data}?format=csv`, `${data}?format=parquet`, latest, aggregate];
}

/** Reads each twice (the second from the cache) and returns their ETags. */
async function warm(urls: readonly string[]): Promise<string[]> {
  const tags: string[] = [];
  for (const url of urls) {
    await read(url);
    const second = await read(url);
    assert.equal(second.status, 200, url);
    tags.push(second.etag!);
  }
  return tags;
}

async function assertAllGone(urls: readonly string[], tags: readonly string[]): Promise<void> {
  for (const [i, url] of urls.entries()) {
    const plain = await read(url);
    assert.equal(plain.status, 404, `${url}: ${plain.body}`);
    const conditional = await read(url, { 'if-none-match': tags[i] });
    assert.equal(conditional.status, 404, `${url} with its warm ETag`);
  }
}

async function auditRows(baseUrl: string, admin: string, action: string): Promise<Answer['body'][]> {
  const answer = await call(`${baseUrl}/api/v1/audit?action=${action}`, 'GET', bearer(admin));
  assert.equal(answer.status, 200);
  return answer.body.entries;
}

describe('deleting a session', () => {
  test('hides it from every read and socket, frees its key, and a restore brings it back', async (t) => {
    const { baseUrl, wsUrl, databaseUrl } = await startApp(t, noLimits);
    const writer = (await createKey(databaseUrl, { name: 'writer', role: 'writer', keyPrefix: 'a/' })).key;
    const admin = (await createKey(databaseUrl, { name: 'admin', role: 'admin' })).key;
    const session = await createKeyed(baseUrl, 'a/one', writer);
    await ingest(baseUrl, session, makeSamples(1, 500));
    const urls = everyRead(baseUrl, session.sessionId);
    const tags = await warm(urls);
    const bodies = await Promise.all(urls.map(async (url) => (await read(url)).body));
    const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    const resuming = new RecordingSocket(liveUrl(wsUrl, session.sessionId, 1));
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await Promise.all([viewer.opened, resuming.opened, producer.opened]);
    producer.send({ samples: makeSamples(501, 10) });
    await producer.waitForAck(510);

    const deleted = await call(sessionUrl(baseUrl, session.sessionId), 'DELETE', bearer(session.ingestToken));
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assert.equal(deleted.body.sampleCount, 510);
    const graceMs = Date.parse(deleted.body.purgeAfter) - Date.parse(deleted.body.deletedAt);
    assert.equal(graceMs, 7 * 86_400_000, 'DELETE_GRACE_DAYS is 7 by default');
    for (const socket of [viewer, resuming, producer])
      assert.deepEqual(await socket.waitForClose(), { code: 4404, reason: 'session deleted' });

    await assertAllGone(urls, tags);
    const listed = await call(`${baseUrl}/api/v1/sessions?keyPrefix=a/`, 'GET', bearer(admin));
    assert.deepEqual(listed.body.sessions, []);
    const board = await call(`${baseUrl}/api/v1/aggregate?keyPrefix=a/&channel=ax`, 'GET', bearer(admin));
    assert.deepEqual(board.body.rows, []);
    for (const url of [
      ingestUrl(wsUrl, session.sessionId, session.ingestToken),
      liveUrl(wsUrl, session.sessionId, 1),
      `${wsUrl}/ws/${session.sessionId}?token=${session.ingestToken}`,
      `${wsUrl}/ws/${session.sessionId}`,
    ]) {
      assert.equal((await new RecordingSocket(url).waitForClose()).code, 4404, url);
    }
    const posted = await call(`${sessionUrl(baseUrl, session.sessionId)}/samples`, 'POST', bearer(session.ingestToken), {
      samples: makeSamples(511, 1),
    });
    assertProblem(posted, 404, 'not_found');
    assertProblem(await call(`${sessionUrl(baseUrl, session.sessionId)}/end`, 'POST', bearer(session.ingestToken)), 404, 'not_found');
    assertProblem(await call(sessionUrl(baseUrl, session.sessionId), 'DELETE', bearer(writer)), 404, 'not_found');

    const successor = await createKeyed(baseUrl, 'a/one', writer);
    const conflict = await call(`${sessionUrl(baseUrl, session.sessionId)}/restore`, 'POST', bearer(admin));
    assertProblem(conflict, 409, 'key_taken');
    assert.equal(conflict.body.sessionId, successor.sessionId);
    assert.equal((await call(sessionUrl(baseUrl, successor.sessionId), 'DELETE', bearer(writer))).status, 200);

    const restored = await call(`${sessionUrl(baseUrl, session.sessionId)}/restore`, 'POST', bearer(admin));
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    assert.equal(restored.body.deletedAt, null);
    assert.equal(restored.body.sampleCount, 510);
    const again = await call(`${sessionUrl(baseUrl, session.sessionId)}/restore`, 'POST', bearer(admin));
    assert.equal(again.status, 200, 'a retried restore answers the same');
    for (const [i, url] of urls.entries()) {
      const back = await read(url);
      assert.equal(back.status, 200, url);
      if (i !== 1 && i !== 2 && i !== 3) continue;
      // /data holds the 10 samples the socket added since the bodies were read: the first 500 are the same.
      assert.ok(back.body.length > bodies[i].length, url);
    }
    const reattached = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await reattached.opened;
    reattached.send({ samples: makeSamples(511, 5) });
    await reattached.waitForAck(515);
    reattached.close();

    await eventually(async () => {
      const deletes = await auditRows(baseUrl, admin, 'session.delete');
      assert.deepEqual(
        deletes.map((row) => [row.actor, row.target, row.outcome]),
        [
          [deletes[0].actor, successor.sessionId, 'success'],
          [`ingest:${session.sessionId}`, session.sessionId, 'success'],
        ],
      );
      assert.match(deletes[0].actor, /^key:/);
      const restores = await auditRows(baseUrl, admin, 'session.restore');
      assert.deepEqual(
        restores.map((row) => [row.target, row.outcome]),
        [
          [session.sessionId, 'success'],
          [session.sessionId, 'key_taken'],
        ],
      );
    });
  });

  test('needs its ingest token, or sessions:write within the prefix; a restore needs admin within the prefix', async (t) => {
    const { baseUrl, databaseUrl } = await startApp(t, noLimits);
    const writerA = (await createKey(databaseUrl, { name: 'a', role: 'writer', keyPrefix: 'a/' })).key;
    const writerB = (await createKey(databaseUrl, { name: 'b', role: 'writer', keyPrefix: 'b/' })).key;
    const reader = (await createKey(databaseUrl, { name: 'r', role: 'reader' })).key;
    const adminB = (await createKey(databaseUrl, { name: 'admin b', role: 'admin', keyPrefix: 'b/' })).key;
    const session = await createKeyed(baseUrl, 'a/two', writerA);
    const url = sessionUrl(baseUrl, session.sessionId);
    assertProblem(await call(url, 'DELETE'), 401, 'invalid_token');
    assertProblem(await call(url, 'DELETE', bearer('not-its-token')), 401, 'invalid_token');
    assertProblem(await call(url, 'DELETE', bearer(writerB)), 403, 'outside_key_prefix');
    assertProblem(await call(url, 'DELETE', bearer(reader)), 403, 'insufficient_scope');
    assertProblem(await call(`${baseUrl}/api/v1/sessions/not-a-uuid`, 'DELETE', bearer(writerA)), 404, 'not_found');
    assertProblem(await call(sessionUrl(baseUrl, crypto.randomUUID()), 'DELETE', bearer(writerA)), 404, 'not_found');
    assert.equal((await call(url, 'DELETE', bearer(writerA))).status, 200);

    assertProblem(await call(`${url}/restore`, 'POST'), 401, 'missing_credential');
    // An ingest token is no credential here: in open mode it is ignored, as on every route that takes none.
    assertProblem(await call(`${url}/restore`, 'POST', bearer(session.ingestToken)), 401, 'missing_credential');
    assertProblem(await call(`${url}/restore`, 'POST', bearer(writerA)), 403, 'insufficient_scope');
    assertProblem(await call(`${url}/restore`, 'POST', bearer(adminB)), 403, 'outside_key_prefix');
    assertProblem(await call(`${baseUrl}/api/v1/sessions/${crypto.randomUUID()}/restore`, 'POST', bearer(adminB)), 404, 'not_found');
    assertProblem(await call(`${baseUrl}/api/v1/sessions/x/restore`, 'POST', bearer(adminB)), 404, 'not_found');
    const preflight = await fetch(url, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'DELETE' },
    });
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /\bDELETE\b/);
  });

  test('an admin lists the deleted sessions, each with when it is purged; nobody else may, and lists hide them', async (t) => {
    const { baseUrl, databaseUrl } = await startApp(t, noLimits);
    const admin = (await createKey(databaseUrl, { name: 'admin', role: 'admin' })).key;
    const adminB = (await createKey(databaseUrl, { name: 'admin b', role: 'admin', keyPrefix: 'b/' })).key;
    const writer = (await createKey(databaseUrl, { name: 'writer', role: 'writer' })).key;
    const aOne = await createKeyed(baseUrl, 'a/one', admin);
    const bOne = await createKeyed(baseUrl, 'b/one', admin);
    await createKeyed(baseUrl, 'b/kept', admin);
    const bTwo = await createKeyed(baseUrl, 'b/two', admin);
    const deletedAt = new Map<string, string>();
    for (const session of [aOne, bTwo, bOne]) {
      const deleted = await call(sessionUrl(baseUrl, session.sessionId), 'DELETE', bearer(admin));
      deletedAt.set(session.sessionId, deleted.body.deletedAt);
    }
    const list = async (query: string, credential = admin) => {
      const answer = await call(`${baseUrl}/api/v1/sessions?${query}`, 'GET', bearer(credential));
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      return answer.body;
    };
    const keysOf = (page: { sessions: { key: string }[] }) => page.sessions.map((session) => session.key);

    const deleted = await list('deleted=true');
    assert.deepEqual(keysOf(deleted), ['b/two', 'b/one', 'a/one'], 'newest first, as every listing');
    for (const session of deleted.sessions) {
      assert.equal(session.deletedAt, deletedAt.get(session.sessionId));
      assert.equal(Date.parse(session.purgeAfter) - Date.parse(session.deletedAt), 7 * 86_400_000);
    }
    assert.deepEqual(keysOf(await list('deleted=true&keyPrefix=a/')), ['a/one']);
    assert.deepEqual(keysOf(await list('deleted=true', adminB)), ['b/two', 'b/one'], "a prefixed admin's within its prefix");
    const first = await list('deleted=true&limit=2');
    assert.deepEqual(keysOf(first), ['b/two', 'b/one']);
    assert.deepEqual(keysOf(await list(`deleted=true&limit=2&cursor=${first.nextCursor}`)), ['a/one']);
    for (const query of ['', 'deleted=false', 'keyPrefix=b/']) {
      const page = await list(query);
      assert.deepEqual(keysOf(page), ['b/kept'], query);
      assert.equal('deletedAt' in page.sessions[0] || 'purgeAfter' in page.sessions[0], false, query);
    }

    assertProblem(await call(`${baseUrl}/api/v1/sessions?deleted=true`, 'GET', bearer(writer)), 403, 'insufficient_scope');
    assertProblem(await call(`${baseUrl}/api/v1/sessions?deleted=true`, 'GET'), 401, 'missing_credential');
    assertProblem(await call(`${baseUrl}/api/v1/sessions?deleted=yes`, 'GET', bearer(admin)), 400, 'invalid_request');

    assert.equal((await call(`${sessionUrl(baseUrl, aOne.sessionId)}/restore`, 'POST', bearer(admin))).status, 200);
    assert.deepEqual(keysOf(await list('deleted=true')), ['b/two', 'b/one']);
    assert.deepEqual(keysOf(await list('')), ['b/kept', 'a/one']);
  });

  test('past its grace it cannot be restored, and the purge empties it in batches, once, whoever runs it', async (t) => {
    const { baseUrl, databaseUrl } = await startApp(t, { ...noLimits, DELETE_GRACE_DAYS: '0' });
    const admin = (await createKey(databaseUrl, { name: 'admin', role: 'admin' })).key;
    const doomed = [await createKeyed(baseUrl, 'p/one', admin), await createKeyed(baseUrl, 'p/two', admin)];
    const kept = await createKeyed(baseUrl, 'p/kept', admin);
    for (const session of [...doomed, kept]) {
      // Three commits a session, so three chunks, and roll-up parts of several blocks (t spread over 30 s).
      for (const from of [1, 101, 201]) {
        await ingest(
          baseUrl,
          session,
          makeSamples(from, 100).map((sample) => ({ ...sample, t: sample.seq * 100 })),
        );
      }
    }
    for (const session of doomed) assert.equal((await call(sessionUrl(baseUrl, session.sessionId), 'DELETE', bearer(admin))).status, 200);
    assertProblem(await call(`${sessionUrl(baseUrl, doomed[0].sessionId)}/restore`, 'POST', bearer(admin)), 404, 'not_found');

    const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    // Ended below; should the test fail first, startApp's hook drops the database under it.
    pool.on('error', () => undefined);
    const rowsOf = async (table: string, id: string) =>
      Number((await pool.query(`SELECT count(*) FROM ${table} WHERE session_id = $1`, [id])).rows[0].count);
    assert.ok((await rowsOf('sample_chunks', doomed[0].sessionId)) >= 3);
    assert.ok((await rowsOf('sample_rollups', doomed[0].sessionId)) >= 3);
    const audit = new AuditTrail({ store: new AuditRepository({ pool }) });
    const deletes = new SessionDeletes(pool);
    // Two purgers at once, as two instances: batches of 2 rows, so each session takes several.
    const purgers = [0, 1].map(() => new SessionPurger({ deletes, audit, graceMs: 0, batchSize: 2 }));
    const purged = await Promise.all(purgers.map((purger) => purger.purge()));
    assert.deepEqual(purged.flat().sort(), doomed.map((session) => session.sessionId).sort(), 'each session purged once');
    for (const session of doomed) {
      assert.equal(await rowsOf('sample_chunks', session.sessionId), 0);
      assert.equal(await rowsOf('sample_rollups', session.sessionId), 0);
      assert.equal((await pool.query('SELECT 1 FROM sessions WHERE id = $1', [session.sessionId])).rowCount, 0);
      assertProblem(await call(`${sessionUrl(baseUrl, session.sessionId)}/restore`, 'POST', bearer(admin)), 404, 'not_found');
    }
    assert.equal((await read(readUrls(baseUrl, kept.sessionId).data)).status, 200);
    assert.ok((await rowsOf('sample_chunks', kept.sessionId)) >= 3, 'a session not deleted is left alone');
    assert.deepEqual(await purgers[0].purge(), [], 'nothing left to purge');
    await audit.close(Date.now() + 5_000);
    const rows = await auditRows(baseUrl, admin, 'session.purge');
    assert.deepEqual(
      rows.map((row) => [row.actor, row.target, row.outcome]).sort(),
      doomed.map((s) => ['purge', s.sessionId, 'success']).sort(),
    );
  });
});

describe('deleting a session with two instances', () => {
  test('closes its producer and viewers on the other instance, and neither answers a read from its warm cache', async (t) => {
    const { a, b, databaseUrl } = await startTwoInstances(t, noLimits);
    const writer = (await createKey(databaseUrl, { name: 'writer', role: 'writer' })).key;
    const session = await createKeyed(a.baseUrl, 'm/one', writer);
    await ingest(a.baseUrl, session, makeSamples(1, 100));
    const producer = new RecordingSocket(ingestUrl(b.wsUrl, session.sessionId, session.ingestToken));
    const viewer = new RecordingSocket(liveUrl(b.wsUrl, session.sessionId, 1));
    await Promise.all([producer.opened, viewer.opened]);
    producer.send({ samples: makeSamples(101, 10) });
    await producer.waitForAck(110);
    const urls = { a: everyRead(a.baseUrl, session.sessionId), b: everyRead(b.baseUrl, session.sessionId) };
    const tags = { a: await warm(urls.a), b: await warm(urls.b) };

    assert.equal((await call(sessionUrl(a.baseUrl, session.sessionId), 'DELETE', bearer(writer))).status, 200);
    assert.deepEqual(await producer.waitForClose(), { code: 4404, reason: 'session deleted' });
    assert.deepEqual(await viewer.waitForClose(), { code: 4404, reason: 'session deleted' });
    await assertAllGone(urls.a, tags.a);
    await assertAllGone(urls.b, tags.b);
    const retaken = await createKeyed(b.baseUrl, 'm/one', writer);
    assert.notEqual(retaken.sessionId, session.sessionId);
  });
});
