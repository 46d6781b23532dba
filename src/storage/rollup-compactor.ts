/**
 * Folds the parts of roll-up blocks (rollup-store.ts) into one part each, and rolls the pending
 * finest parts up into the coarser resolutions, off the ingest path: commits only append, at
 * the finest resolution, so without it a block would hold a part per commit that touched it, a
 * read of an old range would merge them all again, and a coarse read would roll them all up.
 *
 * A batch is one transaction: it claims up to `batchBlocks` blocks with a pending part (the
 * partial index of migration 012), deletes every part of them with DELETE ... RETURNING, and
 * inserts the merge of what it deleted as one part, not pending; for a finest block, also the
 * coarser buckets of the pending parts it deleted, as pending parts of the coarser blocks
 * (folded by a later batch). Why that is safe with writers appending and other instances
 * compacting at the same time:
 * - A part is deleted by exactly one transaction (a row lock decides; the loser's DELETE skips
 *   a row already deleted), and what a transaction inserts is made of exactly the parts it
 *   deleted, and commits with the delete, or neither does. So every sample is in exactly one
 *   visible part of each resolution (a pending finest part standing for the coarser ones)
 *   before and after any batch: nothing is lost or counted twice, whoever races.
 * - A part appended after the DELETE's snapshot is not deleted: it stays, pending, for the
 *   next batch. Writers never read, lock or update parts, so they never wait for a compactor.
 * - A reader's one statement sees either all the parts or their merge, never both.
 * - Two compactors claim a block by a transaction-scoped advisory lock on its key, tried
 *   without waiting: the second skips it instead of redoing the work or waiting on row locks
 *   (and deadlocking over the order of them). The lock only saves work; the points above are
 *   what make racing safe.
 *
 * Every instance runs one, with no leader to elect. A failed batch changes nothing, is logged,
 * and is tried again at the next interval.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { type BucketSummary, bucketStart, mergeBucket } from '../aggregates/bucket-summary.ts';
import { Rounds } from '../rounds.ts';
import { withPooledClient } from './database.ts';
import { decodeBlock, encodeBlock } from './rollup-block.ts';
import { insertParts, type RollupPart } from './rollup-store.ts';
import { blockSpanOf, coarsen, rollupResolutionsMs } from './rollup-summaries.ts';

/** Distinguishes the compactor's advisory locks from any other use of the same 64-bit keys. */
const lockSeed = 0x726f6c6c;

/**
 * The blocks a batch takes: those of the first `$1` with a pending part whose lock it gets.
 * The lock is tried outside the subquery, which PostgreSQL never pushes a volatile function
 * into, so only the blocks picked are tried.
 */
const claimBlocks = `SELECT b.session_id::text AS session_id, b.resolution_ms, b.block_t
  FROM (SELECT DISTINCT session_id, resolution_ms, block_t FROM sample_rollups WHERE pending LIMIT $1) AS b
 WHERE pg_try_advisory_xact_lock(hashtextextended(b.session_id::text || '/' || b.resolution_ms || '/' || b.block_t, ${lockSeed}))`;

const deleteParts = `DELETE FROM sample_rollups AS r
 USING unnest($1::uuid[], $2::integer[], $3::float8[]) AS b(session_id, resolution_ms, block_t)
 WHERE r.session_id = b.session_id AND r.resolution_ms = b.resolution_ms AND r.block_t = b.block_t
 RETURNING r.session_id::text AS session_id, r.resolution_ms, r.block_t, r.pending, r.summary`;

interface BlockKey {
  session_id: string;
  resolution_ms: number;
  block_t: number;
}

export interface CompactedBatch {
  /** Blocks claimed, each left with one part, not pending. */
  blocks: number;
  /** Parts deleted. */
  parts: number;
  /** Pending parts of coarser blocks inserted, rolled up from finest ones: work for the next batch. */
  rolledUp: number;
}

/** One merged part, not pending, from the parts of one block, whatever their order. */
function foldParts(parts: readonly RollupPart[]): RollupPart {
  const byT = new Map<number, BucketSummary>();
  let channels = 0;
  for (const part of parts) {
    const block = decodeBlock(part.summary);
    if (channels !== 0 && block.channels !== channels) {
      throw new Error(`parts of ${channels} and ${block.channels} channels in one roll-up block of session ${part.sessionId}`);
    }
    channels = block.channels;
    for (const bucket of block.buckets) {
      const before = byT.get(bucket.t);
      if (before === undefined) byT.set(bucket.t, bucket);
      else mergeBucket(before, bucket);
    }
  }
  const buckets = [...byT.values()].sort((a, b) => a.t - b.t);
  const { sessionId, resolutionMs, blockT } = parts[0];
  return { sessionId, resolutionMs, blockT, pending: false, summary: encodeBlock(buckets, channels) };
}

/** The buckets of the pending finest parts at each coarser resolution, as pending parts of the coarser blocks. */
function rollUp(parts: readonly RollupPart[]): RollupPart[] {
  const pending = parts.filter((part) => part.pending);
  if (pending.length === 0) return [];
  const decoded = pending.map((part) => decodeBlock(part.summary));
  const fine = decoded.flatMap((block) => block.buckets);
  const { sessionId } = parts[0];
  return rollupResolutionsMs.slice(1).flatMap((resolutionMs) => {
    const byBlock = new Map<number, BucketSummary[]>();
    for (const bucket of coarsen(fine, resolutionMs)) {
      const blockT = bucketStart(bucket.t, blockSpanOf(resolutionMs));
      byBlock.set(blockT, [...(byBlock.get(blockT) ?? []), bucket]);
    }
    return [...byBlock].map(([blockT, buckets]) => ({
      sessionId,
      resolutionMs,
      blockT,
      pending: true,
      summary: encodeBlock(buckets, decoded[0].channels),
    }));
  });
}

/**
 * What replaces the parts of one block: their fold and, for a finest block, its pending parts
 * rolled up into the coarser resolutions.
 */
export function compactBlock(parts: readonly RollupPart[]): RollupPart[] {
  const finest = parts[0].resolutionMs === rollupResolutionsMs[0];
  return [foldParts(parts), ...(finest ? rollUp(parts) : [])];
}

/** Compacts one batch of at most `batchBlocks` blocks, in one transaction on `client`. */
export async function compactBatch(client: pg.ClientBase, batchBlocks: number): Promise<CompactedBatch> {
  await client.query('BEGIN');
  try {
    const { rows: claimed } = await client.query<BlockKey>(claimBlocks, [batchBlocks]);
    if (claimed.length === 0) {
      await client.query('COMMIT');
      return { blocks: 0, parts: 0, rolledUp: 0 };
    }
    const { rows: deleted } = await client.query<BlockKey & { pending: boolean; summary: Buffer }>(deleteParts, [
      claimed.map((b) => b.session_id),
      claimed.map((b) => b.resolution_ms),
      claimed.map((b) => b.block_t),
    ]);
    const byBlock = new Map<string, RollupPart[]>();
    for (const row of deleted) {
      const key = `${row.session_id}/${row.resolution_ms}/${row.block_t}`;
      const part = {
        sessionId: row.session_id,
        resolutionMs: row.resolution_ms,
        blockT: row.block_t,
        pending: row.pending,
        summary: row.summary,
      };
      const parts = byBlock.get(key);
      if (parts === undefined) byBlock.set(key, [part]);
      else parts.push(part);
    }
    const inserted = [...byBlock.values()].flatMap(compactBlock);
    const insert = insertParts(inserted, 1);
    await client.query(insert.sql, insert.values);
    await client.query('COMMIT');
    return { blocks: byBlock.size, parts: deleted.length, rolledUp: inserted.filter((part) => part.pending).length };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

export interface RollupCompactorOptions {
  pool: pg.Pool;
  /** Between two rounds, each of which compacts batch after batch until one comes back short and rolled nothing up. */
  intervalMs: number;
  /** Blocks a batch: up to ~13 KB of parts each at three channels. Default 256. */
  batchBlocks?: number;
  log?: Logger;
}

/** The compactor as a Part (lifecycle.ts) of the app: a round every `intervalMs`. */
export class RollupCompactor {
  readonly name = 'roll-up compactor';
  private readonly batchBlocks: number;
  private readonly rounds: Rounds<CompactedBatch>;

  constructor(private readonly options: RollupCompactorOptions) {
    this.batchBlocks = options.batchBlocks ?? 256;
    this.rounds = new Rounds(() => this.round(), options.intervalMs);
  }

  /** The first round at a random point of the first interval, so that instances started together do not compact together. */
  async start(): Promise<void> {
    this.rounds.start();
  }

  /** Compacts until a batch has nothing left to do, or joins the round under way. Rejects with a failed batch's error, once logged. */
  compact(): Promise<CompactedBatch> {
    return this.rounds.run();
  }

  private async round(): Promise<CompactedBatch> {
    const total = { blocks: 0, parts: 0, rolledUp: 0 };
    try {
      while (!this.rounds.stopped) {
        const batch = await withPooledClient(this.options.pool, (client) => compactBatch(client, this.batchBlocks));
        total.blocks += batch.blocks;
        total.parts += batch.parts;
        total.rolledUp += batch.rolledUp;
        if (batch.blocks < this.batchBlocks && batch.rolledUp === 0) break;
      }
      this.options.log?.debug(total, 'roll-up blocks compacted');
      return total;
    } catch (error) {
      this.options.log?.warn({ err: error }, 'compacting roll-ups failed; the next round tries again');
      throw error;
    }
  }

  /** Stops compacting; a round under way ends after its current batch. */
  async close(_deadline: number): Promise<void> {
    await this.rounds.stop();
  }
}
