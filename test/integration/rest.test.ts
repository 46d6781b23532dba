import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import pg from 'pg';
import { startApp } from '../support/app.ts';
import {
  createSession,
  databaseErrorCount,
  ingestUrl,
  liveUrl,
  makeSamples,
  RecordingSocket,
  refusedUpgrade,
  type Sample,
} from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { startAppBehindProxy } from '../support/resilience-app.ts';

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: a body as the server sent it, each test reads the fields it expects
  json(): any;
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return call(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** RFC 9457 problem+json with the given status and stable code, and nothing of the internals. */
function assertProblem(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, `expected ${status} ${code}, got ${answer.status}: ${answer.text}`);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const body = answer.json();
  assert.equal(body.code, code);
  assert.equal(body.status, status);
  assert.equal(typeof body.type, 'string');
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  assert.equal(body.stack, undefined);
  assert.doesNotMatch(answer.text, /\bat .*\.(ts|js):\d+/);
}

const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
const sessionFields = [
  'sessionId',
  'status',
  'createdAt',
  'endedAt',
  'channels',
  'sampleRateHz',
  'retentionDays',
  'metadata',
  'sampleCount',
  'lastSeq',
  'viewerUrl',
  'websocketUrl',
];

function assertIsoDate(value: unknown): void {
  assert.equal(typeof value, 'string');
  assert.ok(!Number.isNaN(Date.parse(value as string)), `${value} is not a date`);
}

/** Metadata whose compact UTF-8 JSON encoding is exactly `bytes` long, built of multibyte characters. */
function metadataOfBytes(bytes: number): { note: string } {
  const room = bytes - Buffer.byteLength('{"note":""}');
  let twoByte = 1;
  while ((room - 2 * twoByte) % 3 !== 0) twoByte++;
  const metadata = { note: '€'.repeat((room - 2 * twoByte) / 3) + 'é'.repeat(twoByte) };
  assert.equal(Buffer.byteLength(JSON.stringify(metadata)), bytes);
  return metadata;
}

describe('POST /api/v1/sessions', () => {
  test('creates a session with no body, or an empty body with or without a content type', async (t) => {
    const { baseUrl } = await startApp(t);
    const url = `${baseUrl}/api/v1/sessions`;
    const answers = [
      await call(url, { method: 'POST' }),
      await call(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' }),
      // A byte body leaves the content type unset, unlike a string body (text/plain).
      await call(url, { method: 'POST', body: new Uint8Array(0) }),
      await call(url, { method: 'POST', body: '' }),
    ];
    for (const answer of answers) {
      assert.equal(answer.status, 201, answer.text);
      assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
      const session = answer.json();
      for (const field of [...sessionFields, 'ingestToken']) assert.ok(field in session, `missing ${field}`);
      assert.match(session.sessionId, uuidV4);
      assert.equal(session.status, 'created');
      assertIsoDate(session.createdAt);
      assert.equal(session.endedAt, null);
      assert.deepEqual(session.channels, ['ax', 'ay', 'az']);
      assert.equal(session.sampleRateHz, null);
      assert.deepEqual(session.metadata, {});
      assert.equal(session.sampleCount, 0);
      assert.equal(session.lastSeq, null);
      assert.equal(typeof session.ingestToken, 'string');
      assert.ok(session.ingestToken.length >= 16);
      assert.equal(session.viewerUrl, `/view/${session.sessionId}`);
      assert.equal(session.websocketUrl, `/ws/${session.sessionId}?token=${encodeURIComponent(session.ingestToken)}`);
    }
    assert.equal(new Set(answers.map((answer) => answer.json().sessionId)).size, answers.length);
  });

  test('creates a session with channels, sampleRateHz and metadata', async (t) => {
    const { baseUrl } = await startApp(t);
    const body = {
      channels: ['ecg', 'A-Z_a.z-09'],
      sampleRateHz: 250.5,
      metadata: { patient: 'p-17', tags: ['rest', 'ü'], nested: { n: 1.5 } },
    };
    const answer = await postJson(`${baseUrl}/api/v1/sessions`, body);
    assert.equal(answer.status, 201, answer.text);
    const session = answer.json();
    assert.deepEqual(session.channels, body.channels);
    assert.equal(session.sampleRateHz, 250.5);
    assert.deepEqual(session.metadata, body.metadata);
    assert.equal(session.status, 'created');
  });

  test('creates a session with its own retentionDays, which its record carries; without one, null', async (t) => {
    const { baseUrl } = await startApp(t);
    const answer = await postJson(`${baseUrl}/api/v1/sessions`, { retentionDays: 30 });
    assert.equal(answer.status, 201, answer.text);
    const read = await call(`${baseUrl}/api/v1/sessions/${answer.json().sessionId}`);
    assert.equal(read.json().retentionDays, 30);
    assert.equal((await postJson(`${baseUrl}/api/v1/sessions`, {})).json().retentionDays, null);
  });

  test('accepts 64 channels of 64 characters', async (t) => {
    const { baseUrl } = await startApp(t);
    const channels = Array.from({ length: 64 }, (_, i) => `c${String(i).padStart(2, '0')}`.padEnd(64, 'x'));
    const answer = await postJson(`${baseUrl}/api/v1/sessions`, { channels });
    assert.equal(answer.status, 201, answer.text);
    assert.deepEqual(answer.json().channels, channels);
  });

  test('refuses bad JSON, unknown fields and badly typed fields with 400', async (t) => {
    const { baseUrl } = await startApp(t);
    const url = `${baseUrl}/api/v1/sessions`;
    const badJson = await call(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"channels": [' });
    assertProblem(badJson, 400, 'invalid_request');
    for (const body of [
      { unknown: 1 },
      { channels: ['ax'], color: 'red' },
      { channels: 'ax' },
      { sampleRateHz: 'fast' },
      { sampleRateHz: -1 },
      { retentionDays: 0 },
      { retentionDays: -1 },
      { retentionDays: 1.5 },
      { retentionDays: '30' },
      { retentionDays: 36501 },
      { retentionDays: null },
      { metadata: ['a'] },
      { metadata: 'text' },
      [],
      'text',
      42,
    ]) {
      assertProblem(await postJson(url, body), 400, 'invalid_request');
    }
  });

  test('counts metadata in UTF-8 JSON bytes: 4096 are accepted, 4097 refused', async (t) => {
    const { baseUrl } = await startApp(t);
    const url = `${baseUrl}/api/v1/sessions`;
    const atLimit = metadataOfBytes(4096);
    // Far fewer characters than bytes: a limit counted in characters would let 4097 bytes through.
    assert.ok(atLimit.note.length < 2000);
    const accepted = await postJson(url, { metadata: atLimit });
    assert.equal(accepted.status, 201, accepted.text);
    assert.deepEqual(accepted.json().metadata, atLimit);
    assertProblem(await postJson(url, { metadata: metadataOfBytes(4097) }), 400, 'metadata_too_large');
    assertProblem(await postJson(url, { metadata: metadataOfBytes(8000) }), 400, 'metadata_too_large');
  });

  test('refuses metadata holding U+0000 or a lone surrogate (jsonb cannot store them) with 400, in key or value, any depth', async (t) => {
    const { baseUrl } = await startApp(t);
    const url = `${baseUrl}/api/v1/sessions`;
    const unstorable = [
      { note: 'a\u0000b' },
      { 'k\u0000': 1 },
      { deep: [{ list: ['ok', '\u0000'] }] },
      { high: 'a\ud800' },
      { 'low\udc00': true },
      { deep: [['\udbff x']] },
    ];
    for (const metadata of unstorable) {
      const response = await postJson(url, { metadata });
      assertProblem(response, 400, 'invalid_request');
      assert.match(response.json().detail, /U\+0000 or an unpaired surrogate/);
    }
    // Text that only looks like them, and a surrogate pair (one emoji), are stored as sent.
    for (const metadata of [{ note: '\\u0000 \\ud800' }, { emoji: '\ud83d\ude00' }]) {
      const accepted = await postJson(url, { metadata });
      assert.equal(accepted.status, 201, accepted.text);
      assert.deepEqual(accepted.json().metadata, metadata);
    }
  });

  test('refuses bad channel lists with 400', async (t) => {
    const { baseUrl } = await startApp(t);
    const url = `${baseUrl}/api/v1/sessions`;
    const cases: Array<[string, unknown]> = [
      ['seq is reserved', ['seq', 'ax']],
      ['t is reserved', ['ax', 't']],
      ['duplicates', ['ax', 'ay', 'ax']],
      ['a space', ['a x']],
      ['a slash', ['a/x']],
      ['a non-ASCII letter', ['äx']],
      ['a quote', ['a"x']],
      ['an empty name', ['']],
      ['65 characters', ['x'.repeat(65)]],
      ['an empty list', []],
      ['65 channels', Array.from({ length: 65 }, (_, i) => `c${i}`)],
    ];
    for (const [why, channels] of cases) {
      const answer = await postJson(url, { channels });
      assert.equal(answer.status, 400, `${why}: ${answer.status} ${answer.text}`);
      assertProblem(answer, 400, 'invalid_request');
    }
  });

  test('refuses fields of the wrong JSON type rather than converting them', async (t) => {
    const { baseUrl } = await startApp(t);
    const url = `${baseUrl}/api/v1/sessions`;
    for (const body of [{ channels: [1] }, { channels: [true] }, { sampleRateHz: '100' }, { channels: ['ax'], sampleRateHz: true }]) {
      assertProblem(await postJson(url, body), 400, 'invalid_request');
    }
  });

  test('refuses a body that is not JSON with 415', async (t) => {
    const { baseUrl } = await startApp(t);
    const url = `${baseUrl}/api/v1/sessions`;
    for (const [contentType, body] of [
      ['text/plain', '{"channels":["ax"]}'],
      ['application/x-www-form-urlencoded', 'channels=ax'],
      ['application/xml', '<session/>'],
    ]) {
      assertProblem(await call(url, { method: 'POST', headers: { 'content-type': contentType }, body }), 415, 'unsupported_media_type');
    }
    assertProblem(
      await call(url, { method: 'POST', body: new TextEncoder().encode('{"channels":["ax"]}') }),
      415,
      'unsupported_media_type',
    );
  });

  test('refuses a body over the HTTP body limit with 413', async (t) => {
    const { baseUrl } = await startApp(t);
    const url = `${baseUrl}/api/v1/sessions`;
    const body = JSON.stringify({ metadata: { note: 'x'.repeat(65 * 1024) } });
    assertProblem(await call(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }), 413, 'payload_too_large');
    const small = await startApp(t, { HTTP_MAX_BODY_BYTES: '2048' });
    const justOver = JSON.stringify({ channels: Array.from({ length: 500 }, (_, i) => `c${i}`) });
    assert.ok(Buffer.byteLength(justOver) > 2048, 'the body is over the limit');
    assertProblem(
      await call(`${small.baseUrl}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: justOver }),
      413,
      'payload_too_large',
    );
  });

  test('answers 503 + Retry-After within the create bound while the sessions table is locked, and creates once it is free', async (t) => {
    // Long enough that the bound below leaves a whole bound of slack on a busy box.
    const createTimeoutMs = 1_500;
    const { baseUrl, databaseUrl } = await startApp(t, { SESSION_CREATE_TIMEOUT_MS: String(createTimeoutMs) });
    const url = `${baseUrl}/api/v1/sessions`;
    // What another instance's migration does to the table, held open.
    const migration = new pg.Client({ connectionString: databaseUrl });
    migration.on('error', () => undefined);
    await migration.connect();
    await migration.query('BEGIN');
    await migration.query('LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');

    const began = Date.now();
    // The first create's INSERT waits on the lock; the two behind it wait on that INSERT.
    const answers = await Promise.all([1, 2, 3].map(() => call(url, { method: 'POST' })));
    const elapsedMs = Date.now() - began;
    for (const answer of answers) {
      assertProblem(answer, 503, 'service_unavailable');
      assert.equal(answer.headers.get('retry-after'), '1');
      assert.match(answer.json().detail, new RegExp(`cancelled or did not finish within ${createTimeoutMs} ms.*retry`));
    }
    // Together, after one bound: each after a bound of its own would take two (the first
    // INSERT's, then that of the two behind it), and waiting for ever far longer.
    assert.ok(elapsedMs < 2 * createTimeoutMs, `the creates were answered after ${elapsedMs} ms`);
    // Cancelled by PostgreSQL, not just given up on by the app: no insert still waits on the lock
    // (to run once it is free, for a create already answered 503). The creates connection's alone:
    // the app's background rounds (the compressor's, the purger's) may wait on this lock too.
    const { rows } = await migration.query<{ query: string }>(
      'SELECT query FROM pg_stat_activity ' +
        "WHERE datname = current_database() AND application_name = 'wavehouse-creates' AND wait_event_type = 'Lock'",
    );
    assert.deepEqual(rows, []);

    await migration.query('ROLLBACK');
    await migration.end();
    const created = await call(url, { method: 'POST' });
    assert.equal(created.status, 201, created.text);
  });

  test('answers 503 with Retry-After, and claims no timeout, when an operator cancels a create (pg_cancel_backend)', async (t) => {
    // A bound far off: the only thing that ends the create is the operator.
    const { baseUrl, databaseUrl } = await startApp(t, { SESSION_CREATE_TIMEOUT_MS: '60000' });
    const [locker, operator] = [new pg.Client({ connectionString: databaseUrl }), new pg.Client({ connectionString: databaseUrl })];
    // A failed test leaves them to the database's drop, which cuts them.
    for (const client of [locker, operator]) client.on('error', () => undefined);
    await Promise.all([locker.connect(), operator.connect()]);
    // Held so that the create is still running when the operator finds it.
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');
    const answer = call(`${baseUrl}/api/v1/sessions`, { method: 'POST' });
    // The operator outside any transaction: one would keep the pg_stat_activity it first saw.
    await eventually(async () => {
      const { rows } = await operator.query<{ cancelled: boolean }>(
        'SELECT pg_cancel_backend(pid) AS cancelled FROM pg_stat_activity ' +
          "WHERE datname = current_database() AND application_name = 'wavehouse-creates' AND wait_event_type = 'Lock'",
      );
      assert.deepEqual(rows, [{ cancelled: true }]);
    });
    const cancelled = await answer;
    await Promise.all([locker.end(), operator.end()]);
    assertProblem(cancelled, 503, 'service_unavailable');
    assert.equal(cancelled.headers.get('retry-after'), '1');
    assert.match(cancelled.json().detail, /was cancelled or did not finish within 60000 ms/);
  });

  test('answers 503 with Retry-After while the database cannot be connected to, and creates again once it can', async (t) => {
    const { baseUrl, proxy } = await startAppBehindProxy(t);
    const url = `${baseUrl}/api/v1/sessions`;
    // No create yet, so the creates pool holds no connection: each of these must open one.
    proxy.cut();
    const answers = await Promise.all([1, 2].map(() => call(url, { method: 'POST' })));
    for (const answer of answers) {
      assertProblem(answer, 503, 'service_unavailable');
      assert.equal(answer.headers.get('retry-after'), '5');
      assert.match(answer.json().detail, /cannot reach its database.*retry/);
      // The cause (the database's address) is logged, not told.
      assert.doesNotMatch(answer.text, new RegExp(String(proxy.port)));
    }
    proxy.restore();
    const created = await call(url, { method: 'POST' });
    assert.equal(created.status, 201, created.text);
  });

  test('every route that needs the database answers 503 + Retry-After while it is out of reach, and answers again after', async (t) => {
    const { baseUrl, wsUrl, proxy } = await startAppBehindProxy(t);
    const created = await createSession(baseUrl);
    const session = `${baseUrl}/api/v1/sessions/${created.sessionId}`;
    const reads = [
      () => call(session),
      () => call(`${session}/data`),
      () => call(`${session}/data?format=csv`),
      () => call(`${session}/end`, { method: 'POST', headers: { authorization: `Bearer ${created.ingestToken}` } }),
    ];
    // Cut: the pooled connections are lost, and every new one is dropped as it opens.
    proxy.cut();
    for (const read of reads) {
      const answer = await read();
      assertProblem(answer, 503, 'service_unavailable');
      assert.equal(answer.headers.get('retry-after'), '5');
      assert.match(answer.json().detail, /cannot reach its database/);
      assert.doesNotMatch(answer.text, new RegExp(String(proxy.port)));
    }
    // Counted, so that the alert on wavehouse_database_errors_total sees refused requests.
    assert.equal(await databaseErrorCount(baseUrl, 'request'), reads.length);
    // Socket upgrades look the session up before the handshake: answered alike.
    for (const url of [ingestUrl(wsUrl, created.sessionId, created.ingestToken), liveUrl(wsUrl, created.sessionId)]) {
      const refusal = await refusedUpgrade(url);
      assert.equal(refusal.status, 503, url);
      assert.equal(refusal.headers['retry-after'], '5');
      assert.equal(refusal.body.code, 'service_unavailable');
      assert.match(String(refusal.body.detail), /cannot reach its database/);
    }
    assert.equal(await databaseErrorCount(baseUrl, 'upgrade'), 2);
    proxy.restore();
    assert.equal((await call(session)).status, 200);
    assert.equal((await call(`${session}/data`)).status, 200);
  });
});

describe('GET /api/v1/sessions/{id}', () => {
  test('returns the session without its token, and 404 for an unknown or malformed id', async (t) => {
    const { baseUrl } = await startApp(t);
    const created = await createSession(baseUrl, { channels: ['x'], sampleRateHz: 100, metadata: { a: 1 } });
    const answer = await call(`${baseUrl}/api/v1/sessions/${created.sessionId}`);
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
    const session = answer.json();
    for (const field of sessionFields) assert.ok(field in session, `missing ${field}`);
    assert.equal(session.ingestToken, undefined);
    assert.doesNotMatch(answer.text, new RegExp(created.ingestToken));
    const { websocketUrl: _stored, ...stored } = session;
    const { websocketUrl: _created, ingestToken: _token, ...answered } = created;
    assert.deepEqual(stored, answered, 'the stored record is what creation answered');
    assert.equal(session.websocketUrl, `/ws/${created.sessionId}`);

    assertProblem(await call(`${baseUrl}/api/v1/sessions/${randomUUID()}`), 404, 'not_found');
    for (const id of ['not-a-uuid', '12345', `${created.sessionId}x`, encodeURIComponent("'; DROP TABLE sessions;--")]) {
      assertProblem(await call(`${baseUrl}/api/v1/sessions/${id}`), 404, 'not_found');
    }
  });

  test('a path the router cannot read (a bad percent-escape, an id of over 100 characters) is the same 404, same headers', async (t) => {
    const { baseUrl } = await startApp(t);
    const long = 'x'.repeat(200);
    for (const path of [
      '/api/v1/sessions/%zz',
      `/api/v1/sessions/${long}`,
      '/api/v1/sessions/%zz/data',
      `/api/v1/sessions/${long}/data`,
      '/%E0%A4%A',
    ]) {
      const answer = await call(`${baseUrl}${path}`, { headers: { origin: 'https://elsewhere.example', 'x-request-id': 'bad-path-1' } });
      assertProblem(answer, 404, 'not_found');
      assert.equal(answer.headers.get('x-request-id'), 'bad-path-1', path);
      assert.equal(answer.headers.get('access-control-allow-origin'), '*', path);
      assert.equal(answer.headers.get('x-content-type-options'), 'nosniff', path);
    }
  });
});

describe('POST /api/v1/sessions/{id}/end', () => {
  test('needs the ingest token, ends once, and stays ended with the same endedAt', async (t) => {
    const { baseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const url = `${baseUrl}/api/v1/sessions/${session.sessionId}/end`;
    assertProblem(await call(url, { method: 'POST' }), 401, 'invalid_token');
    assertProblem(await call(url, { method: 'POST', headers: { authorization: 'Bearer wrong-token' } }), 401, 'invalid_token');
    assertProblem(await call(url, { method: 'POST', headers: { authorization: 'Bearer' } }), 401, 'invalid_token');
    assert.equal((await call(`${baseUrl}/api/v1/sessions/${session.sessionId}`)).json().status, 'created');

    const authorization = `Bearer ${session.ingestToken}`;
    const first = await call(url, { method: 'POST', headers: { authorization } });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json().status, 'ended');
    assertIsoDate(first.json().endedAt);
    assert.equal(first.json().sampleCount, 0);
    assert.equal(first.json().lastSeq, null);

    const second = await call(url, { method: 'POST', headers: { authorization } });
    assert.equal(second.status, 200);
    assert.equal(second.json().status, 'ended');
    assert.equal(second.json().endedAt, first.json().endedAt);
    assert.equal((await call(`${baseUrl}/api/v1/sessions/${session.sessionId}`)).json().endedAt, first.json().endedAt);

    assertProblem(
      await call(`${baseUrl}/api/v1/sessions/${randomUUID()}/end`, { method: 'POST', headers: { authorization } }),
      404,
      'not_found',
    );
    assertProblem(await call(`${baseUrl}/api/v1/sessions/nope/end`, { method: 'POST', headers: { authorization } }), 404, 'not_found');
  });

  test('returns only once every accepted sample is committed, after the producer got its final ack', async (t) => {
    // Slow commits, so the end call surely arrives while the samples are accepted but unacked.
    const { baseUrl, wsUrl } = await startApp(t, { WRITE_BATCH_MAX_AGE_MS: '1500' });
    const session = await createSession(baseUrl);
    const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    await viewer.opened;
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await producer.opened;
    const sent = makeSamples(1, 1000);
    for (let i = 0; i < sent.length; i += 100) producer.send({ samples: sent.slice(i, i + 100) });
    // The viewer sees a sample as soon as it is accepted, long before its commit.
    await eventually(() => assert.equal(viewer.samples.length, sent.length));
    assert.equal(producer.lastAck, null, 'precondition: nothing is committed yet');

    const answer = await call(`${baseUrl}/api/v1/sessions/${session.sessionId}/end`, {
      method: 'POST',
      headers: { authorization: `Bearer ${session.ingestToken}` },
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json().status, 'ended');
    assert.equal(answer.json().sampleCount, 1000);
    assert.equal(answer.json().lastSeq, 1000);

    assert.equal((await producer.waitForClose()).code, 1000);
    assert.deepEqual(producer.messages.at(-1), { type: 'ack', seq: 1000 });
    assert.deepEqual(producer.ofType('error'), []);
    assert.equal((await viewer.waitForClose()).code, 1000);
    assert.deepEqual(viewer.messages.at(-1), { type: 'session_ended' });

    const data = await call(`${baseUrl}/api/v1/sessions/${session.sessionId}/data`);
    assert.deepEqual(data.json().samples, sent);

    const late = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    assert.equal((await late.waitForClose()).code, 4409);
  });
});

describe('GET /api/v1/sessions/{id}/data', () => {
  /** A session with gaps in seq, stored in small chunks so pages start and end inside them. */
  async function sessionWithGaps(t: Parameters<typeof startApp>[0]) {
    const running = await startApp(t, { WRITE_CHUNK_MAX_SAMPLES: '4' });
    const session = await createSession(running.baseUrl);
    const producer = new RecordingSocket(ingestUrl(running.wsUrl, session.sessionId, session.ingestToken));
    await producer.opened;
    const sent = [...makeSamples(1, 10), ...makeSamples(20, 10), ...makeSamples(100, 5), ...makeSamples(1000, 1)];
    producer.send({ samples: sent.slice(0, 13) });
    producer.send({ samples: sent.slice(13, 22) });
    producer.send({ samples: sent.slice(22) });
    await producer.waitForAck(1000);
    producer.close();
    const dataUrl = `${running.baseUrl}/api/v1/sessions/${session.sessionId}/data`;
    return { ...running, session, sent, dataUrl };
  }

  const seqsOf = (samples: Sample[]) => samples.map((sample) => sample.seq);

  function parseCsv(text: string): Sample[] {
    const [header, ...lines] = text.split('\n');
    assert.equal(lines.pop(), '', 'the body ends with a newline');
    const names = header.split(',');
    return lines.map((line) => Object.fromEntries(line.split(',').map((cell, i) => [names[i], Number(cell)])) as Sample);
  }

  function parseNdjson(text: string): Sample[] {
    if (text === '') return [];
    assert.ok(text.endsWith('\n'));
    return text
      .slice(0, -1)
      .split('\n')
      .map((line) => JSON.parse(line) as Sample);
  }

  test('serves JSON, NDJSON and CSV, chosen by ?format= or Accept, ?format winning', async (t) => {
    const { dataUrl, session, sent } = await sessionWithGaps(t);
    const json = 'application/json';
    const ndjson = 'application/x-ndjson';
    const csv = 'text/csv';
    const cases: Array<[string, Record<string, string>, string]> = [
      ['', {}, json],
      ['', { accept: '*/*' }, json],
      ['', { accept: json }, json],
      ['', { accept: ndjson }, ndjson],
      ['', { accept: csv }, csv],
      ['', { accept: 'text/csv;q=0.9, */*;q=0.1' }, csv],
      ['?format=json', {}, json],
      ['?format=ndjson', {}, ndjson],
      ['?format=csv', {}, csv],
      ['?format=json', { accept: csv }, json],
      ['?format=csv', { accept: ndjson }, csv],
      ['?format=ndjson', { accept: json }, ndjson],
    ];
    for (const [query, headers, mediaType] of cases) {
      const answer = await call(dataUrl + query, { headers });
      assert.equal(answer.status, 200, answer.text);
      const contentType = answer.headers.get('content-type') ?? '';
      assert.equal(contentType.split(';')[0].trim(), mediaType, `${query} ${JSON.stringify(headers)}`);
      assert.equal(answer.headers.get('wavehouse-next-from-seq'), null);
      const samples = mediaType === json ? answer.json().samples : mediaType === ndjson ? parseNdjson(answer.text) : parseCsv(answer.text);
      assert.deepEqual(samples, sent);
    }

    const body = (await call(dataUrl)).json();
    assert.deepEqual(body, { sessionId: session.sessionId, channels: ['ax', 'ay', 'az'], samples: sent, nextFromSeq: null });

    const csvText = (await call(`${dataUrl}?format=csv`)).text;
    assert.ok(csvText.startsWith('seq,t,ax,ay,az\n'));
    assert.doesNotMatch(csvText, /\r/);
    assert.equal(csvText.split('\n').length, sent.length + 2);

    const ndjsonText = (await call(`${dataUrl}?format=ndjson`)).text;
    assert.equal(ndjsonText.split('\n').length, sent.length + 1);
  });

  test('treats fromSeq and toSeq as inclusive', async (t) => {
    const { dataUrl, sent } = await sessionWithGaps(t);
    const between = (from: number, to: number) => seqsOf(sent.filter((s) => s.seq >= from && s.seq <= to));
    for (const [query, from, to] of [
      ['?fromSeq=5&toSeq=22', 5, 22],
      ['?fromSeq=20&toSeq=20', 20, 20],
      ['?fromSeq=11&toSeq=19', 11, 19],
      ['?fromSeq=10', 10, Infinity],
      ['?toSeq=100', 0, 100],
      ['?fromSeq=1000&toSeq=1000', 1000, 1000],
      ['?fromSeq=30&toSeq=20', 30, 20],
      ['?fromSeq=0&toSeq=9007199254740991', 0, Infinity],
    ] as const) {
      for (const format of ['json', 'ndjson', 'csv']) {
        const answer = await call(`${dataUrl}${query}&format=${format}`);
        assert.equal(answer.status, 200, answer.text);
        const samples = format === 'json' ? answer.json().samples : format === 'ndjson' ? parseNdjson(answer.text) : parseCsv(answer.text);
        assert.deepEqual(seqsOf(samples), between(from, to), `${query} ${format}`);
      }
    }
    assert.equal((await call(`${dataUrl}?fromSeq=11&toSeq=19&format=csv`)).text, 'seq,t,ax,ay,az\n');
  });

  test('pages with limit: nextFromSeq in the body, Wavehouse-Next-From-Seq on every format, none on the last page', async (t) => {
    const { dataUrl, sent } = await sessionWithGaps(t);
    for (const format of ['json', 'ndjson', 'csv']) {
      const first = await call(`${dataUrl}?limit=3&format=${format}`);
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('wavehouse-next-from-seq'), '4', format);
      const middle = await call(`${dataUrl}?fromSeq=8&limit=5&format=${format}`);
      // 8, 9, 10, 20, 21: the next page starts right after the last returned seq.
      assert.equal(middle.headers.get('wavehouse-next-from-seq'), '22', format);
      const last = await call(`${dataUrl}?fromSeq=100&limit=6&format=${format}`);
      assert.equal(last.headers.get('wavehouse-next-from-seq'), null, format);
      const exact = await call(`${dataUrl}?fromSeq=100&limit=5&format=${format}`);
      assert.equal(exact.headers.get('wavehouse-next-from-seq'), '105', `${format}: seq 1000 remains beyond the limit`);
      const exactLast = await call(`${dataUrl}?fromSeq=104&limit=2&format=${format}`);
      assert.equal(exactLast.headers.get('wavehouse-next-from-seq'), null, `${format}: nothing remains beyond the limit`);
    }
    const first = (await call(`${dataUrl}?limit=3`)).json();
    assert.deepEqual(seqsOf(first.samples), [1, 2, 3]);
    assert.equal(first.nextFromSeq, 4);
    const middle = (await call(`${dataUrl}?fromSeq=8&limit=5`)).json();
    assert.deepEqual(seqsOf(middle.samples), [8, 9, 10, 20, 21]);
    assert.equal(middle.nextFromSeq, 22);
    assert.deepEqual(seqsOf(parseCsv((await call(`${dataUrl}?fromSeq=8&limit=5&format=csv`)).text)), [8, 9, 10, 20, 21]);
    assert.deepEqual(seqsOf(parseNdjson((await call(`${dataUrl}?fromSeq=8&limit=5&format=ndjson`)).text)), [8, 9, 10, 20, 21]);
    const last = (await call(`${dataUrl}?fromSeq=100&limit=6`)).json();
    assert.deepEqual(seqsOf(last.samples), [100, 101, 102, 103, 104, 1000]);
    assert.equal(last.nextFromSeq, null);
    const bounded = (await call(`${dataUrl}?fromSeq=1&toSeq=10&limit=10`)).json();
    assert.equal(bounded.nextFromSeq, null, 'nothing more within toSeq');
    const cut = await call(`${dataUrl}?fromSeq=1&toSeq=21&limit=10`);
    assert.equal(cut.json().nextFromSeq, 11);
    assert.equal(cut.headers.get('wavehouse-next-from-seq'), '11');
    assert.equal(sent.length, 26);
  });

  test('following nextFromSeq through a session with gaps returns every sample exactly once', async (t) => {
    const { dataUrl, sent } = await sessionWithGaps(t);
    for (const limit of [1, 3, 4, 7, 25, 26]) {
      const collected: Sample[] = [];
      let fromSeq: number | null = 0;
      for (let page = 0; fromSeq !== null; page++) {
        assert.ok(page <= sent.length, 'paging terminates');
        const answer = await call(`${dataUrl}?fromSeq=${fromSeq}&limit=${limit}`);
        const body = answer.json();
        assert.ok(body.samples.length <= limit);
        assert.equal(answer.headers.get('wavehouse-next-from-seq'), body.nextFromSeq === null ? null : String(body.nextFromSeq));
        collected.push(...body.samples);
        fromSeq = body.nextFromSeq;
      }
      assert.deepEqual(collected, sent, `limit ${limit}`);
    }
  });

  test('refuses bad query values with 400 and unknown sessions with 404', async (t) => {
    const { baseUrl, dataUrl } = await sessionWithGaps(t);
    for (const query of [
      '?fromSeq=-1',
      '?toSeq=-5',
      '?fromSeq=abc',
      '?fromSeq=1.5',
      '?limit=0',
      '?limit=-3',
      '?format=xml',
      '?format=',
      '?unknown=1',
      '?fromseq=1',
      '?fromSeq=9007199254740992',
    ]) {
      assertProblem(await call(dataUrl + query), 400, 'invalid_request');
    }
    assertProblem(await call(`${baseUrl}/api/v1/sessions/${randomUUID()}/data`), 404, 'not_found');
    assertProblem(await call(`${baseUrl}/api/v1/sessions/not-a-uuid/data`), 404, 'not_found');
    assertProblem(await call(`${baseUrl}/api/v1/sessions/${randomUUID()}/data?format=csv`), 404, 'not_found');
  });

  test('serves an empty session as an empty list in every format', async (t) => {
    const { baseUrl } = await startApp(t);
    const session = await createSession(baseUrl, { channels: ['x', 'y'] });
    const dataUrl = `${baseUrl}/api/v1/sessions/${session.sessionId}/data`;
    assert.deepEqual((await call(dataUrl)).json(), { sessionId: session.sessionId, channels: ['x', 'y'], samples: [], nextFromSeq: null });
    assert.equal((await call(`${dataUrl}?format=csv`)).text, 'seq,t,x,y\n');
    assert.equal((await call(`${dataUrl}?format=ndjson`)).text, '');
    assert.equal((await call(`${dataUrl}?limit=1`)).json().nextFromSeq, null);
  });
});

describe('health, readiness, documents and unknown paths', () => {
  test('answers /health, /ready, /openapi.json, and 404 problem+json for unknown paths', async (t) => {
    const { baseUrl } = await startApp(t);
    const health = await call(`${baseUrl}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(health.json(), { status: 'ok' });

    const ready = await call(`${baseUrl}/ready`);
    assert.equal(ready.status, 200);
    assert.equal(ready.json().ready, true);

    assertProblem(await call(`${baseUrl}/nope`), 404, 'not_found');
    assertProblem(await call(`${baseUrl}/api/v1/nope`, { method: 'POST' }), 404, 'not_found');
    assertProblem(await call(`${baseUrl}/api/v2/sessions`), 404, 'not_found');

    const openapi = await call(`${baseUrl}/openapi.json`);
    assert.equal(openapi.status, 200);
    const document = openapi.json();
    assert.match(document.openapi, /^3\.1\./);
    const paths = document.paths as Record<string, Record<string, unknown>>;
    const expected: Array<[string, string]> = [
      ['/api/v1/sessions', 'post'],
      ['/api/v1/sessions/{id}', 'get'],
      ['/api/v1/sessions/{id}/end', 'post'],
      ['/api/v1/sessions/{id}/data', 'get'],
      ['/health', 'get'],
      ['/ready', 'get'],
    ];
    for (const [path, method] of expected) {
      assert.ok(paths[path]?.[method], `${method.toUpperCase()} ${path} is documented`);
    }
  });
});

describe('CORS and request ids', () => {
  const elsewhere = 'https://elsewhere.example';

  function assertAllowsOrigin(answer: Answer, origin: string, what: string): void {
    const allowed = answer.headers.get('access-control-allow-origin');
    assert.ok(allowed === '*' || allowed === origin, `${what}: access-control-allow-origin is ${allowed}`);
  }

  test('every answer to a page on another origin carries CORS headers, including errors and preflights', async (t) => {
    const { baseUrl } = await startApp(t);
    const origin = { origin: elsewhere };
    const session = await createSession(baseUrl);
    const answers: Array<[string, Answer]> = [
      ['GET /health', await call(`${baseUrl}/health`, { headers: origin })],
      ['GET /ready', await call(`${baseUrl}/ready`, { headers: origin })],
      ['POST /sessions', await call(`${baseUrl}/api/v1/sessions`, { method: 'POST', headers: origin })],
      ['GET /sessions/{id}', await call(`${baseUrl}/api/v1/sessions/${session.sessionId}`, { headers: origin })],
      ['GET /data', await call(`${baseUrl}/api/v1/sessions/${session.sessionId}/data?format=csv`, { headers: origin })],
      [
        '400',
        await call(`${baseUrl}/api/v1/sessions`, { method: 'POST', headers: { ...origin, 'content-type': 'application/json' }, body: '{' }),
      ],
      ['401', await call(`${baseUrl}/api/v1/sessions/${session.sessionId}/end`, { method: 'POST', headers: origin })],
      ['404 session', await call(`${baseUrl}/api/v1/sessions/${randomUUID()}`, { headers: origin })],
      ['404 path', await call(`${baseUrl}/no/such/path`, { headers: origin })],
      [
        '415',
        await call(`${baseUrl}/api/v1/sessions`, {
          method: 'POST',
          headers: { ...origin, 'content-type': 'application/xml' },
          body: '<a/>',
        }),
      ],
    ];
    for (const [what, answer] of answers) assertAllowsOrigin(answer, elsewhere, what);
    assert.equal(answers[2][1].status, 201);

    const preflight = await call(`${baseUrl}/api/v1/sessions`, {
      method: 'OPTIONS',
      headers: {
        origin: elsewhere,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    assert.ok(preflight.status === 200 || preflight.status === 204, `preflight answered ${preflight.status}`);
    assertAllowsOrigin(preflight, elsewhere, 'preflight');
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /\bPOST\b/);
    const allowedHeaders = (preflight.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    assert.ok(
      allowedHeaders === '*' || (allowedHeaders.includes('authorization') && allowedHeaders.includes('content-type')),
      allowedHeaders,
    );

    const endPreflight = await call(`${baseUrl}/api/v1/sessions/${session.sessionId}/end`, {
      method: 'OPTIONS',
      headers: { origin: elsewhere, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    assert.ok(endPreflight.status === 200 || endPreflight.status === 204);
    assertAllowsOrigin(endPreflight, elsewhere, 'end preflight');
  });

  test('with CORS_ORIGINS set, allows the listed origin and not another', async (t) => {
    const { baseUrl } = await startApp(t, { CORS_ORIGINS: 'https://a.example' });
    for (const path of ['/health', '/api/v1/sessions/not-a-uuid']) {
      const allowed = await call(`${baseUrl}${path}`, { headers: { origin: 'https://a.example' } });
      assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://a.example', path);
      const refused = await call(`${baseUrl}${path}`, { headers: { origin: 'https://b.example' } });
      assert.equal(refused.headers.get('access-control-allow-origin'), null, path);
    }
    const preflight = (origin: string) =>
      call(`${baseUrl}/api/v1/sessions`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
    assert.equal((await preflight('https://a.example')).headers.get('access-control-allow-origin'), 'https://a.example');
    assert.equal((await preflight('https://b.example')).headers.get('access-control-allow-origin'), null);
  });

  test('every answer carries x-request-id, echoing the one the client sent', async (t) => {
    const { baseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const requests: Array<[string, RequestInit]> = [
      ['/health', {}],
      ['/api/v1/sessions', { method: 'POST' }],
      [`/api/v1/sessions/${session.sessionId}`, {}],
      [`/api/v1/sessions/${session.sessionId}/data`, {}],
      [`/api/v1/sessions/${session.sessionId}/end`, { method: 'POST' }],
      ['/api/v1/sessions/not-a-uuid', {}],
      ['/no/such/path', {}],
      ['/api/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }],
    ];
    const generated = new Set<string>();
    for (const [index, [path, init]] of requests.entries()) {
      const plain = await call(`${baseUrl}${path}`, init);
      const id = plain.headers.get('x-request-id');
      assert.ok(id, `${path}: x-request-id`);
      generated.add(id);
      // Ids are taken only of A-Z a-z 0-9 . _ : - (request-id.ts), so not the path itself.
      const traced = await call(`${baseUrl}${path}`, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), 'x-request-id': `trace-${index}` },
      });
      assert.equal(traced.headers.get('x-request-id'), `trace-${index}`, path);
    }
    assert.equal(generated.size, requests.length, 'generated ids are distinct');
  });
});
