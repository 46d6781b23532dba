/** `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database) and exits. */
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createPool } from '../src/storage/database.ts';
import { startEmbeddedPostgres } from '../src/storage/embedded-postgres.ts';
import { migrate } from '../src/storage/migrations.ts';

const config = loadConfig(process.env);
const log = createLogger(config.logLevel);
const embedded = config.database.url === null ? await startEmbeddedPostgres({ dataDir: config.database.dataDir, log }) : null;
const pool = createPool(config.database.url ?? embedded!.url, 2, log);
try {
  const { applied, chunkTimes } = await migrate(pool);
  log.info({ applied, chunkTimes }, applied.length > 0 ? 'migrations applied' : 'database is up to date');
} finally {
  await pool.end();
  await embedded?.stop();
}
