/**
 * The client commands against a private server (AUTH_MODE=private), run as a child process:
 * the API key comes from $WAVEHOUSE_API_KEY or --api-key-file, never from an option that
 * takes the key itself; simulate, export and tail work with a key of the right role; every
 * refusal (no key, a wrong one, too little scope) is one line on stderr and exit code 1; and
 * tail outlives its first access token.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { Producer } from '../../src/sdk/producer.ts';
import type { Sample } from '../../src/sdk/types.ts';
import { bearer, call, createKey, privateMode } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { type Run, runCli, startCli } from '../support/cli.ts';
import { eventually } from '../support/eventually.ts';
import { expectedSample } from '../support/export-streams.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

function assertFailedWith(run: Run, pattern: RegExp, code = 1): void {
  assert.equal(run.code, code, `exit code; stderr: ${run.stderr}`);
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  assert.equal(lines.length, 1, `one line on stderr, got: ${run.stderr}`);
  assert.match(lines[0], /^wavehouse: /);
  assert.match(lines[0], pattern);
}

async function privateApp(t: TestContext, adjust?: Parameters<typeof startApp>[3]) {
  const running = await startApp(t, privateMode(), {}, adjust);
  const keyOf = async (role: string) => (await createKey(running.databaseUrl, { name: role, role, keyPrefix: null })).key;
  return { ...running, reader: await keyOf('reader'), writer: await keyOf('writer') };
}

async function keyFile(t: TestContext, key: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'wavehouse-cli-key-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'key');
  await writeFile(file, `${key}\n`);
  await chmod(file, 0o600);
  return file;
}

test('simulate with a writer key from the environment, export and tail with a reader key from a file', async (t) => {
  const { baseUrl, reader, writer } = await privateApp(t);
  const simulated = await runCli(t, ['simulate', '--url', baseUrl, '--rate', '200', '--duration', '1'], {
    env: { WAVEHOUSE_API_KEY: writer },
  });
  assert.equal(simulated.code, 0, simulated.stderr);
  assert.match(simulated.stdout, /session ended with 200 stored/);
  const sessionId = /^session\s+(\S+)$/m.exec(simulated.stdout)?.[1] ?? '';

  const readerFile = await keyFile(t, reader);
  const output = path.join(path.dirname(readerFile), 'session.csv');
  const exported = await runCli(t, ['export', sessionId, '-o', output, '--api-key-file', readerFile, '--url', baseUrl]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.equal((await readFile(output, 'utf8')).trimEnd().split('\n').length, 1 + 200);

  const tailed = await runCli(t, ['tail', sessionId, '--from-seq', '191', `--api-key-file=${readerFile}`, '--url', baseUrl]);
  assert.equal(tailed.code, 0, tailed.stderr);
  assert.deepEqual(
    tailed.stdout
      .trimEnd()
      .split('\n')
      .map((line) => (JSON.parse(line) as Sample).seq),
    Array.from({ length: 10 }, (_, i) => 191 + i),
  );

  // An existing session needs no key at all: its ingest token reads it and writes to it.
  const created = await call(`${baseUrl}/api/v1/sessions`, 'POST', bearer(writer), {});
  const into = await runCli(t, ['simulate', '--url', baseUrl, '--session', created.body.sessionId, '--rate', '100', '--duration', '0.5'], {
    env: { WAVEHOUSE_TOKEN: created.body.ingestToken },
  });
  assert.equal(into.code, 0, into.stderr);
  assert.match(into.stdout, /session ended with 50 stored/);
});

test('no key, a wrong key and too little scope are each one line and exit 1; --api-key is refused', async (t) => {
  const { baseUrl, reader, writer } = await privateApp(t);
  const created = await call(`${baseUrl}/api/v1/sessions`, 'POST', bearer(writer), {});
  const id: string = created.body.sessionId;
  const noKey = /refused the request \(401 missing_credential\): this server is private: set \$WAVEHOUSE_API_KEY/;
  assertFailedWith(await runCli(t, ['simulate', '--url', baseUrl, '--duration', '1']), noKey);
  assertFailedWith(await runCli(t, ['export', id, '-o', '-', '--format', 'csv', '--url', baseUrl]), noKey);
  assertFailedWith(await runCli(t, ['tail', id, '--url', baseUrl]), noKey);

  const wrongKey = { env: { WAVEHOUSE_API_KEY: `wh_${'A'.repeat(43)}` } };
  assertFailedWith(await runCli(t, ['tail', id, '--url', baseUrl], wrongKey), /401 invalid_credential\): the API key was not accepted/);
  const readerEnv = { env: { WAVEHOUSE_API_KEY: reader } };
  assertFailedWith(
    await runCli(t, ['simulate', '--url', baseUrl, '--duration', '1'], readerEnv),
    /403 insufficient_scope\): the credential lacks the scope/,
  );
  assertFailedWith(
    await runCli(t, ['tail', id, '--url', baseUrl], { env: { WAVEHOUSE_API_KEY: created.body.ingestToken } }),
    /does not hold an API key/,
  );
  assertFailedWith(
    await runCli(t, ['export', id, '--format', 'csv', '--api-key', reader, '--url', baseUrl]),
    /there is no --api-key: .*\(ps\).* set \$WAVEHOUSE_API_KEY or use --api-key-file/,
    2,
  );
  assertFailedWith(
    await runCli(t, ['tail', id, '--api-key-file', '/nonexistent/key', '--url', baseUrl]),
    /cannot read API key file .*: no such file/,
  );
  const other = await call(`${baseUrl}/api/v1/sessions`, 'POST', bearer(writer), {});
  const otherToken = { env: { WAVEHOUSE_TOKEN: other.body.ingestToken } };
  assertFailedWith(
    await runCli(t, ['simulate', '--url', baseUrl, '--session', id, '--duration', '1'], otherToken),
    /the ingest token given is not session \S+'s/,
  );
});

test('tail outlives its first access token: a reconnect long after it expired carries a fresh one', async (t) => {
  // Tokens live 2 s; the server accepts one for 5 s more (its clock tolerance).
  const { baseUrl, reader, writer } = await privateApp(t, (config) => {
    config.access.accessTokenTtlS = 2;
  });
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(baseUrl).port) });
  t.after(() => proxy.close());
  const created = await call(`${baseUrl}/api/v1/sessions`, 'POST', bearer(writer), {});
  const { sessionId, ingestToken } = created.body;
  const tail = startCli(t, ['tail', sessionId, '--url', `http://127.0.0.1:${proxy.port}`], { env: { WAVEHOUSE_API_KEY: reader } });
  await eventually(() => assert.match(tail.stderr(), /^tailing session \S+ from seq 0$/m), { timeoutMs: 15_000 });

  const producer = new Producer({ baseUrl, sessionId, token: ingestToken });
  t.after(() => producer.close());
  const sent = Array.from({ length: 100 }, (_, i) => expectedSample(i + 1));
  producer.push(sent.slice(0, 50));
  await eventually(() => assert.equal(tail.stdout().trimEnd().split('\n').length, 50), { timeoutMs: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 8_000));
  proxy.cut();
  proxy.restore();
  producer.push(sent.slice(50));
  await eventually(() => assert.equal(tail.stdout().trimEnd().split('\n').length, 100), { timeoutMs: 15_000 });
  await producer.end({ timeoutMs: 10_000 });

  const run = await tail.done;
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /connection lost/);
  assert.doesNotMatch(run.stderr, /refused|credential/);
  assert.deepEqual(
    run.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Sample),
    sent,
  );
});
