/**
 * The floor of a REST create: a bare one-row INSERT, committed on its own (one autocommit
 * statement: INSERT + COMMIT in one round trip), from this process on connections of its own,
 * paced exactly as the REST requests are (paced-load.ts). What a create adds to it (HTTP,
 * validation, the token, the session row's size, its batching) is what its ratio shows; the
 * commit's WAL flush, which no create can avoid, is in both.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { type PacedResult, pacedRun } from './paced-load.ts';

/** As many as the server's pool has by default (DATABASE_POOL_SIZE). */
const connections = 10;
const table = 'bench_insert_floor';
const insert = { name: 'bench-insert-floor', text: `INSERT INTO ${table} (id) VALUES ($1)` };

export interface InsertFloor {
  /** Paces the INSERT at `rate` a second for `durationS` seconds. */
  run(rate: number, durationS: number): Promise<PacedResult>;
  /** Drops its table and ends its connections. */
  close(): Promise<void>;
}

/** Creates the floor's table in `databaseUrl`; its connections open on the first run (warm one up before measuring). */
export async function openInsertFloor(databaseUrl: string): Promise<InsertFloor> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: connections });
  await pool.query(`CREATE TABLE ${table} (id uuid PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())`);
  const send = (done: (ok: boolean) => void) => {
    pool.query({ ...insert, values: [randomUUID()] }).then(
      () => done(true),
      () => done(false),
    );
  };
  return {
    run: (rate, durationS) => pacedRun(send, rate, durationS),
    async close() {
      await pool.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await pool.end();
    },
  };
}
