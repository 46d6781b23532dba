/**
 * Roll-ups in PostgreSQL (migration 011): one row per session, resolution and block of
 * `bucketsPerBlock` buckets, holding only its occupied buckets (rollup-block.ts's layout).
 *
 * Writing runs inside the commit's transaction (sample-store.ts), after its sessions' rows are
 * locked by the counters' update: the blocks a commit touches are read FOR UPDATE, merged with
 * its buckets (mergeBucket: exact but for float rounding of sums) and written back, so a late
 * `t` merges into a stored bucket, and a commit that fails or is fenced leaves no trace.
 *
 * Reading tells whether a session's roll-ups are complete: every committed sample of it is in
 * them exactly when sessions.rollup_sample_count equals sample_count, read in the same statement
 * as the blocks. Sessions stored before migration 011, sessions written while roll-ups were off
 * (WRITE_ROLLUPS) or by an older instance during a rolling deploy, and sessions whose producer
 * sprayed `t` (rollup-summaries.ts) are not, and their readers use raw samples.
 */
import type pg from 'pg';
import { type BucketSummary, mergeBucket } from '../aggregates/bucket-summary.ts';
import { copyOutOf } from './database.ts';
import { decodeBlock, encodeBlock } from './rollup-block.ts';
import { blockSpanOf, type RollupBlock, type SessionRollups } from './rollup-summaries.ts';
import { isSessionId } from './session-repository.ts';

/** Blocks an upsert statement writes. */
const upsertBlocks = 4_096;

const keyOf = (sessionId: string, resolutionMs: number, blockT: number) => `${sessionId}|${resolutionMs}|${blockT}`;

/** `stored` with `added` merged in, both in ascending t; the result too. */
function mergeBuckets(stored: BucketSummary[], added: readonly BucketSummary[]): BucketSummary[] {
  const byT = new Map(stored.map((bucket) => [bucket.t, bucket]));
  for (const bucket of added) {
    const before = byT.get(bucket.t);
    if (before) mergeBucket(before, bucket);
    else byT.set(bucket.t, bucket);
  }
  return [...byT.values()].sort((a, b) => a.t - b.t);
}

/**
 * Merges the sessions' blocks into the stored ones, on `client` inside the commit's
 * transaction, which holds the sessions' rows locked: no other writer touches their roll-ups
 * until it ends.
 */
export async function writeRollups(client: pg.ClientBase, sessions: readonly SessionRollups[]): Promise<void> {
  const rows: Array<{ sessionId: string; channels: number; block: RollupBlock }> = [];
  for (const { sessionId, channels, blocks } of sessions) for (const block of blocks ?? []) rows.push({ sessionId, channels, block });
  if (rows.length === 0) return;
  const ids = rows.map((row) => row.sessionId);
  const resolutions = rows.map((row) => row.block.resolutionMs);
  const blockTs = rows.map((row) => row.block.blockT);
  // Blocks are small (64 buckets), so their hex text costs little here; reads of many use COPY (readRollups).
  const { rows: stored } = await client.query<{ session_id: string; resolution_ms: number; block_t: number; summary: Buffer }>({
    text: `SELECT r.session_id::text AS session_id, r.resolution_ms, r.block_t, r.summary FROM sample_rollups AS r
             JOIN unnest($1::uuid[], $2::integer[], $3::float8[]) AS k(session_id, resolution_ms, block_t)
               ON r.session_id = k.session_id AND r.resolution_ms = k.resolution_ms AND r.block_t = k.block_t
           FOR UPDATE OF r`,
    values: [ids, resolutions, blockTs],
  });
  const storedByKey = new Map(stored.map((row) => [keyOf(row.session_id, row.resolution_ms, row.block_t), row.summary]));
  const summaries = rows.map(({ sessionId, channels, block }) => {
    const before = storedByKey.get(keyOf(sessionId, block.resolutionMs, block.blockT));
    if (before === undefined) return encodeBlock(block.buckets, channels);
    const decoded = decodeBlock(before);
    if (decoded.channels !== channels) throw new Error(`a roll-up block of ${decoded.channels} channels for a session of ${channels}`);
    return encodeBlock(mergeBuckets(decoded.buckets, block.buckets), channels);
  });
  // A parameter per block rather than a bytea[]: pg sends a Buffer parameter as its bytes, an array of them as hex
  // text. A statement takes at most 65,535 parameters.
  for (let from = 0; from < rows.length; from += upsertBlocks) {
    const part = rows.slice(from, from + upsertBlocks);
    const values = part.map((_, i) => `($${4 * i + 1}::uuid, $${4 * i + 2}::integer, $${4 * i + 3}::float8, $${4 * i + 4}::bytea)`);
    await client.query(
      `INSERT INTO sample_rollups (session_id, resolution_ms, block_t, summary) VALUES ${values.join(', ')}
       ON CONFLICT (session_id, resolution_ms, block_t) DO UPDATE SET summary = excluded.summary`,
      part.flatMap((row, i) => [row.sessionId, row.block.resolutionMs, row.block.blockT, summaries[from + i]]),
    );
  }
}

/** A session's roll-up buckets at one resolution, and whether they hold every committed sample of it. */
export interface RollupRead {
  /** False: some committed samples are not in the roll-ups (see the file's comment); read raw samples instead. */
  complete: boolean;
  /** In ascending t, each bucket's `t` its aligned start. */
  buckets: BucketSummary[];
}

/**
 * The buckets at `resolutionMs` (one of rollupResolutionsMs) that lie wholly in [fromT, toT),
 * so every sample they count has fromT <= t < toT; what lies in the partial buckets at a cut
 * edge is the caller's to read from raw samples. `complete` is read in the same snapshot as
 * the buckets. A session that does not exist reads as complete and empty.
 */
export async function readRollups(pool: pg.Pool, sessionId: string, resolutionMs: number, fromT: number, toT: number): Promise<RollupRead> {
  const rows = decodeRollupRows(await copyOutOf(pool, rollupsQuery(sessionId, resolutionMs, fromT, toT)));
  const buckets: BucketSummary[] = [];
  for (const { summary } of rows) {
    if (summary === null) continue;
    for (const bucket of decodeBlock(summary).buckets) if (bucket.t >= fromT && bucket.t + resolutionMs <= toT) buckets.push(bucket);
  }
  return { complete: rows[0]?.complete ?? true, buckets };
}

/**
 * As a COPY, so the blocks come over as their bytes (an hour at 600 ms is ~1.2 MB of them), with
 * the values written into the text as sample-store.ts's chunk pages do: a checked UUID, checked
 * numbers. A block overlaps [fromT, toT) when block_t < toT and block_t + span > fromT.
 */
function rollupsQuery(sessionId: string, resolutionMs: number, fromT: number, toT: number): string {
  if (!isSessionId(sessionId)) throw new Error(`not a session id: ${sessionId}`);
  if (!Number.isSafeInteger(resolutionMs) || resolutionMs <= 0) throw new Error(`not a resolution: ${resolutionMs}`);
  if (Number.isNaN(fromT) || Number.isNaN(toT)) throw new Error(`times must be numbers: ${fromT}, ${toT}`);
  return `COPY (SELECT s.rollup_sample_count = s.sample_count, r.summary FROM sessions AS s
                  LEFT JOIN sample_rollups AS r
                    ON r.session_id = s.id AND r.resolution_ms = ${resolutionMs}
                   AND r.block_t > '${fromT - blockSpanOf(resolutionMs)}'::float8 AND r.block_t < '${toT}'::float8
                 WHERE s.id = '${sessionId}' ORDER BY r.block_t) TO STDOUT (FORMAT binary)`;
}

const copySignature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** The rows of rollupsQuery's output: (complete, summary or null). Every length is checked before it is used. */
function decodeRollupRows(body: Buffer): Array<{ complete: boolean; summary: Buffer | null }> {
  const corrupt = (why: string) => new Error(`corrupt binary COPY output of roll-ups: ${why}`);
  if (body.length < copySignature.length + 8 || !body.subarray(0, copySignature.length).equals(copySignature)) throw corrupt('no header');
  let at = copySignature.length + 8 + body.readInt32BE(copySignature.length + 4);
  const rows: Array<{ complete: boolean; summary: Buffer | null }> = [];
  for (;;) {
    if (at + 2 > body.length) throw corrupt('no end marker');
    const fields = body.readInt16BE(at);
    if (fields === -1) return rows;
    if (fields !== 2 || at + 11 > body.length || body.readInt32BE(at + 2) !== 1) throw corrupt(`an unexpected row at byte ${at}`);
    const complete = body[at + 6] === 1;
    const bytes = body.readInt32BE(at + 7);
    at += 11;
    if (bytes > body.length - at || bytes < -1) throw corrupt(`a block of ${bytes} bytes at byte ${at}`);
    rows.push({ complete, summary: bytes === -1 ? null : body.subarray(at, at + bytes) });
    at += Math.max(bytes, 0);
  }
}
