import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pollUntil, within } from '../../src/deadlines.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/storage/embedded-postgres.ts';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const fixture = fileURLToPath(new URL('../fixtures/embedded-child.ts', import.meta.url));

const root = await mkdtemp(path.join(os.tmpdir(), 'wavehouse-embedded-pg-'));
// mkdtemp creates 0700; as root the server runs as OS user "postgres", which must enter it.
await chmod(root, 0o755);

const warnings: string[] = [];
const log = {
  info: () => undefined,
  warn: (obj: object, msg?: string) => void warnings.push(`${msg ?? ''} ${JSON.stringify(obj)}`),
};

const databases: EmbeddedDatabase[] = [];
const children: ChildProcess[] = [];
const pgDirs: string[] = [];

async function start(dataDir: string): Promise<EmbeddedDatabase> {
  pgDirs.push(path.join(dataDir, 'pg'));
  const db = await startEmbeddedPostgres({ dataDir, log });
  databases.push(db);
  return db;
}

after(async () => {
  for (const db of databases) await db.stop().catch(() => undefined);
  for (const child of children) child.kill('SIGKILL');
  // A failed recovery test must not leave a postgres running after the suite.
  for (const pgDir of pgDirs) {
    const pid = await postmasterPid(pgDir);
    if (pid !== undefined && (await isPostgres(pid))) process.kill(pid, 'SIGKILL');
  }
  await rm(root, { recursive: true, force: true });
});

test('starts, answers queries, and keeps data across a stop and a start', { timeout: 60_000 }, async () => {
  const dataDir = path.join(root, 'persist');
  const first = await start(dataDir);
  const url = new URL(first.url);
  assert.equal(url.hostname, '127.0.0.1');
  assert.notEqual(url.port, '5432');
  assert.equal(url.pathname, '/wavehouse');

  assert.deepEqual(await query(first.url, 'SELECT 1 AS one'), [{ one: 1 }]);
  await query(first.url, 'CREATE TABLE readings (id int PRIMARY KEY, value float8 NOT NULL)');
  await query(first.url, 'INSERT INTO readings VALUES (1, 0.5), (2, 1.5)');
  await first.stop();
  assert.equal(await postmasterPid(path.join(dataDir, 'pg')), undefined, 'a clean stop removes postmaster.pid');

  const second = await start(dataDir);
  assert.deepEqual(await query(second.url, 'SELECT id, value FROM readings ORDER BY id'), [
    { id: 1, value: 0.5 },
    { id: 2, value: 1.5 },
  ]);
  await second.stop();
  assert.deepEqual(warnings, []);
});

test('creates its cluster under a 077 umask, as "postgres" when root, leaving its password only in pg-password', {
  timeout: 60_000,
}, async () => {
  const dataDir = path.join(root, 'umask');
  // Under such a umask, a file or directory made for the server with default modes would lock it out.
  const saved = process.umask(0o077);
  const db = await start(dataDir).finally(() => process.umask(saved));
  assert.deepEqual(await query(db.url, 'SELECT 1 AS one'), [{ one: 1 }]);
  await db.stop();

  assert.deepEqual((await readdir(dataDir)).sort(), ['pg', 'pg-owner.pid', 'pg-password']);
  assert.equal((await stat(path.join(dataDir, 'pg-password'))).mode & 0o777, 0o600);
  if (process.getuid?.() === 0) {
    const postgresUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    assert.equal((await stat(path.join(dataDir, 'pg'))).uid, postgresUid);
  }
});

test('a cluster that cannot start fails with its log, leaves nothing running, and starts once mended', { timeout: 90_000 }, async () => {
  const dataDir = path.join(root, 'broken');
  const pgDir = path.join(dataDir, 'pg');
  const first = await start(dataDir);
  await query(first.url, 'CREATE TABLE readings (id int PRIMARY KEY)');
  await query(first.url, 'INSERT INTO readings VALUES (3)');
  await first.stop();

  // Without its control file postgres exits at once, saying why.
  const control = path.join(pgDir, 'global', 'pg_control');
  await rename(control, `${control}.aside`);
  await assert.rejects(startEmbeddedPostgres({ dataDir, log }), (error: Error) => {
    assert.match(error.message, /^PostgreSQL failed to start in /);
    assert.match(error.message, /pg_control/, 'the log tail says why');
    return true;
  });
  const pid = await postmasterPid(pgDir);
  assert.ok(pid === undefined || !(await isPostgres(pid)), 'no postgres is left running');

  // The failed start released the directory: mended, it starts in the same process.
  await rename(`${control}.aside`, control);
  const mended = await start(dataDir);
  assert.deepEqual(await query(mended.url, 'SELECT id FROM readings'), [{ id: 3 }]);
  await mended.stop();
});

test('takes over the directory after its owner was SIGKILLed', { timeout: 120_000 }, async () => {
  const dataDir = path.join(root, 'orphan');
  const pgDir = path.join(dataDir, 'pg');
  pgDirs.push(pgDir);
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dataDir], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const childUrl = await readUrl(child, 60_000);
  await query(childUrl, 'CREATE TABLE readings (id int PRIMARY KEY, value float8 NOT NULL)');
  await query(childUrl, 'INSERT INTO readings VALUES (7, 2.5)');

  // While its owner lives, the server is not an orphan and must be left alone.
  await assert.rejects(startEmbeddedPostgres({ dataDir, log }), /in use by the PostgreSQL/);

  const orphan = await postmasterPid(pgDir);
  assert.ok(orphan !== undefined);
  child.kill('SIGKILL');
  assert.ok(await exited(child, 10_000), 'the child exits on SIGKILL');
  assert.ok(await isPostgres(orphan), 'postgres outlives its SIGKILLed parent');

  const db = await start(dataDir);
  assert.equal(await isPostgres(orphan), false, 'the orphan was shut down');
  assert.deepEqual(await query(db.url, 'SELECT id, value FROM readings'), [{ id: 7, value: 2.5 }]);
  assert.notEqual(db.url, childUrl, 'a new port is picked');
  assert.equal(new URL(db.url).password, new URL(childUrl).password, 'the stored password is reused');
  await db.stop();
});

test('asks its server to shut down when the process exits without stop()', { timeout: 90_000 }, async () => {
  const dataDir = path.join(root, 'exit');
  const pgDir = path.join(dataDir, 'pg');
  pgDirs.push(pgDir);
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dataDir, 'exit'], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  await readUrl(child, 60_000);
  const server = await postmasterPid(pgDir);
  assert.ok(server !== undefined);
  assert.ok(await exited(child, 10_000), 'the child exits');
  assert.ok(await pollUntil(async () => !(await isPostgres(server)), 20_000, 50), 'its postgres shuts down');
  assert.equal(await postmasterPid(pgDir), undefined, 'a clean shutdown removes postmaster.pid');
});

test('ignores a stale postmaster.pid whose pid is dead or belongs to another program', { timeout: 60_000 }, async () => {
  const dataDir = path.join(root, 'stale');
  const pgDir = path.join(dataDir, 'pg');
  await (await start(dataDir)).stop();

  const dead = spawn(process.execPath, ['-e', '']);
  assert.ok(await exited(dead, 10_000));
  await writeFile(path.join(pgDir, 'postmaster.pid'), `${dead.pid}\n${pgDir}\n`);
  const afterDeadPid = await start(dataDir);
  assert.deepEqual(await query(afterDeadPid.url, 'SELECT 1 AS one'), [{ one: 1 }]);
  await afterDeadPid.stop();

  // postgres itself refuses a lock file naming a live process; the module must clear it.
  const unrelated = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
  children.push(unrelated);
  await writeFile(path.join(pgDir, 'postmaster.pid'), `${unrelated.pid}\n${pgDir}\n`);
  const afterLivePid = await start(dataDir);
  assert.deepEqual(await query(afterLivePid.url, 'SELECT 1 AS one'), [{ one: 1 }]);
  assert.equal(unrelated.exitCode, null, 'the unrelated process was not signalled');
  await afterLivePid.stop();
  unrelated.kill('SIGKILL');
});

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

async function postmasterPid(pgDir: string): Promise<number | undefined> {
  const content = await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  return content === undefined ? undefined : Number.parseInt(content, 10);
}

/** Alive, not a zombie, and a postgres. */
async function isPostgres(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined || /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) return false;
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes('postgres');
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return within(
    once(child, 'exit').then(() => true),
    ms,
    () => false,
  );
}

function readUrl(child: ChildProcess, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => fail(new Error(`no url from the child within ${ms} ms; stderr: ${stderr}`)), ms);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      reject(error);
    };
    const onExit = (code: number | null, signal: string | null) =>
      fail(new Error(`the child exited (code ${code}, signal ${signal}) before printing a url; stderr: ${stderr}`));
    child.once('exit', onExit);
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout
        .split('\n')
        .slice(0, -1)
        .find((candidate) => candidate.startsWith('{'));
      if (line === undefined) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve((JSON.parse(line) as { url: string }).url);
    });
  });
}
