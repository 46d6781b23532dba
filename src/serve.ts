/**
 * The service as a process: builds the app from a Config, listens, and shuts down cleanly on
 * SIGTERM/SIGINT. `npm start` (main.ts) and `wavehouse serve` both run it, so they cannot drift.
 */
import { buildApp, closeDeadline } from './app.ts';
import type { Config } from './config.ts';
import { createLogger } from './observability/logger.ts';

export async function serve(config: Config): Promise<void> {
  // Unacked samples are still with their producers, who resend them to the next process. The
  // fatal line is flushed first (pino writes asynchronously); a stdout that never drains gets 1 s.
  const log = createLogger(config.logLevel);
  const exitAfterFlush = () => {
    setTimeout(() => process.exit(1), 1_000).unref();
    log.flush(() => process.exit(1));
  };
  const app = await buildApp(config, { log, onFatal: exitAfterFlush });
  const url = await app.listen();
  app.log.info({ url }, 'wavehouse listening');

  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      app.log.info({ signal }, 'shutting down');
      // The deadline app.close() gives its parts: a part still closing then is not waited for.
      const deadline = setTimeout(() => {
        app.log.error('shutdown took too long; exiting');
        process.exit(1);
      }, closeDeadline(config) - Date.now()).unref();
      app.close().then(
        () => {
          clearTimeout(deadline);
          process.exit(0);
        },
        (error: unknown) => {
          app.log.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}
