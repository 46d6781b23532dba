/**
 * The real service as a child process (`node --import tsx src/main.ts`), for tests that need
 * what only a process has: signals, an exit code, a crash that takes its sockets with it.
 * It listens on port 0; the port is read from the 'wavehouse listening' JSON log line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freshDatabase } from './database.ts';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  /** http://host:port */
  readonly baseUrl: string;
  /** ws://host:port */
  readonly wsUrl: string;
  readonly pid: number;
  /** Every stdout line so far (JSON logs), for assertions and for failure messages. */
  readonly logLines: string[];
  kill(signal: NodeJS.Signals): void;
  /** SIGKILLs the process if it still runs and waits (bounded) for it to be gone. Idempotent. */
  stop(): Promise<void>;
  /** Resolves with how the process exited; rejects if it is still running after `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<Exit>;
}

type Hooks = Pick<TestContext, 'after'>;

export interface ServerProcessOptions {
  /** Environment-variable style settings; DATABASE_URL is required (no embedded database in tests). */
  env: Record<string, string> & { DATABASE_URL: string };
  startTimeoutMs?: number;
}

/**
 * A child transpiles the service with tsx before it listens: seconds on a quiet box, 13.7 s seen
 * with both cores taken by other work, so three started at once can pass 30 s. The wait is the
 * harness's, not a claim about the service's start.
 */
const defaultStartTimeoutMs = 60_000;

export async function startServerProcess(
  t: Hooks,
  { env, startTimeoutMs = defaultStartTimeoutMs }: ServerProcessOptions,
): Promise<ServerProcess> {
  // The child is a service, not a test file: it must not think it reports to this runner.
  const { NODE_TEST_CONTEXT: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: projectRoot,
    env: { ...inherited, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logLines: string[] = [];
  let stderr = '';
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    logLines.push(...lines);
  });
  // Drained so a chatty child never blocks on a full pipe.
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8_000);
  });
  const exit = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  const stop = async () => {
    if (!isRunning(child)) return;
    child.kill('SIGKILL');
    await Promise.race([exit, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
  };
  t.after(stop);

  const baseUrl = await listeningUrl(child, logLines, exit, startTimeoutMs, () => stderr);
  return {
    baseUrl,
    wsUrl: baseUrl.replace(/^http/, 'ws'),
    pid: child.pid!,
    logLines,
    kill: (signal) => {
      child.kill(signal);
    },
    stop,
    async waitForExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`process ${child.pid} still running after ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        return await Promise.race([exit, timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * A fresh database for server processes started one after another (a crash, then a restart):
 * when the test ends, every one of them is stopped before the database is dropped.
 */
export async function processesOnFreshDatabase(
  t: Hooks,
): Promise<{ databaseUrl: string; start(env?: Record<string, string>): Promise<ServerProcess> }> {
  const database = await freshDatabase();
  const servers: ServerProcess[] = [];
  t.after(async () => {
    for (const server of servers) await server.stop();
    await database.drop();
  });
  return {
    databaseUrl: database.url,
    async start(env = {}) {
      const server = await startServerProcess(t, { env: { ...env, DATABASE_URL: database.url } });
      servers.push(server);
      return server;
    },
  };
}

/** Sockets open on one process, by kind, from its /metrics. */
export async function socketsOpen(instance: ServerProcess): Promise<{ ingest: number; live: number }> {
  const text = await (await fetch(`${instance.baseUrl}/metrics`)).text();
  const count = (kind: string) =>
    Number(text.match(new RegExp(`^wavehouse_sockets_open\\{[^}]*kind="${kind}"[^}]*\\} (\\d+)`, 'm'))?.[1] ?? 0);
  return { ingest: count('ingest'), live: count('live') };
}

/** Whether `instance` logged a request for `path` (its log line has the URL, credentials redacted). */
export function loggedRequest(instance: ServerProcess, path: string): boolean {
  return instance.logLines.some((line) => line.includes('"incoming request"') && line.includes(`"url":"${path}`));
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function listeningUrl(
  child: ChildProcess,
  logLines: string[],
  exit: Promise<Exit>,
  timeoutMs: number,
  stderr: () => string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout!.off('data', look);
      outcome();
    };
    const timer = setTimeout(
      () => finish(() => reject(new Error(`no 'wavehouse listening' line within ${timeoutMs} ms; stderr: ${stderr()}`))),
      timeoutMs,
    );
    const look = () => {
      for (const line of logLines) {
        let entry: { msg?: unknown; url?: unknown };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          continue;
        }
        const { msg, url } = entry;
        if (msg === 'wavehouse listening' && typeof url === 'string') return finish(() => resolve(url));
      }
    };
    // Listens after the buffering listener, so logLines already holds the chunk's lines.
    child.stdout!.on('data', look);
    void exit.then(({ code, signal }) =>
      finish(() => reject(new Error(`the server exited (code ${code}, signal ${signal}) before listening; stderr: ${stderr()}`))),
    );
  });
}
