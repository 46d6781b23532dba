/**
 * `wavehouse connectors ...` run as a child process against the real server and the ThingSpeak
 * and Twelve Data stand-ins: each action over the REST API, an upstream's key taken from a file
 * or the environment and never printed, and every refusal one line with exit code 1 (2 for a
 * usage mistake).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { ThingSpeakStandIn } from '../../src/demo/thingspeak-stand-in.ts';
import { TwelveDataStandIn } from '../../src/demo/twelvedata-stand-in.ts';
import { createKey } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { type CliOptions, type Run, runCli } from '../support/cli.ts';
import { connectorSettings } from '../support/connectors.ts';
import { eventually } from '../support/eventually.ts';

function assertFailedWith(run: Run, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, `exit code; stderr: ${run.stderr}`);
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  assert.equal(lines.length, 1, `one line on stderr, got: ${run.stderr}`);
  assert.match(lines[0], pattern);
}

/** The app, an admin key, the upstream's key in a file only its owner reads, and the CLI run against them. */
async function setUp(t: TestContext, upstreamKey: string) {
  const { baseUrl, databaseUrl } = await startApp(t, connectorSettings());
  const admin = await createKey(databaseUrl, { name: 'admin', role: 'admin' });
  const dir = await mkdtemp(path.join(tmpdir(), 'wavehouse-connectors-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const keyFile = path.join(dir, 'upstream-key');
  await writeFile(keyFile, `${upstreamKey}\n`, { mode: 0o600 });
  const asAdmin = { env: { WAVEHOUSE_API_KEY: admin.key } };
  const cli = (args: string[], options: CliOptions = asAdmin) => runCli(t, ['connectors', ...args, '--url', baseUrl], options);
  return { databaseUrl, keyFile, asAdmin, cli };
}

test('connectors list, get, create, pause, resume and delete over the REST API', { timeout: 90_000 }, async (t) => {
  const standIn = await ThingSpeakStandIn.start();
  t.after(() => standIn.close());
  standIn.addChannel(31, ['Water Level (cm)', 'Flow (L/min)', null, null, null, null, null, null], 'SECRETREADKEY31');
  standIn.addEntries(31, 12);
  const { databaseUrl, keyFile: readKeyFile, asAdmin, cli } = await setUp(t, 'SECRETREADKEY31');
  const reader = await createKey(databaseUrl, { name: 'reader', role: 'reader' });

  const createArgs = ['create', '--name', 'river gauge', '--channel-id', '31', '--base-url', standIn.baseUrl, '--poll', '0.05'];
  const created = await cli([...createArgs, '--read-api-key-file', readKeyFile]);
  assert.equal(created.code, 0, created.stderr);
  const connector = JSON.parse(created.stdout);
  assert.deepEqual(connector.secrets, ['readApiKey']);
  assert.equal(connector.config.channelId, 31);
  assert.ok(!created.stdout.includes('SECRETREADKEY31'), 'the read key is not printed');

  // The key from the environment works the same; a wrong key fails that connector's polls.
  const fromEnv = await cli(['create', '--name', 'wrong key', '--channel-id', '31', '--base-url', standIn.baseUrl], {
    env: { ...asAdmin.env, WAVEHOUSE_READ_API_KEY: 'WRONGKEY' },
  });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  const wrong = JSON.parse(fromEnv.stdout);

  const polled = await eventually(
    async () => {
      const got = await cli(['get', connector.id]);
      assert.equal(got.code, 0, got.stderr);
      const answer = JSON.parse(got.stdout);
      assert.notEqual(answer.lastSuccessAt, null);
      assert.equal(answer.sessions.length, 1);
      return answer;
    },
    { timeoutMs: 15_000, intervalMs: 200 },
  );
  assert.equal(polled.state, 'running');
  await eventually(
    async () => {
      const listed = await cli(['list']);
      assert.equal(listed.code, 0, listed.stderr);
      const lines = listed.stdout.trimEnd().split('\n');
      assert.match(lines[0], /^id\s+state\s+last success\s+breaker\s+next poll\s+name \/ last error$/);
      assert.match(listed.stdout, new RegExp(`^${connector.id} running\\s+\\S+Z\\s+closed\\s+\\S+Z\\s+river gauge$`, 'm'));
      assert.match(listed.stdout, new RegExp(`^${wrong.id} failing .* wrong key: ThingSpeak refused the read \\(-1\\)`, 'm'));
    },
    { timeoutMs: 15_000, intervalMs: 200 },
  );
  const json = await cli(['list', '--json']);
  assert.deepEqual(
    JSON.parse(json.stdout)
      .connectors.map((c: { id: string }) => c.id)
      .sort(),
    [connector.id, wrong.id].sort(),
  );
  assert.ok(!json.stdout.includes('SECRETREADKEY31') && !json.stdout.includes('WRONGKEY'));

  const paused = await cli(['pause', connector.id]);
  assert.equal(JSON.parse(paused.stdout).state, 'paused');
  assert.equal(JSON.parse((await cli(['resume', connector.id])).stdout).state, 'running');
  const deleted = await cli(['delete', connector.id]);
  assert.equal(JSON.parse(deleted.stdout).id, connector.id);
  assertFailedWith(await cli(['get', connector.id]), 1, /^wavehouse: .*404 not_found/);

  const asReader = { env: { WAVEHOUSE_API_KEY: reader.key } };
  assert.equal((await cli(['list'], asReader)).code, 0);
  assertFailedWith(await cli(['pause', wrong.id], asReader), 1, /403 insufficient_scope/);
  assertFailedWith(await cli(['list'], { env: {} }), 1, /401 missing_credential/);
  assertFailedWith(await cli(['frobnicate']), 2, /expected one of list, get, create, pause, resume, delete/);
  assertFailedWith(await cli(['get']), 2, /expected one connector id/);
  assertFailedWith(await cli(['create', '--name', 'x']), 2, /--channel-id is required/);
  assertFailedWith(await cli(['create', '--name', 'x', '--channel-id', 'seven']), 2, /--channel-id: not a number/);
  assertFailedWith(await cli([...createArgs, '--read-api-key-file', '-', '--api-key-file', '-'], { env: {} }), 2, /cannot both read stdin/);
  assertFailedWith(await cli(['create', '--name', 'x', '--channel-id', '0', '--base-url', standIn.baseUrl]), 1, /400/);
});

test('connectors create --kind twelvedata: symbols, interval and credits, the API key from a file or the environment', {
  timeout: 90_000,
}, async (t) => {
  const standIn = await TwelveDataStandIn.start({ apiKey: 'TDSECRETKEY1' });
  t.after(() => standIn.close());
  const { keyFile, asAdmin, cli } = await setUp(t, 'TDSECRETKEY1');
  const createArgs = ['create', '--kind', 'twelvedata', '--name', 'prices', '--base-url', standIn.baseUrl, '--poll', '0.05'];

  const created = await cli([
    ...createArgs,
    '--symbols',
    'AAPL,EUR/USD',
    '--interval',
    '1min',
    '--credits-per-minute',
    '1000',
    '--credits-per-day',
    '100000',
    '--twelvedata-key-file',
    keyFile,
  ]);
  assert.equal(created.code, 0, created.stderr);
  assert.ok(!created.stdout.includes('TDSECRETKEY1') && !created.stderr.includes('TDSECRETKEY1'), 'the API key is not printed');
  const connector = JSON.parse(created.stdout);
  assert.equal(connector.kind, 'twelvedata');
  assert.deepEqual(connector.secrets, ['apiKey']);
  assert.deepEqual(connector.config, {
    baseUrl: standIn.baseUrl,
    symbols: ['AAPL', 'EUR/USD'],
    interval: '1min',
    creditsPerMinute: 1000,
    creditsPerDay: 100000,
  });
  const polled = await eventually(
    async () => {
      const answer = JSON.parse((await cli(['get', connector.id])).stdout);
      assert.notEqual(answer.lastSuccessAt, null);
      assert.equal(answer.sessions.length, 2);
      return answer;
    },
    { timeoutMs: 15_000, intervalMs: 200 },
  );
  assert.deepEqual(polled.sessions.map((s: { key: string }) => s.key).sort(), ['twelvedata/AAPL/1min', 'twelvedata/EUR/USD/1min']);
  assert.ok(standIn.requests.every((r) => r.url.includes('apikey=TDSECRETKEY1')));

  // From the environment, with the defaults: a wrong key fails that connector's polls, its message without the key.
  const fromEnv = await cli([...createArgs, '--symbols', 'BTC/USD'], {
    env: { ...asAdmin.env, WAVEHOUSE_TWELVEDATA_API_KEY: 'WRONGTDKEY' },
  });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  const wrong = JSON.parse(fromEnv.stdout);
  assert.deepEqual(wrong.config, { baseUrl: standIn.baseUrl, symbols: ['BTC/USD'], interval: '1min' });
  await eventually(
    async () => {
      const listed = await cli(['list']);
      assert.match(listed.stdout, new RegExp(`^${wrong.id} failing .* prices: Twelve Data answered 401`, 'm'));
      assert.ok(!listed.stdout.includes('WRONGTDKEY'));
    },
    { timeoutMs: 15_000, intervalMs: 200 },
  );

  const noKey = { env: asAdmin.env };
  assertFailedWith(
    await cli([...createArgs, '--symbols', 'AAPL'], noKey),
    2,
    /needs --twelvedata-key-file or \$WAVEHOUSE_TWELVEDATA_API_KEY/,
  );
  assertFailedWith(await cli([...createArgs, '--twelvedata-key-file', keyFile]), 2, /--symbols is required/);
  assertFailedWith(
    await cli([...createArgs, '--symbols', 'AAPL', '--interval', '3min', '--twelvedata-key-file', keyFile]),
    2,
    /--interval: expected one of 1min/,
  );
  assertFailedWith(
    await cli([...createArgs, '--symbols', 'AAPL', '--channel-id', '3']),
    2,
    /--channel-id does not apply to --kind twelvedata/,
  );
  assertFailedWith(await cli(['create', '--kind', 'yahoo', '--name', 'x']), 2, /--kind: expected thingspeak or twelvedata/);
  assertFailedWith(
    await cli([...createArgs, '--symbols', 'AAPL', '--credits-per-minute', 'lots', '--twelvedata-key-file', keyFile]),
    2,
    /--credits-per-minute: not a number/,
  );
  assertFailedWith(
    await cli([...createArgs, '--symbols', 'AAPL', '--twelvedata-key-file', '-', '--api-key-file', '-'], { env: {} }),
    2,
    /cannot both read stdin/,
  );
  assertFailedWith(await cli([...createArgs, '--symbols', 'AAPL;rm', '--twelvedata-key-file', keyFile]), 1, /400/);
});
