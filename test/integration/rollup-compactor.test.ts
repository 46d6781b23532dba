/**
 * The roll-up compactor on the real PostgreSQL: folding the parts commits appended (and rolling
 * the finest up into the coarser resolutions) leaves one part per block and the same reads; a
 * compaction held open in the middle blocks neither a writer appending to its block nor a
 * reader, and a second compactor skips its block; a writer and two compactors at once lose and
 * duplicate nothing; and reads while two compactors work are exact at every resolution.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { type Pool, withPooledClient } from '../../src/storage/database.ts';
import { compactBatch, RollupCompactor } from '../../src/storage/rollup-compactor.ts';
import { readRollups } from '../../src/storage/rollup-store.ts';
import { blockSpanOf, rollupResolutionsMs } from '../../src/storage/rollup-summaries.ts';
import { fuzzSeed } from '../support/fuzz.ts';
import { commit, samplesAt, storeWithSession } from '../support/rollup-commits.ts';
import { assertSameBuckets, bucketsOfParts, type PlainSample, referenceBuckets } from '../support/rollup-reference.ts';

const finest = rollupResolutionsMs[0];

/** Every resolution's roll-ups of the session equal the reference of `committed`, read as one range. */
async function assertExact(pool: Pool, sessionId: string, committed: readonly PlainSample[], what: string): Promise<void> {
  for (const resolutionMs of rollupResolutionsMs) {
    const read = await readRollups(pool, sessionId, resolutionMs, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
    assert.equal(read.complete, true, what);
    assertSameBuckets(
      bucketsOfParts(read.parts, resolutionMs, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, 1),
      referenceBuckets(committed, 1, resolutionMs),
      `${what}, at ${resolutionMs} ms`,
    );
  }
}

async function layout(pool: Pool, sessionId: string): Promise<{ rows: number; blocks: number; pending: number }> {
  const { rows } = await pool.query(
    `SELECT count(*)::int AS rows, count(DISTINCT (resolution_ms, block_t))::int AS blocks,
            count(*) FILTER (WHERE pending)::int AS pending
       FROM sample_rollups WHERE session_id = $1`,
    [sessionId],
  );
  return rows[0];
}

/** `count` commits of `size` samples, t mostly rising by `stepMs` with some jumps back (late) over a few blocks. */
function commitsOf(count: number, size: number, stepMs = 7, firstSeq = 1): PlainSample[][] {
  const steps = fc.sample(fc.integer({ min: 0, max: 99 }), { seed: fuzzSeed, numRuns: count * size });
  let t = 10 * blockSpanOf(finest);
  return Array.from({ length: count }, (_, c) =>
    samplesAt(
      firstSeq + c * size,
      Array.from({ length: size }, (__, i) => {
        const roll = steps[c * size + i];
        t += stepMs;
        return roll < 4 ? t - roll * blockSpanOf(finest) - roll : t;
      }),
    ),
  );
}

test("folding each block's parts leaves one folded part per block and the same reads, late t included", async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  const commits = commitsOf(40, 60);
  for (const samples of commits) await commit(store, sessionId, samples);
  const committed = commits.flat();
  await assertExact(pool, sessionId, committed, 'parts as appended');
  const before = await layout(pool, sessionId);
  assert.ok(before.rows > before.blocks, `several parts per block: ${JSON.stringify(before)}`);

  const compactor = new RollupCompactor({ pool, intervalMs: 60_000, batchBlocks: 3 });
  const folded = await compactor.compact();
  assert.ok(folded.rolledUp > 0);
  const after = await layout(pool, sessionId);
  assert.deepEqual(after, { rows: after.blocks, blocks: after.blocks, pending: 0 });
  assert.ok(after.blocks > before.blocks, 'the coarser resolutions are rolled up');
  await assertExact(pool, sessionId, committed, 'folded');

  // A late t appends to a folded block; compacting again merges the two and rolls it up.
  const late = samplesAt(committed.length + 1, [10 * blockSpanOf(finest) + 1]);
  await commit(store, sessionId, late);
  assert.equal((await layout(pool, sessionId)).pending, 1);
  await assertExact(pool, sessionId, [...committed, ...late], 'a late part pending');
  await compactor.compact();
  assert.deepEqual(await layout(pool, sessionId), after);
  await assertExact(pool, sessionId, [...committed, ...late], 'folded again');
  await compactor.close(Date.now());
});

/** A client whose queries run as `client`'s, but that waits for `gate` once the DELETE of a compaction has answered. */
function pausingAfterDelete(client: pg.ClientBase, reached: () => void, gate: Promise<void>): pg.ClientBase {
  return {
    query: async (...args: Parameters<pg.ClientBase['query']>) => {
      // biome-ignore lint/suspicious/noExplicitAny: forwarding whatever overload compactBatch called
      const result = await (client.query as any)(...args);
      if (typeof args[0] === 'string' && args[0].startsWith('DELETE FROM sample_rollups')) {
        reached();
        await gate;
      }
      return result;
    },
  } as unknown as pg.ClientBase;
}

test('a compaction held open after its DELETE blocks no writer or reader, and a second compactor skips its block', async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  const first = samplesAt(1, [5, 50, 90]);
  const second = samplesAt(4, [10, 70]);
  await commit(store, sessionId, first);
  await commit(store, sessionId, second);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let paused!: () => void;
  const deleted = new Promise<void>((resolve) => {
    paused = resolve;
  });
  const held = withPooledClient(pool, (client) => compactBatch(pausingAfterDelete(client, paused, gate), 100));
  await deleted;

  // The writer appends to the block the compaction deleted the parts of, without waiting for it.
  const third = samplesAt(6, [20, 80]);
  await commit(store, sessionId, third);
  // The reader's snapshot holds the deleted parts (not yet committed) and the new one.
  await assertExact(pool, sessionId, [...first, ...second, ...third], 'while the compaction is open');
  // Another compactor cannot claim the block, so it leaves it, and everything else, as it is.
  assert.deepEqual(await withPooledClient(pool, (client) => compactBatch(client, 100)), { blocks: 0, parts: 0, rolledUp: 0 });

  open();
  // The finest block's two parts folded, and rolled up into one pending part of each coarser block.
  assert.deepEqual(await held, { blocks: 1, parts: 2, rolledUp: rollupResolutionsMs.length - 1 });
  // The part appended meanwhile is not lost: it sits beside the fold, pending, until the next batch.
  assert.deepEqual(await layout(pool, sessionId), { rows: rollupResolutionsMs.length + 1, blocks: rollupResolutionsMs.length, pending: 3 });
  await assertExact(pool, sessionId, [...first, ...second, ...third], 'after the compaction');
  await new RollupCompactor({ pool, intervalMs: 60_000 }).compact();
  assert.deepEqual(await layout(pool, sessionId), { rows: rollupResolutionsMs.length, blocks: rollupResolutionsMs.length, pending: 0 });
  await assertExact(pool, sessionId, [...first, ...second, ...third], 'folded');
});

test('a writer and two compactors at once lose and count twice nothing; reads while parts fold and roll up stay exact', async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  // t over ~25 minutes: tens of blocks at 600 ms, tens of buckets at 1 min.
  const commits = commitsOf(60, 25, 997);
  const committed = commits.slice(0, 30).flat();
  for (const samples of commits.slice(0, 30)) await commit(store, sessionId, samples);
  let writing = true;
  const writer = (async () => {
    for (const samples of commits.slice(30)) {
      await commit(store, sessionId, samples);
      committed.push(...samples);
    }
    writing = false;
  })();
  const compacted = [0, 0];
  const compactWhile = async (k: number, going: () => boolean) => {
    while (going()) {
      const batch = await withPooledClient(pool, (client) => compactBatch(client, 2));
      compacted[k] += batch.parts;
      if (batch.parts === 0 && !writing) return;
    }
  };
  await Promise.all([writer, compactWhile(0, () => writing), compactWhile(1, () => writing)]);
  // At least the first batch compacts, since it starts with 30 commits' parts pending.
  assert.ok(compacted[0] + compacted[1] > 0, `the compactors compacted during the writes: ${compacted}`);
  await assertExact(pool, sessionId, committed, 'after the race');

  // Writes done: two compactors work through what is left, a block at a time, while reads of every resolution check each answer.
  assert.ok((await layout(pool, sessionId)).pending > 0);
  let compacting = true;
  const compactors = Promise.all([compactWhile(0, () => true), compactWhile(1, () => true)]).then(() => {
    compacting = false;
  });
  let reads = 0;
  while (compacting) {
    const resolutionMs = rollupResolutionsMs[reads % rollupResolutionsMs.length];
    const read = await readRollups(pool, sessionId, resolutionMs, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
    assertSameBuckets(
      bucketsOfParts(read.parts, resolutionMs, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, 1),
      referenceBuckets(committed, 1, resolutionMs),
      `read ${reads} at ${resolutionMs} ms`,
    );
    reads++;
  }
  await compactors;
  assert.ok(reads > 0);
  const { rows, blocks, pending } = await layout(pool, sessionId);
  assert.deepEqual({ rows, pending }, { rows: blocks, pending: 0 });
  await assertExact(pool, sessionId, committed, 'compacted');
});
