/**
 * Twelve Data connectors against the stand-in (src/demo/twelvedata-stand-in.ts) on the wall
 * clock: a stream per symbol holding every closed bar once, through overlapping polls and a
 * restart; errors in 200 bodies shown as failing; the credit budget kept across a restart; and
 * the API key never answered, stored in clear or logged.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import pg from 'pg';
import { type App, buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { type StandInBar, TwelveDataStandIn, type TwelveDataStandInOptions } from '../../src/demo/twelvedata-stand-in.ts';
import { bearer, call, createKey } from '../support/access.ts';
import { connectorSettings, metricsText } from '../support/connectors.ts';
import { freshDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { logLines } from '../support/log-lines.ts';

const apiKey = 'TDKEY-secret-4711';

/** An app on a database of its own, which `restart` closes and builds again on the same database and settings. */
async function setUp(t: Pick<TestContext, 'after'>, standIn: Partial<TwelveDataStandInOptions> = {}) {
  const upstream = await TwelveDataStandIn.start({ apiKey, ...standIn });
  const database = await freshDatabase();
  const { lines, log } = logLines();
  const config = () => loadConfig({ LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: '0', DATABASE_URL: database.url, ...settings });
  const settings = connectorSettings();
  let app: App = await buildApp(config(), { log });
  const running = { upstream, lines, databaseUrl: database.url, baseUrl: await app.listen(), key: '' };
  t.after(async () => {
    await app.close();
    await upstream.close();
    await database.drop();
  });
  running.key = (await createKey(database.url, { name: 'admin', role: 'admin' })).key;
  const restart = async () => {
    await app.close();
    app = await buildApp(config(), { log });
    running.baseUrl = await app.listen();
  };
  return { running, restart };
}

async function createConnector(baseUrl: string, key: string, config: Record<string, unknown>): Promise<string> {
  const created = await call(`${baseUrl}/api/v1/connectors`, 'POST', bearer(key), {
    kind: 'twelvedata',
    name: 'prices',
    config,
    pollIntervalS: 0.05,
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id;
}

type Sample = Record<string, number | null>;

async function streams(baseUrl: string, key: string, id: string): Promise<Map<string, Sample[]>> {
  const { body } = await call(`${baseUrl}/api/v1/connectors/${id}`, 'GET', bearer(key));
  const found = new Map<string, Sample[]>();
  for (const stream of body.sessions as Array<{ key: string; sessionId: string }>) {
    found.set(stream.key, (await call(`${baseUrl}/api/v1/sessions/${stream.sessionId}/data`, 'GET', bearer(key))).body.samples);
  }
  return found;
}

const asSample = (bar: StandInBar): Sample => ({
  seq: bar.startMs / 1_000,
  t: bar.startMs,
  open: Number(bar.open),
  high: Number(bar.high),
  low: Number(bar.low),
  close: Number(bar.close),
  volume: Number(bar.volume),
});

test('stores every closed bar of each symbol once, through overlapping polls and a restart', { timeout: 120_000 }, async (t) => {
  const { running, restart } = await setUp(t);
  const config = {
    baseUrl: running.upstream.baseUrl,
    symbols: ['AAPL', 'EUR/USD'],
    interval: '1min',
    creditsPerMinute: 6_000,
    creditsPerDay: 1e6,
  };
  const id = await createConnector(running.baseUrl, running.key, { ...config, apiKey });
  const first = await eventually(
    async () => {
      const found = await streams(running.baseUrl, running.key, id);
      assert.deepEqual([...found.keys()].sort(), ['twelvedata/AAPL/1min', 'twelvedata/EUR/USD/1min']);
      for (const samples of found.values()) assert.ok(samples.length >= 29, `${samples.length} bars`);
      return found;
    },
    { timeoutMs: 15_000 },
  );
  await restart();
  // A bar that closes after the restart is read by the new instance.
  const lastBefore = Math.max(...[...first.values()].map((samples) => samples.at(-1)?.seq ?? 0));
  const after = await eventually(
    async () => {
      const found = await streams(running.baseUrl, running.key, id);
      for (const samples of found.values()) assert.ok((samples.at(-1)?.seq ?? 0) > lastBefore);
      return found;
    },
    { timeoutMs: 75_000, intervalMs: 500 },
  );
  const nowMs = Date.now();
  for (const [key, samples] of after) {
    const symbol = key.split('/').slice(1, -1).join('/');
    // Every bar from the first stored on, each once, closed, with the upstream's values: none missing, none twice.
    assert.deepEqual(
      samples,
      running.upstream.bars(symbol, samples[0].t as number, ((samples.at(-1)?.t as number) ?? 0) + 1).map(asSample),
    );
    assert.ok(((samples.at(-1)?.seq as number) + 60) * 1_000 <= nowMs, 'no bar under way');
    assert.ok((samples[0].seq as number) * 1_000 >= nowMs - 120 * 60_000);
  }
  const { body } = await call(`${running.baseUrl}/api/v1/connectors/${id}`, 'GET', bearer(running.key));
  assert.equal(body.state, 'running');
  assert.deepEqual(body.config, config);
  assert.deepEqual(body.secrets, ['apiKey']);
  assert.ok(body.credits.spentToday >= 4);
  assert.ok(!JSON.stringify(body).includes(apiKey));
  assert.ok(running.lines.every((line) => !line.includes(apiKey)));
});

test('is failing with the upstream error of a 200 body, the key cut from it, and never logs the key', async (t) => {
  const { running } = await setUp(t);
  running.upstream.fail(...Array(4).fill('badKey'));
  const id = await createConnector(running.baseUrl, running.key, {
    baseUrl: running.upstream.baseUrl,
    apiKey,
    symbols: ['BTC/USD'],
    interval: '1min',
    creditsPerMinute: 6_000,
    creditsPerDay: 1_000_000,
  });
  const get = () => call(`${running.baseUrl}/api/v1/connectors/${id}`, 'GET', bearer(running.key));
  const failing = await eventually(async () => {
    const { body } = await get();
    assert.equal(body.state, 'failing');
    return body;
  });
  assert.equal(failing.lastError, 'Twelve Data answered 401: apikey [redacted] is not valid');
  await eventually(async () => assert.equal((await get()).body.state, 'running'), { timeoutMs: 10_000 });
  running.upstream.fail('error429');
  const limited = await eventually(async () => {
    const { body } = await get();
    assert.equal(body.state, 'failing');
    return body;
  });
  assert.match(limited.lastError, /^Twelve Data answered 429: You have run out of API credits/);
  // Twelve Data's minute credits come back on the minute: the next poll is not before it.
  assert.ok(Date.parse(limited.nextPollAt) >= Math.ceil(Date.parse(limited.lastPollAt) / 60_000) * 60_000 - 1_000);
  const client = new pg.Client({ connectionString: running.databaseUrl });
  await client.connect();
  const { rows } = await client.query('SELECT config::text || encode(secrets, $1) AS stored FROM connectors', ['escape']);
  await client.end();
  assert.ok(!rows[0].stored.includes(apiKey));
  assert.ok(running.lines.some((line) => line.includes('[redacted]')));
  for (const line of running.lines) assert.ok(!line.includes(apiKey), line);
});

test('never spends more credits than its budget in any 60 s, across a restart', { timeout: 60_000 }, async (t) => {
  // The stand-in keeps the same budget, and would answer a 429 (failing) to a request over it.
  const { running, restart } = await setUp(t, { creditsPerMinute: 3 });
  const symbols = ['AAPL', 'EUR/USD'];
  const id = await createConnector(running.baseUrl, running.key, {
    baseUrl: running.upstream.baseUrl,
    apiKey,
    symbols,
    interval: '1min',
    creditsPerMinute: 3,
    creditsPerDay: 1_000_000,
  });
  await eventually(() => assert.equal(running.upstream.requests.length, 2));
  // The instance taking the connector up polls at once: only the budget left of this minute stops it.
  await restart();
  const get = () => call(`${running.baseUrl}/api/v1/connectors/${id}`, 'GET', bearer(running.key));
  const stopped = await eventually(async () => {
    assert.match(await metricsText(running.baseUrl), /wavehouse_connector_polls_total\{kind="twelvedata",outcome="out_of_credits"\} 1/);
    return (await get()).body;
  });
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const { requests } = running.upstream;
  assert.equal(requests.length, 3);
  assert.ok(requests.every((request) => request.atMs - requests[0].atMs < 60_000));
  assert.equal(stopped.state, 'running');
  assert.equal(stopped.lastError, null);
  assert.deepEqual(stopped.credits, { perMinute: 3, perDay: 1_000_000, spentLastMinute: 3, spentToday: 3 });
  assert.ok(Date.parse(stopped.nextPollAt) >= requests[0].atMs + 60_000 - 50, `${stopped.nextPollAt} ${requests[0].atMs}`);
});

test('refuses a config that is not a Twelve Data one with a 400 that says why', async (t) => {
  const { running } = await setUp(t);
  const valid = { baseUrl: 'http://127.0.0.1:1', apiKey, symbols: ['AAPL'], interval: '1min' };
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...valid, interval: '3min' }, /interval/],
    [{ ...valid, interval: '1week' }, /interval/],
    [{ ...valid, symbols: [] }, /symbols/],
    [{ ...valid, symbols: ['AAPL', 'AAPL'] }, /symbols/],
    [{ ...valid, symbols: ['A&B'] }, /symbols/],
    [{ ...valid, apiKey: 'a"b' }, /apiKey/],
    [{ ...valid, creditsPerMinute: 0 }, /creditsPerMinute/],
    [{ ...valid, creditsPerDay: 1.5 }, /creditsPerDay/],
    [{ baseUrl: valid.baseUrl, symbols: ['AAPL'], interval: '1min' }, /apiKey/],
  ];
  for (const [config, reason] of cases) {
    const answer = await call(`${running.baseUrl}/api/v1/connectors`, 'POST', bearer(running.key), {
      kind: 'twelvedata',
      name: 'n',
      config,
    });
    assert.equal(answer.status, 400, JSON.stringify(config));
    assert.equal(answer.body.code, 'invalid_request');
    assert.match(answer.body.detail, reason, answer.body.detail);
  }
});
