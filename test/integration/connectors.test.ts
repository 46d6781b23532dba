/**
 * ThingSpeak connectors against a real local stand-in: every upstream entry stored exactly
 * once through whatever the upstream does, failures visible in status and metrics, a stream
 * whose session is deleted started over, and the read key never answered, stored in clear or logged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { type Fault, ThingSpeakStandIn } from '../../src/demo/thingspeak-stand-in.ts';
import { assertProblem, bearer, call, createKey } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { connectorSettings, createThingSpeakConnector, expectedSamples, metricsText, storedSamples } from '../support/connectors.ts';
import { eventually } from '../support/eventually.ts';

const fields = ['Water Level (cm)', 'Flow', 'Temp °C', null, null, null, null, null];
const channels = ['Water_Level_cm', 'Flow', 'Temp_C'];

async function setUp(t: Parameters<typeof startApp>[0], env: Record<string, string> = {}) {
  const standIn = await ThingSpeakStandIn.start();
  t.after(() => standIn.close());
  const running = await startApp(t, connectorSettings(env));
  const admin = await createKey(running.databaseUrl, { name: 'admin', role: 'admin' });
  return { standIn, ...running, key: admin.key };
}

describe('a ThingSpeak connector', () => {
  test('a key with a keyPrefix sees and changes only the connectors whose streams are under it', async (t) => {
    const { standIn, baseUrl, databaseUrl, key } = await setUp(t);
    for (const channel of [1, 2]) standIn.addChannel(channel, fields);
    const own = await createThingSpeakConnector(baseUrl, key, { baseUrl: standIn.baseUrl, channelId: 1 }, 60);
    const foreign = await createThingSpeakConnector(baseUrl, key, { baseUrl: standIn.baseUrl, channelId: 2 }, 60);
    const tenant = await createKey(databaseUrl, {
      name: 'tenant',
      scopes: ['sessions:read', 'connectors:write'],
      keyPrefix: 'thingspeak/1',
    });
    const as = bearer(tenant.key);
    const url = `${baseUrl}/api/v1/connectors`;
    const listed = await call(url, 'GET', as);
    assert.deepEqual(
      listed.body.connectors.map((connector: { id: string }) => connector.id),
      [own.id],
    );
    assert.equal((await call(`${url}/${own.id}`, 'GET', as)).status, 200);
    for (const [path, method] of [
      [foreign.id, 'GET'],
      [`${foreign.id}/pause`, 'POST'],
      [foreign.id, 'DELETE'],
    ] as const) {
      assertProblem(await call(`${url}/${path}`, method, as), 404, 'not_found');
    }
    assert.equal((await call(`${url}/${foreign.id}`, 'GET', bearer(key))).body.state, 'running', 'neither paused nor deleted');
    const outside = await call(url, 'POST', as, { kind: 'thingspeak', name: 'x', config: { baseUrl: standIn.baseUrl, channelId: 3 } });
    assertProblem(outside, 403, 'outside_key_prefix');
  });

  test('stores every entry exactly once through pages, faults, duplicates and new entries', async (t) => {
    const { standIn, baseUrl, key } = await setUp(t);
    standIn.addChannel(7, fields, 'READKEY123');
    standIn.addEntries(7, 37);
    // A page of 10 against 37 entries: the window is narrowed and read in several pages.
    const connector = await createThingSpeakConnector(baseUrl, key, {
      baseUrl: standIn.baseUrl,
      channelId: 7,
      readApiKey: 'READKEY123',
      pageSize: 10,
    });
    await eventually(async () => assert.equal((await storedSamples(baseUrl, key, connector)).length, 37), { timeoutMs: 15_000 });
    const faults: Fault[] = [
      'status500',
      'hang',
      'slowBody',
      'html',
      'minusOne',
      'zero',
      'malformed',
      'truncated',
      'huge',
      'redirectElsewhere',
    ];
    for (const fault of faults) {
      standIn.fail(fault, fault);
      standIn.addEntries(7, 4);
      await eventually(() => assert.equal(standIn.pendingFaults, 0), { timeoutMs: 10_000 });
    }
    standIn.fail('redirectHere', 'shuffledDuplicates', 'status429');
    standIn.addEntries(7, 5);
    const last = 37 + faults.length * 4 + 5;
    await eventually(async () => assert.equal((await storedSamples(baseUrl, key, connector)).length, last), { timeoutMs: 15_000 });
    assert.deepEqual(await storedSamples(baseUrl, key, connector), expectedSamples(last, channels));
    const status = await eventually(async () => {
      const answer = await connector.get();
      assert.equal(answer.body.state, 'running');
      return answer.body;
    });
    assert.equal(status.lastError, null);
    assert.equal(status.lastRecordAt, new Date(Date.UTC(2024, 4, 1, 10, 0, 0) + last * 1_000).toISOString());
    assert.deepEqual(
      status.sessions[0].mapping.map((m: { channel: string; field: string }) => `${m.field}:${m.channel}`),
      ['field1:Water_Level_cm', 'field2:Flow', 'field3:Temp_C'],
    );
    const metrics = await metricsText(baseUrl);
    assert.match(metrics, /wavehouse_connector_polls_total\{kind="thingspeak",outcome="failed"\} [1-9]/);
    assert.match(metrics, new RegExp(`wavehouse_connector_records_total\\{kind="thingspeak"\\} ${last}\\b`));
    assert.match(metrics, /wavehouse_connector_upstream_duration_seconds_count\{kind="thingspeak"\} [1-9]/);
    assert.ok(standIn.requests.every((url) => url.includes('api_key=READKEY123')));
  });

  test('is failing with the reason while the upstream fails, and running again once it answers', async (t) => {
    const { standIn, baseUrl, key } = await setUp(t);
    standIn.addChannel(8, fields);
    standIn.addEntries(8, 3);
    standIn.fail(...Array<Fault>(40).fill('status500'));
    const connector = await createThingSpeakConnector(baseUrl, key, { baseUrl: standIn.baseUrl, channelId: 8 });
    const failing = await eventually(async () => {
      const { body } = await connector.get();
      assert.equal(body.state, 'failing');
      return body;
    });
    assert.match(failing.lastError, /answered 500/);
    assert.ok(failing.failingSince !== null && failing.lastSuccessAt === null);
    await eventually(async () => assert.equal((await connector.get()).body.state, 'running'), { timeoutMs: 15_000 });
    assert.equal((await storedSamples(baseUrl, key, connector)).length, 3);
  });

  test('says the breaker is open, and since when, while the upstream host is down', async (t) => {
    const { standIn, baseUrl, key } = await setUp(t, { CONNECTOR_BREAKER_FAILURES: '2', CONNECTOR_BREAKER_HALF_OPEN_MS: '300' });
    standIn.addChannel(9, fields);
    standIn.addEntries(9, 2);
    standIn.fail(...Array<Fault>(6).fill('status500'));
    const connector = await createThingSpeakConnector(baseUrl, key, { baseUrl: standIn.baseUrl, channelId: 9 });
    const open = await eventually(async () => {
      const { body } = await connector.get();
      assert.equal(body.breaker, 'open');
      return body;
    });
    assert.equal(open.state, 'failing');
    assert.ok(open.breakerOpenSince !== null);
    await eventually(async () =>
      assert.match(await metricsText(baseUrl), /wavehouse_connector_polls_total\{kind="thingspeak",outcome="breaker_open"\} [1-9]/),
    );
    await eventually(async () => assert.equal((await connector.get()).body.breaker, 'closed'), { timeoutMs: 15_000 });
    assert.equal((await storedSamples(baseUrl, key, connector)).length, 2);
  });

  test('stores a value that is not a number as null, and counts it', async (t) => {
    const { standIn, baseUrl, key } = await setUp(t);
    standIn.addChannel(10, fields);
    standIn.addEntries(10, 2);
    standIn.fail('wrongTypes');
    const connector = await createThingSpeakConnector(baseUrl, key, { baseUrl: standIn.baseUrl, channelId: 10 });
    const samples = await eventually(async () => {
      const stored = await storedSamples(baseUrl, key, connector);
      assert.equal(stored.length, 2);
      return stored;
    });
    assert.deepEqual(
      samples.map((s) => [s.Water_Level_cm, s.Temp_C]),
      [
        [null, null],
        [null, null],
      ],
    );
    assert.match(await metricsText(baseUrl), /wavehouse_connector_discards_total\{kind="thingspeak",what="invalid_value"\} 4/);
  });

  test('starts a stream over under its key once its session is deleted', async (t) => {
    const { standIn, baseUrl, key } = await setUp(t);
    standIn.addChannel(11, fields);
    standIn.addEntries(11, 3);
    const connector = await createThingSpeakConnector(baseUrl, key, { baseUrl: standIn.baseUrl, channelId: 11 });
    await eventually(async () => assert.equal((await storedSamples(baseUrl, key, connector)).length, 3));
    const first = (await connector.get()).body.sessions[0];
    assert.equal((await call(`${baseUrl}/api/v1/sessions/${first.sessionId}`, 'DELETE', bearer(key))).status, 200);
    const fresh = await eventually(async () => {
      const [stream] = (await connector.get()).body.sessions;
      assert.notEqual(stream.sessionId, first.sessionId);
      assert.deepEqual(await storedSamples(baseUrl, key, connector), expectedSamples(3, channels));
      return stream;
    });
    assert.equal(fresh.key, first.key);
    assert.equal((await connector.get()).body.lastError, null);
  });
});

describe('the connectors API', () => {
  test('creates, lists, pauses, resumes and deletes, never answering or storing the read key in clear', async (t) => {
    const { standIn, baseUrl, key, databaseUrl } = await setUp(t);
    standIn.addChannel(11, fields, 'SECRETKEY99');
    standIn.addEntries(11, 1);
    const connector = await createThingSpeakConnector(baseUrl, key, { baseUrl: standIn.baseUrl, channelId: 11, readApiKey: 'SECRETKEY99' });
    const listed = await call(`${baseUrl}/api/v1/connectors`, 'GET', bearer(key));
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.connectors[0].config, { baseUrl: standIn.baseUrl, channelId: 11 });
    assert.deepEqual(listed.body.connectors[0].secrets, ['readApiKey']);
    assert.ok(!JSON.stringify(listed.body).includes('SECRETKEY99'));
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const { rows } = await client.query('SELECT config::text || encode(secrets, $1) AS stored, secrets FROM connectors', ['escape']);
    await client.end();
    assert.ok(!rows[0].stored.includes('SECRETKEY99') && !rows[0].secrets.includes(Buffer.from('SECRETKEY99')));
    await eventually(async () => assert.equal((await storedSamples(baseUrl, key, connector)).length, 1));

    const paused = await call(`${baseUrl}/api/v1/connectors/${connector.id}/pause`, 'POST', bearer(key));
    assert.equal(paused.body.state, 'paused');
    assert.equal(paused.body.nextPollAt, null);
    await eventually(async () => {
      const seen = standIn.requests.length;
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(standIn.requests.length, seen);
    });
    standIn.addEntries(11, 2);
    assert.equal((await call(`${baseUrl}/api/v1/connectors/${connector.id}/resume`, 'POST', bearer(key))).body.state, 'running');
    await eventually(async () => assert.equal((await storedSamples(baseUrl, key, connector)).length, 3));

    assert.equal((await call(`${baseUrl}/api/v1/connectors/${connector.id}`, 'DELETE', bearer(key))).status, 200);
    assert.equal((await connector.get()).status, 404);
    const audit = await eventually(async () => {
      const answer = await call(`${baseUrl}/api/v1/audit`, 'GET', bearer(key));
      const actions = answer.body.entries.map((e: { action: string }) => e.action);
      assert.ok(actions.includes('connector.delete'), actions.join());
      return actions;
    });
    assert.ok(audit.includes('connector.create') && audit.includes('connector.update'));
  });

  test('answers bad, hostile and unauthorized requests with problem+json', async (t) => {
    const { baseUrl, key, databaseUrl } = await setUp(t);
    const reader = await createKey(databaseUrl, { name: 'reader', role: 'reader' });
    const url = `${baseUrl}/api/v1/connectors`;
    const valid = { kind: 'thingspeak', name: 'n', config: { baseUrl: 'http://127.0.0.1:1', channelId: 1 } };
    const cases: Array<[Record<string, string>, unknown, number, string]> = [
      [{}, valid, 401, 'missing_credential'],
      [bearer(reader.key), valid, 403, 'insufficient_scope'],
      [bearer(key), { ...valid, kind: 'twelvedata' }, 400, 'invalid_request'],
      [bearer(key), { ...valid, config: { ...valid.config, extra: 1 } }, 400, 'invalid_request'],
      [bearer(key), { ...valid, config: { baseUrl: 'file:///etc/passwd', channelId: 1 } }, 400, 'invalid_request'],
      [bearer(key), { ...valid, config: { baseUrl: 'http://x', channelId: -1 } }, 400, 'invalid_request'],
      [bearer(key), { ...valid, config: { ...valid.config, readApiKey: 'a"b' } }, 400, 'invalid_request'],
      [bearer(key), { ...valid, name: 'n'.repeat(201) }, 400, 'invalid_request'],
      [bearer(key), { ...valid, pollIntervalS: 0.001 }, 400, 'invalid_request'],
      [bearer(key), { ...valid, name: 'x'.repeat(70_000) }, 413, 'payload_too_large'],
    ];
    for (const [headers, body, status, code] of cases) {
      const answer = await call(url, 'POST', headers, body);
      assert.equal(answer.status, status, `${JSON.stringify(body).slice(0, 100)}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.code, code);
    }
    for (const path of ['not-a-uuid', crypto.randomUUID(), `${crypto.randomUUID()}/pause`]) {
      const method = path.endsWith('pause') ? 'POST' : 'GET';
      assert.equal((await call(`${url}/${path}`, method, bearer(key))).body.code, 'not_found');
    }
  });

  test('refuses a read key on a server without CONNECTOR_SECRET_KEY', async (t) => {
    const { baseUrl, key } = await setUp(t, { CONNECTOR_SECRET_KEY: '' });
    const answer = await call(`${baseUrl}/api/v1/connectors`, 'POST', bearer(key), {
      kind: 'thingspeak',
      name: 'n',
      config: { baseUrl: 'http://127.0.0.1:1', channelId: 1, readApiKey: 'ABC' },
    });
    assert.equal(answer.status, 501);
    assert.equal(answer.body.code, 'connector_secrets_off');
  });
});
