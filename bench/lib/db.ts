/**
 * The bench's own database on the local PostgreSQL, created fresh for the run and dropped
 * at the end, so the figures never depend on what earlier runs or tests left behind.
 * The server migrates it at start, as it would any empty database.
 */
import { randomBytes } from 'node:crypto';
import { withClient } from '../../src/storage/database.ts';

export const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  name: string;
  url: string;
  /** Whether the checkpoint after creating it ran (it needs superuser or pg_checkpoint). */
  checkpointed: boolean;
  drop(): Promise<void>;
}

export async function createDatabase(): Promise<BenchDatabase> {
  const name = `wavehouse_bench_${randomBytes(5).toString('hex')}`;
  await withClient(adminUrl, (admin) => admin.query(`CREATE DATABASE ${name}`));
  // CREATE DATABASE writes a copy of each of the template's ~300 files, which the next
  // checkpoint syncs: 0.27 s seen inside an ingest step, holding every commit's WAL flush.
  // Checkpointing once here keeps the bench's own setup out of the windows it measures.
  const checkpointed = await withClient(adminUrl, (admin) => admin.query('CHECKPOINT')).then(
    () => true,
    (error: unknown) => {
      // insufficient_privilege: a role without superuser or pg_checkpoint; anything else is a real failure.
      if ((error as { code?: unknown }).code === '42501') return false;
      throw error;
    },
  );
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    checkpointed,
    async drop() {
      if (dropped) return;
      dropped = true;
      await withClient(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

export async function serverVersion(): Promise<string> {
  return withClient(
    adminUrl,
    async (admin) => (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version,
  );
}

export interface CreatedSession {
  sessionId: string;
  ingestToken: string;
}

/** Creates a session; `headers` carry a credential for a server in private mode. */
export async function createSession(baseUrl: string, headers: Record<string, string> = {}): Promise<CreatedSession> {
  const response = await fetch(`${baseUrl}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ channels: ['ax', 'ay', 'az'], sampleRateHz: 1000 }),
  });
  if (response.status !== 201) throw new Error(`creating a session: ${response.status} ${await response.text()}`);
  return (await response.json()) as CreatedSession;
}
