/**
 * The processes the bench starts: the Wavehouse server (exactly as `npm start` runs it) and
 * helper processes (load generators, plain limit servers) driven over IPC. Every figure's
 * load comes from a process other than the one measured, so a client's CPU is never the
 * server's. Every child is tracked so that any exit path kills exactly the ones we started.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { sleep } from './stats.ts';

export const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

const started = new Set<ChildProcess>();

const isRunning = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** Kills every child this process started that still runs (by its own handle, never by name). */
export function killStartedChildren(): void {
  for (const child of started) if (isRunning(child)) child.kill('SIGKILL');
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = sleep(graceMs).then(() => 'timeout' as const);
  if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout') {
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(5_000)]);
  }
  started.delete(child);
}

/** A port that was free a moment ago (the server is told it; PORT=0 would need its info-level log line). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export interface ServerHandle {
  pid: number;
  baseUrl: string;
  wsUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts `node --import tsx src/main.ts` as the README documents it for benchmarks:
 * INGEST_MAX_SAMPLES_PER_S=0 (no per-producer limit), LOG_LEVEL=warn, and per-client-IP caps
 * out of reach (all load comes from one address). Every other setting is the default. Ready once /health
 * answers. The port is picked here because at LOG_LEVEL=warn the 'wavehouse listening'
 * line (info) is not printed.
 */
export async function startWavehouse(databaseUrl: string, extraEnv: Record<string, string> = {}): Promise<ServerHandle> {
  const port = await freePort();
  const { NODE_TEST_CONTEXT: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: projectRoot,
    env: {
      ...inherited,
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
      INGEST_MAX_SAMPLES_PER_S: '0',
      LOG_LEVEL: 'warn',
      // Every bench client is 127.0.0.1, so per-client-IP caps meant for many real clients
      // would refuse the load itself (512 open connections, 4429 after 256 sockets, 429 after
      // 1,200 requests or 60 creations a minute, or 600 upgrades). They are raised out of reach,
      // not turned off (0), so the rate limiters and the connection count still do their work in
      // every figure.
      HTTP_MAX_CONNECTIONS_PER_IP: '1000000',
      MAX_SOCKETS_PER_IP: '1000000',
      RATE_LIMIT_UPGRADES_PER_MINUTE: '1000000000',
      RATE_LIMIT_PER_MINUTE: '1000000000',
      RATE_LIMIT_CREATE_PER_MINUTE: '1000000000',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  // Drained so the child never blocks on a full pipe; the tail explains a failed start.
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!isRunning(child)) throw new Error(`wavehouse exited before it was ready: ${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`wavehouse not ready within 30 s: ${output}`);
    }
    try {
      const response = await fetch(`${baseUrl}/health`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return {
    pid: child.pid!,
    baseUrl,
    wsUrl: baseUrl.replace(/^http/, 'ws'),
    stop: () => stopChild(child, 'SIGTERM', 15_000),
  };
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** A helper process running one of bench/clients or bench/servers, called like a function. */
export class Helper {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  private constructor(
    private readonly child: ChildProcess,
    readonly name: string,
  ) {
    child.on('message', (message: Reply) => {
      const waiter = this.waiting.get(message.id);
      if (!waiter) return;
      this.waiting.delete(message.id);
      if (message.ok) waiter.resolve(message.result);
      else waiter.reject(new Error(`${name}: ${message.error}`));
    });
    child.once('exit', (code, signal) => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error(`${name} exited (code ${code}, signal ${signal})`));
      this.waiting.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Forks `bench/<script>` and waits until it has registered its commands. */
  static async start(script: string, name = script): Promise<Helper> {
    const child = fork(fileURLToPath(new URL(`../${script}`, import.meta.url)), [], {
      cwd: projectRoot,
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    started.add(child);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: unknown) => {
        if ((message as { ready?: boolean }).ready) {
          child.off('message', onMessage);
          resolve();
        }
      };
      child.on('message', onMessage);
      child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    });
    return new Helper(child, name);
  }

  call<T>(cmd: string, args: object = {}, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: ${cmd} took over ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send({ id, cmd, ...args });
    });
  }

  stop(): Promise<void> {
    this.child.disconnect();
    return stopChild(this.child, 'SIGTERM', 5_000);
  }
}
