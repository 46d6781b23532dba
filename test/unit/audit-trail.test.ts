/**
 * The audit trail (src/access/audit-trail.ts) over an in-memory store: batched writes, a
 * bounded queue, refusals aggregated in a bounded map, and pages of the log.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AuditStore, AuditTrail, type AuditTrailOptions, decodeCursor, encodeCursor } from '../../src/access/audit-trail.ts';
import type { AuditEntry, AuditQuery, AuditRow } from '../../src/storage/audit-repository.ts';

/** A store that keeps rows, can be made to fail, and lists like the repository. */
class MemoryAudit implements AuditStore {
  readonly rows: AuditRow[] = [];
  readonly batches: number[] = [];
  failing = false;

  async append(rows: readonly AuditRow[]): Promise<void> {
    if (this.failing) throw new Error('database down');
    this.batches.push(rows.length);
    this.rows.push(...rows);
  }

  async list(query: AuditQuery): Promise<AuditEntry[]> {
    return this.rows
      .map((row, i) => ({ ...row, id: String(i + 1) }))
      .reverse()
      .filter(
        (entry) =>
          (query.beforeId === null || Number(entry.id) < Number(query.beforeId)) &&
          (query.actor === undefined || entry.actor === query.actor),
      )
      .slice(0, query.limit);
  }
}

const context = { actor: 'key:k1', ip: '198.51.100.4', requestId: 'req-1' };

function setup(options: Partial<AuditTrailOptions> = {}) {
  let now = Date.UTC(2026, 0, 1);
  const store = new MemoryAudit();
  const trail = new AuditTrail({ store, clock: () => now, ...options });
  return { store, trail, advance: (ms: number) => (now += ms) };
}

describe('audit trail', () => {
  test('events are queued without waiting and written in batches, each with who, what, where and the outcome', async () => {
    const { store, trail } = setup({ maxBatch: 4 });
    for (let i = 0; i < 10; i += 1) trail.record(context, { action: 'session.create', target: `s${i}`, outcome: 'success' });
    assert.equal(store.rows.length, 0);
    await trail.flush();
    assert.deepEqual(store.batches, [4, 4, 2]);
    assert.deepEqual(store.rows[0], {
      at: new Date(Date.UTC(2026, 0, 1)),
      ...context,
      action: 'session.create',
      target: 's0',
      outcome: 'success',
      count: 1,
    });
  });

  test('a failed write keeps its rows for the next flush; a full queue counts what it drops, and says so once there is room', async () => {
    const { store, trail } = setup({ maxQueued: 5 });
    store.failing = true;
    for (let i = 0; i < 8; i += 1) trail.record(context, { action: 'key.revoke', target: `k${i}`, outcome: 'success' });
    await trail.flush();
    assert.equal(trail.queued, 5);
    store.failing = false;
    await trail.flush();
    assert.deepEqual(
      store.rows.map((row) => row.target),
      ['k0', 'k1', 'k2', 'k3', 'k4', null],
    );
    assert.deepEqual(store.rows[5], { ...store.rows[5], actor: 'audit', action: 'audit.drop', outcome: 'queue_full', count: 3 });
  });

  test('a million refusals from one address are one row with their count', async () => {
    const { store, trail } = setup();
    for (let i = 0; i < 1_000_000; i += 1) trail.refused({ ip: '203.0.113.9', code: 'invalid_credential' });
    assert.equal(trail.refusalBuckets, 1);
    trail.closeWindow();
    await trail.flush();
    assert.deepEqual(
      store.rows.map(({ actor, action, target, ip, outcome, count }) => ({ actor, action, target, ip, outcome, count })),
      [
        {
          actor: 'anonymous',
          action: 'credential.refuse',
          target: null,
          ip: '203.0.113.9',
          outcome: 'invalid_credential',
          count: 1_000_000,
        },
      ],
    );
  });

  test('refusals are counted per address, reason and key; past the cap they go into one overflow row', async () => {
    const { store, trail } = setup({ maxRefusalBuckets: 100 });
    trail.refused({ ip: '192.0.2.1', code: 'credential_revoked', keyId: 'k7' });
    trail.refused({ ip: '192.0.2.1', code: 'credential_revoked', keyId: 'k7' });
    trail.refused({ ip: '192.0.2.1', code: 'invalid_credential' });
    for (let i = 0; i < 1_000_000; i += 1)
      trail.refused({ ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, code: 'invalid_credential' });
    assert.equal(trail.refusalBuckets, 100);
    trail.closeWindow();
    assert.equal(trail.refusalBuckets, 0);
    await trail.flush();
    assert.equal(store.rows.length, 101);
    assert.deepEqual(store.rows[0], { ...store.rows[0], target: 'k7', outcome: 'credential_revoked', count: 2 });
    const overflow = store.rows[100];
    assert.deepEqual(
      { ip: overflow.ip, outcome: overflow.outcome, count: overflow.count },
      { ip: null, outcome: 'overflow', count: 1_000_003 - 100 - 1 },
    );
  });

  test('the timer closes the window once a minute and writes every second; close writes what is left', async () => {
    const { store, trail, advance } = setup({ flushIntervalMs: 20, refusalWindowMs: 60_000 });
    await trail.start();
    trail.refused({ ip: null, code: 'invalid_credential' });
    trail.record(context, { action: 'session.end', target: 's1', outcome: 'success' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(
      store.rows.map((row) => row.action),
      ['session.end'],
    );
    advance(60_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(
      store.rows.map((row) => row.action),
      ['session.end', 'credential.refuse'],
    );
    trail.refused({ ip: null, code: 'credential_expired' });
    trail.record(context, { action: 'session.delete', target: 's1', outcome: 'success' });
    await trail.close(Date.now() + 1_000);
    assert.deepEqual(store.rows.map((row) => row.outcome).slice(2), ['success', 'credential_expired']);
  });

  test('pages newest first, with an opaque cursor, and null after the last', async () => {
    const { trail } = setup();
    for (let i = 0; i < 5; i += 1)
      trail.record(
        { ...context, actor: i % 2 === 0 ? 'key:a' : 'key:b' },
        { action: 'session.create', target: `s${i}`, outcome: 'success' },
      );
    await trail.flush();
    const first = await trail.list({ limit: 2 });
    assert.ok(first.ok);
    assert.deepEqual(
      first.entries.map((entry) => entry.target),
      ['s4', 's3'],
    );
    assert.equal('id' in first.entries[0], false);
    assert.ok(first.nextCursor !== null);
    const second = await trail.list({ limit: 2, cursor: first.nextCursor });
    assert.ok(second.ok);
    assert.deepEqual(
      second.entries.map((entry) => entry.target),
      ['s2', 's1'],
    );
    const last = await trail.list({ limit: 2, cursor: second.nextCursor ?? undefined });
    assert.ok(last.ok && last.nextCursor === null && last.entries.length === 1);
    const ofA = await trail.list({ actor: 'key:a' });
    assert.ok(ofA.ok && ofA.entries.length === 3 && ofA.nextCursor === null);
  });

  test('a limit outside 1 to 1000 and a cursor not ours are refused', async () => {
    const { trail } = setup();
    for (const limit of [0, 1001, 1.5, Number.NaN]) assert.equal((await trail.list({ limit })).ok, false, String(limit));
    for (const cursor of ['', 'abc', encodeCursor('0'), Buffer.from('audit:1 OR 1=1').toString('base64url'), 'x'.repeat(100)]) {
      assert.equal((await trail.list({ cursor })).ok, false, cursor);
    }
    assert.equal(decodeCursor(encodeCursor('9223372036854775807')), '9223372036854775807');
  });
});
