/** `wavehouse demo ...` run as a child process on a fresh database and data directory, as the demo tests run it. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { type RunningCli, startCli } from './cli.ts';
import { connectorSettings } from './connectors.ts';
import { freshDatabase } from './database.ts';

export async function startDemoCommand(t: Pick<TestContext, 'after'>, args: string[]): Promise<{ cli: RunningCli; dataDir: string }> {
  const database = await freshDatabase();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'wavehouse-demo-'));
  t.after(async () => {
    await rm(dataDir, { recursive: true, force: true });
    await database.drop();
  });
  const env = { ...connectorSettings(), DATABASE_URL: database.url, WAVEHOUSE_DATA_DIR: dataDir, HOST: '127.0.0.1' };
  return { cli: startCli(t, ['demo', ...args], { env, timeoutMs: 80_000 }), dataDir };
}

/** The key the demo made: in a file only its owner reads, and nowhere in what the command printed. */
export async function demoKeyKeptSecret(cli: RunningCli, dataDir: string): Promise<string> {
  const keyFile = path.join(dataDir, 'demo-api-key');
  assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
  const key = (await readFile(keyFile, 'utf8')).trim();
  assert.ok(!cli.stdout().includes(key) && !cli.stderr().includes(key), 'the key is not printed');
  return key;
}

/** SIGINT ends the command with exit code 0, the service and the stand-in it printed closed. */
export async function assertStopsOnSigint(cli: RunningCli): Promise<void> {
  const service = /^service\s+(\S+)$/m.exec(cli.stdout())![1];
  const upstream = /^upstream\s+(\S+)/m.exec(cli.stdout())![1];
  cli.signal('SIGINT');
  const run = await cli.done;
  assert.equal(run.code, 0, run.stderr);
  for (const url of [service, upstream]) await assert.rejects(fetch(url), /fetch failed/, `${url} is closed`);
}
