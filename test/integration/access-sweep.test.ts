/**
 * The upkeep of the access tables on the real PostgreSQL (src/access/access-sweeper.ts,
 * migration 007): expired refresh tokens, the families they leave empty and old audit rows
 * go, in bounded batches, from any number of instances at once; nothing else goes, and the
 * audit log still refuses every other change.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { AccessSweeper, type AccessSweeperOptions } from '../../src/access/access-sweeper.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { AuditRepository } from '../../src/storage/audit-repository.ts';
import { createPool, type Pool, withPooledClient } from '../../src/storage/database.ts';
import { RefreshTokenRepository } from '../../src/storage/refresh-token-repository.ts';
import { freshDatabase, type TestDatabase } from '../support/database.ts';

const dayMs = 24 * 60 * 60 * 1000;
const log = createLogger('silent');

let database: TestDatabase;
let pool: Pool;

beforeEach(async () => {
  database = await freshDatabase();
  pool = createPool(database.url, 6, log);
});
afterEach(async () => {
  await pool.end();
  await database.drop();
});

function sweeper(options: Partial<AccessSweeperOptions> = {}): AccessSweeper {
  return new AccessSweeper({
    refreshTokens: new RefreshTokenRepository({ pool }),
    audit: new AuditRepository({ pool }),
    auditRetentionDays: 30,
    batchSize: 10,
    ...options,
  });
}

/** A family of `tokens` refresh tokens, the first expiring at `expiresAt`, the others later. */
async function family(expiresAt: number, tokens = 1): Promise<string> {
  const keyId = randomUUID();
  await pool.query("INSERT INTO api_keys (id, name, key_hash, scopes, created_by) VALUES ($1, 'k', $2, '{}', 'test')", [
    keyId,
    randomBytes(32),
  ]);
  const familyId = randomUUID();
  const repository = new RefreshTokenRepository({ pool });
  await repository.startFamily(familyId, keyId, { hash: randomBytes(32), expiresAt: new Date(expiresAt) }, new Date());
  for (let i = 1; i < tokens; i += 1) {
    await pool.query('INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES ($1, $2, $3)', [
      randomBytes(32),
      familyId,
      new Date(expiresAt + i * dayMs),
    ]);
  }
  return familyId;
}

async function tokensOf(familyId: string): Promise<number> {
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = $1', [familyId]);
  return rows[0].n;
}

async function familyExists(familyId: string): Promise<boolean> {
  const { rowCount } = await pool.query('SELECT 1 FROM refresh_families WHERE id = $1', [familyId]);
  return rowCount === 1;
}

/** `count` audit rows written `ageDays` ago. */
async function auditRows(ageDays: number, count: number, actor = 'cli'): Promise<void> {
  const at = new Date(Date.now() - ageDays * dayMs);
  await new AuditRepository({ pool }).append(
    Array.from({ length: count }, (_, i) => ({
      at,
      actor,
      action: 'key.create',
      target: `k${i}`,
      ip: null,
      requestId: null,
      outcome: 'success',
      count: 1,
    })),
  );
}

async function auditAges(): Promise<number[]> {
  const { rows } = await pool.query('SELECT round(extract(epoch FROM now() - at) / 86400)::int AS days FROM audit_log ORDER BY at');
  return rows.map((row) => row.days);
}

describe('refresh tokens', () => {
  test('tokens expired longer than the grace go, with the families left empty; the rest stay', async () => {
    const now = Date.now();
    const long = await family(now - 30 * dayMs);
    const recent = await family(now - 2 * dayMs);
    const live = await family(now + 20 * dayMs);
    const partly = await family(now - 8.5 * dayMs, 3);
    const swept = await sweeper({ refreshGraceMs: 7 * dayMs }).sweep();
    assert.deepEqual(swept, { refreshTokens: 3, refreshFamilies: 1, auditRows: 0 });
    assert.equal(await familyExists(long), false);
    assert.deepEqual([await tokensOf(recent), await tokensOf(live), await tokensOf(partly)], [1, 1, 1]);
    assert.equal(await familyExists(partly), true);
  });

  test('a backlog goes in batches of the batch size, until none is left', async () => {
    const now = Date.now();
    for (let i = 0; i < 5; i += 1) await family(now - 60 * dayMs, 5);
    const deletes: number[] = [];
    const repository = new RefreshTokenRepository({ pool });
    const counting = {
      deleteExpired: async (before: Date, limit: number) => {
        const deleted = await repository.deleteExpired(before, limit);
        deletes.push(deleted);
        return deleted;
      },
      deleteEmptyFamilies: (limit: number) => repository.deleteEmptyFamilies(limit),
    };
    const swept = await sweeper({ refreshTokens: counting, batchSize: 7 }).sweep();
    assert.deepEqual(deletes, [7, 7, 7, 4]);
    assert.deepEqual(swept, { refreshTokens: 25, refreshFamilies: 5, auditRows: 0 });
    assert.deepEqual(await sweeper().sweep(), { refreshTokens: 0, refreshFamilies: 0, auditRows: 0 });
  });
});

describe('audit rows', () => {
  test('rows older than AUDIT_RETENTION_DAYS go, oldest first in batches; younger ones stay', async () => {
    await auditRows(400, 25);
    await auditRows(31, 3);
    await auditRows(29, 2);
    await auditRows(0, 2);
    assert.deepEqual(await sweeper({ auditRetentionDays: 30 }).sweep(), { refreshTokens: 0, refreshFamilies: 0, auditRows: 28 });
    assert.deepEqual(await auditAges(), [29, 29, 0, 0]);
  });

  test('0 keeps every row', async () => {
    await auditRows(4000, 3);
    assert.equal((await sweeper({ auditRetentionDays: 0 }).sweep()).auditRows, 0);
    assert.equal((await auditAges()).length, 3);
  });

  test('the table still refuses a DELETE of its own, and the sweep bound never reaches a row less than a day old', async () => {
    await auditRows(10, 1);
    await auditRows(0, 1);
    await assert.rejects(pool.query('DELETE FROM audit_log'), (error: { code?: string }) => error.code === '42501');
    const future = new Date(Date.now() + dayMs).toISOString();
    const purge = (sql: string) =>
      withPooledClient(pool, async (client) => {
        await client.query('BEGIN');
        await client.query("SELECT set_config('wavehouse.audit_purge_before', $1, true)", [future]);
        try {
          return await client.query(sql);
        } finally {
          await client.query('ROLLBACK');
        }
      });
    await assert.rejects(purge('DELETE FROM audit_log'), (error: { code?: string }) => error.code === '42501');
    await assert.rejects(purge("UPDATE audit_log SET outcome = 'forged'"), (error: { code?: string }) => error.code === '42501');
    // Asked to delete everything before tomorrow, retention takes the old row only.
    assert.equal(await new AuditRepository({ pool }).deleteOlderThan(new Date(future), 100), 1);
    assert.deepEqual(await auditAges(), [0]);
  });

  test('instances sweeping at once share the backlog: every old row goes once, and none fails', async () => {
    await auditRows(100, 500);
    for (let i = 0; i < 20; i += 1) await family(Date.now() - 30 * dayMs, 10);
    const sweeps = await Promise.all(Array.from({ length: 4 }, () => sweeper({ batchSize: 25 }).sweep()));
    const total = (key: 'refreshTokens' | 'refreshFamilies' | 'auditRows') => sweeps.reduce((sum, swept) => sum + swept[key], 0);
    assert.deepEqual([total('auditRows'), total('refreshTokens'), total('refreshFamilies')], [500, 200, 20]);
    assert.deepEqual(await auditAges(), []);
  });
});

describe('the sweeper as a part', () => {
  test('a sweep that fails rejects and leaves the next one to try again; closed, it deletes nothing', async () => {
    await auditRows(400, 5);
    let failing = true;
    const audit = new AuditRepository({ pool });
    const flaky = {
      deleteOlderThan: (before: Date, limit: number) =>
        failing ? Promise.reject(new Error('database went away')) : audit.deleteOlderThan(before, limit),
    };
    const part = sweeper({ audit: flaky });
    await assert.rejects(part.sweep(), /database went away/);
    failing = false;
    await part.start();
    await part.close(Date.now() + 1_000);
    assert.equal((await part.sweep()).auditRows, 0);
    assert.equal((await auditAges()).length, 5);
    assert.equal((await sweeper({ audit: flaky }).sweep()).auditRows, 5);
  });
});
