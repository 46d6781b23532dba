/**
 * The real app on a fresh database, restartable in place: `restart()` closes it the way a
 * deploy does (drain, final acks, every socket closed with 1012) and builds a new app on the
 * same port and the same database, so clients that only know the URL reconnect to it.
 */
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type App, buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { freshDatabase } from './database.ts';

type Hooks = Pick<TestContext, 'after'>;

export interface RestartableApp {
  readonly baseUrl: string;
  readonly databaseUrl: string;
  readonly app: App;
  /** How many apps have served so far (1 before any restart). */
  readonly generation: number;
  restart(): Promise<void>;
}

/** The port may linger for a moment after close; binding again is retried within a bound. */
const rebindTimeoutMs = 5_000;

export async function startRestartableApp(t: Hooks, env: Record<string, string> = {}): Promise<RestartableApp> {
  const database = await freshDatabase();
  const configFor = (port: number) =>
    loadConfig({ LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: String(port), DATABASE_URL: database.url, ...env });

  let app = await buildApp(configFor(0));
  const baseUrl = await app.listen();
  const port = Number(new URL(baseUrl).port);
  let generation = 1;
  t.after(async () => {
    await app.close();
    await database.drop();
  });

  return {
    baseUrl,
    databaseUrl: database.url,
    get app() {
      return app;
    },
    get generation() {
      return generation;
    },
    async restart() {
      await app.close();
      const deadline = Date.now() + rebindTimeoutMs;
      for (;;) {
        const next = await buildApp(configFor(port));
        try {
          await next.listen();
          app = next;
          generation++;
          return;
        } catch (error) {
          await next.close();
          if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > deadline) throw error;
          await sleep(50);
        }
      }
    },
  };
}
