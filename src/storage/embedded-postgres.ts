/**
 * The default database when no DATABASE_URL is configured: a private PostgreSQL 15 cluster
 * under `<dataDir>/pg`, run as a child of this process (embedded/server.ts), listening only
 * on 127.0.0.1 on a port picked afresh at every start.
 *
 * Authentication is scram-sha-256 with a random password generated once and kept in
 * `<dataDir>/pg-password` (0600). Trust auth on 127.0.0.1 would let every local user and
 * process on the host in as superuser, which is not acceptable on a shared machine.
 */
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { withClient } from './database.ts';
import {
  assertTraversable,
  createDataDir,
  createUser,
  describe,
  inspectClusterDir,
  loadPassword,
  lookupUser,
} from './embedded/data-dir.ts';
import { reclaimDataDir } from './embedded/orphans.ts';
import { initCluster, type PostgresServer, PostgresStartError, startPostgres } from './embedded/server.ts';

export interface EmbeddedDatabase {
  readonly url: string;
  stop(): Promise<void>;
}

export interface EmbeddedDatabaseOptions {
  dataDir: string;
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

type Log = EmbeddedDatabaseOptions['log'];

const DB_USER = 'wavehouse';
const APP_DATABASE = 'wavehouse';
const OS_USER = 'postgres';
const START_ATTEMPTS = 3;

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
  // postgres refuses to run as root: as root, initdb and postgres run as the OS user
  // "postgres" (created for the first initdb if missing), which must reach the data directory.
  let runAs = asRoot ? await lookupUser(OS_USER) : undefined;
  if (asRoot) await assertTraversable(dataDir, runAs);
  const clusterExists = await inspectClusterDir(pgDir, asRoot ? runAs?.uid : process.getuid?.(), asRoot);
  if (asRoot && runAs === undefined && clusterExists) {
    throw new Error(`the cluster in ${pgDir} exists but the OS user "${OS_USER}" it runs as (Wavehouse runs as root) does not`);
  }
  const password = await loadPassword(dataDir, pgDir, clusterExists);
  const ownerFile = path.join(dataDir, 'pg-owner.pid');
  await reclaimDataDir(pgDir, ownerFile, (obj, msg) => log.warn(obj, msg));

  let initMs = 0;
  if (!clusterExists) {
    const t0 = performance.now();
    log.info({ pgDir }, 'creating the embedded PostgreSQL cluster');
    try {
      if (asRoot) runAs ??= await createUser(OS_USER);
      await initCluster({ dataDir, pgDir, superuser: DB_USER, password, runAs, log });
    } catch (error) {
      throw new Error(`initdb failed for ${pgDir}: ${describe(error)}`, { cause: error });
    }
    initMs = Math.round(performance.now() - t0);
  }

  await writeFile(ownerFile, `${process.pid}\n`);
  const t1 = performance.now();
  let server: { postgres: PostgresServer; port: number } | undefined;
  for (let attempt = 1; server === undefined; attempt++) {
    const port = await freePort();
    try {
      const postgres = await startPostgres({
        dataDir,
        pgDir,
        port,
        runAs,
        log,
        onUnexpectedExit: (exit) => log.warn({ ...exit, pgDir }, 'embedded PostgreSQL exited unexpectedly'),
      });
      server = { postgres, port };
    } catch (error) {
      if (error instanceof PostgresStartError && error.portTaken && attempt < START_ATTEMPTS) continue;
      throw error;
    }
  }
  const startMs = Math.round(performance.now() - t1);

  const { postgres, port } = server;
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= postgres.stop().finally(() => running.delete(pgDir));
    return stopped;
  };

  try {
    await ensureAppDatabase(port, password);
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }

  log.info({ pgDir, port, initMs, startMs, totalMs: Math.round(performance.now() - began) }, 'embedded PostgreSQL ready');
  return {
    url: `postgres://${DB_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${APP_DATABASE}`,
    stop,
  };
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
