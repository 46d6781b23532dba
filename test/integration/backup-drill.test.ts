/**
 * The restore drill of docs/deployment.md ("Backups and the restore drill"), run for real:
 * sessions written through the API (chunks, roll-ups, an ended one, a deleted one) are dumped
 * with pg_dump -Fc, restored with pg_restore into a new empty database, and an app started on
 * it answers every sample, record and aggregate as the original did.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { type App, buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { withClient } from '../../src/storage/database.ts';
import { compactBatch } from '../../src/storage/rollup-compactor.ts';
import { bearer, call, createKey } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { endSession, makeSamples } from '../support/clients.ts';
import { adminUrl } from '../support/database.ts';
import { ingest, read, readUrls } from '../support/reads.ts';

const run = promisify(execFile);

/** pg_dump and pg_restore of the newest PostgreSQL installed (Debian's layout), else from PATH. */
function pgTool(name: 'pg_dump' | 'pg_restore'): string {
  const root = '/usr/lib/postgresql';
  const versions = (() => {
    try {
      return readdirSync(root).sort((a, b) => Number(b) - Number(a));
    } catch {
      return [];
    }
  })();
  return versions.length > 0 ? path.join(root, versions[0], 'bin', name) : name;
}

/**
 * Folds every roll-up part, as the compactor would. A bucket's sum depends in its last bits on
 * how its parts are grouped (rollup-store.ts), so the drill compares answers over settled
 * roll-ups, with no compactor running on either side: else a fold between the first reads and
 * the dump, or after the restore, changes a sum's last digit and the answers differ.
 */
async function settleRollups(databaseUrl: string): Promise<void> {
  await withClient(databaseUrl, async (client) => {
    for (let batch = 0; batch < 100; batch++) {
      await compactBatch(client, 256);
      const { rows } = await client.query<{ pending: number }>('SELECT count(*)::int AS pending FROM sample_rollups WHERE pending');
      if (rows[0].pending === 0) return;
    }
    assert.fail('roll-up parts still pending after 100 batches');
  });
}

test('a pg_dump restored into a new database serves every sample and aggregate as before', async (t) => {
  const noCompactor = { RATE_LIMIT_PER_MINUTE: '0', ROLLUP_COMPACT_INTERVAL_MS: '0' };
  const original = await startApp(t, noCompactor);
  const writer = (await createKey(original.databaseUrl, { name: 'writer', role: 'writer' })).key;
  const ids: string[] = [];
  for (const [i, key] of ['drill/a', 'drill/b', 'drill/c'].entries()) {
    const created = await call(`${original.baseUrl}/api/v1/sessions`, 'POST', bearer(writer), { key });
    ids.push(created.body.sessionId);
    // Several commits, so several chunks, over 20 s of t: roll-ups of several blocks.
    for (let from = 1; from <= 2_000; from += 500) {
      const samples = makeSamples(from, 500).map((sample) => ({ ...sample, t: sample.seq * 10 + i }));
      await ingest(original.baseUrl, created.body, samples);
    }
    if (i === 1) await endSession(original.baseUrl, created.body.sessionId, created.body.ingestToken);
    if (i === 2) assert.equal((await call(`${original.baseUrl}/api/v1/sessions/${ids[2]}`, 'DELETE', bearer(writer))).status, 200);
  }
  const urlsOf = (baseUrl: string, id: string) => {
    const { session, data, aggregate } = readUrls(baseUrl, id);
    return [session, data, `${data}?format=csv`, aggregate, `${aggregate.split('?')[0]}?bucketMs=60000&fn=min,max,avg,sum`];
  };
  const answers = async (baseUrl: string) =>
    Promise.all(
      ids
        .flatMap((id) => urlsOf(baseUrl, id))
        .map(async (url) => {
          const { status, body } = await read(url);
          return { status, body };
        }),
    );
  await settleRollups(original.databaseUrl);
  const before = await answers(original.baseUrl);
  assert.equal(JSON.parse(before[1].body).samples.length, 2_000);

  const folder = await mkdtemp(path.join(os.tmpdir(), 'wavehouse-drill-'));
  const name = `wavehouse_test_${randomBytes(6).toString('hex')}`;
  const restoredUrl = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  let app: App | null = null;
  t.after(async () => {
    await app?.close();
    await rm(folder, { recursive: true, force: true });
    await withClient(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });
  const dump = path.join(folder, 'wavehouse.dump');
  await run(pgTool('pg_dump'), ['--format=custom', '--file', dump, '--dbname', original.databaseUrl]);
  await withClient(adminUrl, (admin) => admin.query(`CREATE DATABASE ${name} TEMPLATE template0`));
  await run(pgTool('pg_restore'), ['--no-owner', '--exit-on-error', '--dbname', restoredUrl, dump]);

  const config = loadConfig({ LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0', DATABASE_URL: restoredUrl, ...noCompactor });
  app = await buildApp(config);
  const restoredBase = await app.listen();
  const after = await answers(restoredBase);
  assert.deepEqual(after, before);
  assert.deepEqual(
    before.map((answer) => answer.status),
    [...Array(10).fill(200), ...Array(5).fill(404)],
    'the deleted session stays deleted',
  );
});
