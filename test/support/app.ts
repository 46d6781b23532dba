/** Starts the real app on port 0 against a fresh database, and closes both when the test ends. */
import type { TestContext } from 'node:test';
import { type App, type AppOptions, buildApp } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { freshDatabase } from './database.ts';

export interface RunningApp {
  app: App;
  /** http://host:port */
  baseUrl: string;
  /** ws://host:port */
  wsUrl: string;
  databaseUrl: string;
}

type Hooks = Pick<TestContext, 'after'>;

/**
 * `options` go to buildApp as they are: a logger a test reads (support/log-lines.ts), faulty
 * decoders. `adjust` changes the loaded config where the environment cannot, for values its
 * validation rightly refuses in production: a token that lives one second, say.
 */
export async function startApp(
  t: Hooks,
  env: Record<string, string> = {},
  options: AppOptions = {},
  adjust: (config: Config) => void = () => undefined,
): Promise<RunningApp> {
  const database = await freshDatabase();
  const config = loadConfig({ LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0', DATABASE_URL: database.url, ...env });
  adjust(config);
  const app = await buildApp(config, options);
  const baseUrl = await app.listen();
  t.after(async () => {
    await app.close();
    await database.drop();
  });
  return { app, baseUrl, wsUrl: baseUrl.replace(/^http/, 'ws'), databaseUrl: database.url };
}
