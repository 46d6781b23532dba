/**
 * The roll-up compactor on the real PostgreSQL: folding the parts commits appended leaves one
 * folded part per block and the same reads; a compaction held open in the middle blocks neither
 * a writer appending to its block nor a reader, and a second compactor skips its block; and
 * writers, two compactors and readers all at once lose and duplicate nothing, every read exact.
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
import { assertSameBuckets, type PlainSample, referenceBuckets } from '../support/rollup-reference.ts';

const finest = rollupResolutionsMs[0];

/** Every resolution's roll-ups of the session equal the reference of `committed`, read as one range. */
async function assertExact(pool: Pool, sessionId: string, committed: readonly PlainSample[], what: string): Promise<void> {
  for (const resolutionMs of rollupResolutionsMs) {
    const read = await readRollups(pool, sessionId, resolutionMs, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
    assert.equal(read.complete, true, what);
    assertSameBuckets(read.buckets, referenceBuckets(committed, 1, resolutionMs), `${what}, at ${resolutionMs} ms`);
  }
}

async function layout(pool: Pool, sessionId: string): Promise<{ rows: number; blocks: number; unfolded: number }> {
  const { rows } = await pool.query(
    `SELECT count(*)::int AS rows, count(DISTINCT (resolution_ms, block_t))::int AS blocks,
            count(*) FILTER (WHERE NOT folded)::int AS unfolded
       FROM sample_rollups WHERE session_id = $1`,
    [sessionId],
  );
  return rows[0];
}

/** `count` commits of `size` samples, t mostly rising by 7 ms with some jumps back (late) over a few blocks. */
function commitsOf(count: number, size: number, firstSeq = 1): PlainSample[][] {
  const steps = fc.sample(fc.integer({ min: 0, max: 99 }), { seed: fuzzSeed, numRuns: count * size });
  let t = 10 * blockSpanOf(finest);
  return Array.from({ length: count }, (_, c) =>
    samplesAt(
      firstSeq + c * size,
      Array.from({ length: size }, (__, i) => {
        const roll = steps[c * size + i];
        t += 7;
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
  assert.deepEqual(folded, { blocks: before.blocks, parts: before.rows });
  assert.deepEqual(await layout(pool, sessionId), { rows: before.blocks, blocks: before.blocks, unfolded: 0 });
  await assertExact(pool, sessionId, committed, 'folded');

  // A late t appends to a folded block; folding again merges the two.
  const late = samplesAt(committed.length + 1, [10 * blockSpanOf(finest) + 1]);
  await commit(store, sessionId, late);
  assert.equal((await layout(pool, sessionId)).unfolded, rollupResolutionsMs.length);
  await compactor.compact();
  assert.deepEqual(await layout(pool, sessionId), { rows: before.blocks, blocks: before.blocks, unfolded: 0 });
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
  assert.deepEqual(await withPooledClient(pool, (client) => compactBatch(client, 100)), { blocks: 0, parts: 0 });

  open();
  assert.deepEqual(await held, { blocks: rollupResolutionsMs.length, parts: 2 * rollupResolutionsMs.length });
  // The part appended meanwhile is not lost: it sits beside the fold, unfolded, until the next batch.
  assert.deepEqual(await layout(pool, sessionId), {
    rows: 2 * rollupResolutionsMs.length,
    blocks: rollupResolutionsMs.length,
    unfolded: rollupResolutionsMs.length,
  });
  await assertExact(pool, sessionId, [...first, ...second, ...third], 'after the compaction');
  await withPooledClient(pool, (client) => compactBatch(client, 100));
  assert.equal((await layout(pool, sessionId)).rows, rollupResolutionsMs.length);
  await assertExact(pool, sessionId, [...first, ...second, ...third], 'folded');
});

test('a writer, two compactors and a reader at once: nothing lost or counted twice, every read exact', async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  const commits = commitsOf(60, 25);
  // Half stored before the race, so the reader has parts to see folded from the start.
  const committed: PlainSample[] = [];
  for (const samples of commits.slice(0, 30)) {
    await commit(store, sessionId, samples);
    committed.push(...samples);
  }
  let writing = true;
  const writer = (async () => {
    for (const samples of commits.slice(30)) {
      await commit(store, sessionId, samples);
      committed.push(...samples);
    }
    writing = false;
  })();
  const folded = [0, 0];
  const compactor = async (k: number) => {
    while (writing) {
      const batch = await withPooledClient(pool, (client) => compactBatch(client, 2));
      folded[k] += batch.parts - batch.blocks;
    }
  };
  let reads = 0;
  const reader = async () => {
    // Reads only the part committed before the race: its buckets must stay exact while parts fold under it.
    const stable = committed.slice();
    const toT = Math.min(
      ...commits
        .slice(30)
        .flat()
        .map((s) => s.t),
    );
    const edge = bucketBelow(toT);
    while (writing) {
      const read = await readRollups(pool, sessionId, finest, Number.NEGATIVE_INFINITY, edge);
      assert.equal(read.complete, true);
      assertSameBuckets(
        read.buckets,
        referenceBuckets(stable, 1, finest).filter((b) => b.t + finest <= edge),
        `read ${reads}`,
      );
      reads++;
    }
  };
  await Promise.all([writer, compactor(0), compactor(1), reader()]);
  assert.ok(folded[0] + folded[1] > 0, `the compactors folded parts during the race: ${folded}`);
  assert.ok(reads > 0);
  await new RollupCompactor({ pool, intervalMs: 60_000 }).compact();
  const { rows, blocks } = await layout(pool, sessionId);
  assert.equal(rows, blocks);
  await assertExact(pool, sessionId, committed, 'after the race');
});

/** The start of the finest bucket holding `t`: buckets wholly below it hold no later sample. */
const bucketBelow = (t: number) => Math.floor(t / finest) * finest;
