/**
 * Opens the database an app runs on: the server DATABASE_URL names, else an embedded
 * PostgreSQL under the data directory; then its pools, and migrates it. Each part is started
 * on the app's PartStack, so a failure here closes what was opened before it.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { createPool, type Pool } from './database.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './embedded-postgres.ts';
import { migrate } from './migrations.ts';

/** The app's PartStack, as far as this needs it (storage does not import lifecycle.ts). */
interface PartStarter {
  start(part: { readonly name: string; close(deadline: number): Promise<void> }): Promise<void>;
}

export interface OpenDatabase {
  readonly url: string;
  readonly embedded: boolean;
  /** REST reads, exports, sweeps and the other short statements. */
  readonly pool: Pool;
  /** One connection for session inserts, with the create timeout as its statement timeout. */
  readonly creates: Pool;
}

export async function openDatabase(config: Config, log: Logger, parts: PartStarter): Promise<OpenDatabase> {
  const embedded: EmbeddedDatabase | null =
    config.database.url === null ? await startEmbeddedPostgres({ dataDir: config.database.dataDir, log }) : null;
  if (embedded) await parts.start({ name: 'embedded PostgreSQL', close: () => embedded.stop() });
  const url = config.database.url ?? embedded!.url;
  if (embedded) log.info({ dataDir: config.database.dataDir }, 'using the embedded PostgreSQL (set DATABASE_URL to use a server)');
  // Of DATABASE_POOL_SIZE, the writer lanes' connections are the commit thread's and one
  // inserts sessions, with a statement timeout (session-repository.ts); the rest serve REST and
  // exports (the producer locks hold a connection of their own).
  const pool = createPool(url, config.database.poolSize - config.writer.lanes - 1, log);
  await parts.start({ name: 'database pool', close: () => pool.end() });
  const creates = createPool(url, 1, log, {
    applicationName: 'wavehouse-creates',
    statementTimeoutMs: config.sessions.createTimeoutMs,
  });
  await parts.start({ name: 'creates pool', close: () => creates.end() });
  const { applied, chunkTimes } = await migrate(pool);
  if (applied.length + chunkTimes.filled + chunkTimes.undecodable > 0) log.info({ applied, chunkTimes }, 'database migrated');
  return { url, embedded: embedded !== null, pool, creates };
}
