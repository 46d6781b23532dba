/**
 * `wavehouse keys create`, run as a child process against a real database: the key on the
 * last line of stdout is one the service then accepts, and a bad request is a usage error.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { bearer, privateMode } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { runCli } from '../support/cli.ts';
import { freshDatabase } from '../support/database.ts';

async function database(t: Pick<TestContext, 'after'>): Promise<string> {
  const fresh = await freshDatabase();
  t.after(() => fresh.drop());
  return fresh.url;
}

test('keys create prints a key on the last line that the service accepts as an admin', async (t) => {
  const databaseUrl = await database(t);
  const run = await runCli(t, ['keys', 'create', '--role', 'admin', '--name', 'first admin'], { env: { DATABASE_URL: databaseUrl } });
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trimEnd().split('\n');
  const key = lines[lines.length - 1];
  assert.match(key, /^wh_[A-Za-z0-9_-]{43}$/);

  const { baseUrl } = await startApp(t, { ...privateMode(), DATABASE_URL: databaseUrl });
  const listed = await fetch(`${baseUrl}/api/v1/keys`, { headers: bearer(key) });
  assert.equal(listed.status, 200);
  const { keys } = (await listed.json()) as { keys: { name: string; scopes: string[]; createdBy: string }[] };
  assert.deepEqual(
    keys.map(({ name, scopes, createdBy }) => ({ name, scopes, createdBy })),
    [{ name: 'first admin', scopes: ['sessions:read', 'sessions:write', 'connectors:write', 'admin'], createdBy: 'cli' }],
  );
  const audit = (await (await fetch(`${baseUrl}/api/v1/audit?action=key.create`, { headers: bearer(key) })).json()) as {
    entries: { actor: string }[];
  };
  assert.deepEqual(
    audit.entries.map((entry) => entry.actor),
    ['cli'],
  );
});

test('keys create with scopes instead of a role; a bad request is a usage error (exit 2) and makes no key', async (t) => {
  const databaseUrl = await database(t);
  const scoped = await runCli(t, ['keys', 'create', '--name', 'ci', '--scope', 'sessions:read', '--scope', 'sessions:write'], {
    env: { DATABASE_URL: databaseUrl },
  });
  assert.equal(scoped.code, 0, scoped.stderr);
  assert.match(scoped.stdout, /with sessions:read sessions:write/);
  for (const args of [
    ['keys', 'create', '--role', 'admin'],
    ['keys', 'create', '--name', 'x', '--role', 'owner'],
    ['keys', 'create', '--name', 'x', '--role', 'admin', '--scope', 'admin'],
    ['keys', 'create', '--name', 'x', '--role', 'admin', '--expires-at', 'soon'],
    ['keys', 'list'],
  ]) {
    const run = await runCli(t, args, { env: { DATABASE_URL: databaseUrl } });
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, /^wavehouse: /);
  }
});
