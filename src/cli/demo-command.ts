/**
 * `wavehouse demo iot|prices|scheduler`: the service, started as `wavehouse serve` starts it (the
 * embedded PostgreSQL when no DATABASE_URL), with a demo feeding it through its public API.
 * Connectors and keyed streams need a key in either mode, so the demo makes an admin key in
 * the service's database (as `keys create` does), valid for a day, and writes it to a file
 * readable by its owner only: never to the terminal. Ctrl-C stops the demo, then the service,
 * and the process exits with nothing left running.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { App } from '../app.ts';
import type { Config } from '../config.ts';
import type { RequestOptions } from '../sdk/rest.ts';
import { CliError, UsageError } from './cli-error.ts';

export const demoUsage = `wavehouse demo iot [--port <port>] [--every <seconds>] [--poll <seconds>]
wavehouse demo prices [--port <port>] [--poll <seconds>] [--credit-errors <seconds>]
wavehouse demo scheduler [--port <port>] [--seed <n>] [--tasks <n>] [--speed <x>]
  Runs the service (settings from the environment, as serve) with a demo feeding it, until Ctrl-C.
  iot: river gauges on a local ThingSpeak stand-in, each pulled by a thingspeak connector; a
       node adds an entry every --every seconds (5), polled every --poll seconds (2).
  prices: 1min bars of AAPL, EUR/USD and BTC/USD on a local Twelve Data stand-in, pulled by a
       twelvedata connector every --poll seconds (5); the stand-in answers a credit error (a
       429 in a 200 body) every --credit-errors seconds (120); each symbol's hourly OHLC buckets
       are printed every 15 s.
  scheduler: FIFO, SJF, round-robin and EDF run on the same seeded task set (--seed 1,
       --tasks 300); each finished task goes into scheduler/<policy> over HTTP ingest, --speed
       times faster than real time (1); the leaderboard is printed as it changes.
  The admin key the demo makes is written to WAVEHOUSE_DATA_DIR/demo-api-key (sign in with it
  on the landing page).`;

const positive = (name: string, text: string | undefined, fallback: number): number => {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--${name}: expected a positive number, got "${text}"`);
  return value;
};

async function loadDemoConfig(port: string | undefined): Promise<Config> {
  const { ConfigError, loadConfig } = await import('../config.ts');
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' };
  if (port !== undefined) env.PORT = port;
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw error;
  }
}

/** An admin key for a day, written to a file only its owner reads; the file's path is what is printed. */
async function demoKey(app: App, config: Config): Promise<{ key: string; file: string }> {
  const [{ createPool }, { createKeyIn }] = await Promise.all([import('../storage/database.ts'), import('./keys-command.ts')]);
  const pool = createPool(app.databaseUrl, 1, app.log);
  try {
    const expiresAt = new Date(Date.now() + 24 * 3_600_000);
    const { key } = await createKeyIn(pool, { name: 'demo', role: 'admin', keyPrefix: null, expiresAt });
    await mkdir(config.database.dataDir, { recursive: true });
    const file = path.join(config.database.dataDir, 'demo-api-key');
    await writeFile(file, `${key}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    return { key, file };
  } finally {
    await pool.end();
  }
}

/** The key, sent as it is: the demo needs no token exchange. */
function fixedCredential(key: string): RequestOptions['credential'] {
  return { token: async () => key, renew: async () => null, close: () => undefined };
}

export async function demoCommand(args: string[]): Promise<'running'> {
  const [which, ...rest] = args;
  if (which !== 'iot' && which !== 'prices' && which !== 'scheduler') {
    throw new UsageError(`demo: expected "iot", "prices" or "scheduler", got ${which === undefined ? 'nothing' : `"${which}"`}`);
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      port: { type: 'string' },
      every: { type: 'string' },
      poll: { type: 'string' },
      'credit-errors': { type: 'string' },
      seed: { type: 'string' },
      tasks: { type: 'string' },
      speed: { type: 'string' },
    },
  });
  const config = await loadDemoConfig(values.port);
  const { buildApp, closeDeadline } = await import('../app.ts');
  const app = await buildApp(config);
  const baseUrl = await app.listen();
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const stops: Array<() => Promise<void>> = [];
  const controller = new AbortController();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    controller.abort();
    setTimeout(() => process.exit(1), closeDeadline(config) - Date.now()).unref();
    for (const close of stops.reverse()) await close().catch(() => undefined);
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    const { key, file } = await demoKey(app, config);
    out(`service   ${baseUrl}`);
    out(`key       ${file} (an admin key for a day: sign in with it on the landing page)`);
    const request: RequestOptions = { credential: fixedCredential(key), signal: controller.signal };
    if (which === 'iot') {
      const every = positive('every', values.every, 5);
      const poll = positive('poll', values.poll, 2);
      const { runIot } = await import('./demo-runs.ts');
      await runIot({ baseUrl, request, everyMs: every * 1_000, pollIntervalS: poll, out, stops, signal: controller.signal });
    } else if (which === 'prices') {
      const poll = positive('poll', values.poll, 5);
      const creditErrorEveryS = positive('credit-errors', values['credit-errors'], 120);
      // Past a day a timer's delay overflows (Node then fires it at once): a day is as rare as a demo needs.
      if (creditErrorEveryS > 86_400) throw new UsageError(`--credit-errors: at most 86400 seconds, got "${values['credit-errors']}"`);
      const creditErrorEveryMs = creditErrorEveryS * 1_000;
      const { runPrices } = await import('./demo-runs.ts');
      await runPrices({ baseUrl, request, pollIntervalS: poll, creditErrorEveryMs, out, stops, signal: controller.signal });
    } else {
      const { runScheduler } = await import('./demo-runs.ts');
      const seed = Math.floor(positive('seed', values.seed, 1));
      const tasks = Math.floor(positive('tasks', values.tasks, 300));
      await runScheduler({ baseUrl, request, seed, tasks, speed: positive('speed', values.speed, 1), out, signal: controller.signal });
    }
  } catch (error) {
    if (controller.signal.aborted) return 'running';
    await app.close();
    throw error;
  }
  out('Ctrl-C stops the demo and the service.');
  return 'running';
}
