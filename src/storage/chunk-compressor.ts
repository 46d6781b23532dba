/**
 * Replaces sealed chunks with compressed ones (payload_layout 2, chunk-compression.ts), off
 * the ingest path: runs of consecutive chunks of a session, up to `groupSamples` samples, each
 * become one chunk. Fewer, bigger rows matter as much as the encoding: a 1 kHz session commits
 * a chunk of ~20 samples per batch, whose row, TOAST pointer and index entries weigh as much
 * as its samples compressed.
 *
 * Sealed: every chunk of an ended session, and a chunk of an open one once its session's lastT
 * is `afterMs` past its maxT (the session's own clock: a producer's t, not this server's, says
 * how old a sample is). A chunk with a late t is taken with its run all the same; sealing only
 * decides when, never whether a chunk may be compressed. An open session's last run waits
 * until it holds `groupSamples`.
 *
 * A group is one transaction: a transaction advisory lock on the session, tried without
 * waiting (another instance's compressor has it: skip it this round), then
 * `COPY (DELETE ... RETURNING ...)` of every chunk in the run's seq range, and one INSERT of
 * what they held, compressed. Why that is safe with writers, readers and other compressors:
 * - Writers only insert chunks above the session's lastSeq, never inside a sealed run, and
 *   never wait for the compressor (it locks no session row).
 * - What is inserted is exactly what was deleted, and commits with the delete or not at all,
 *   so no sample is lost or stored twice; a reader's one statement sees the old chunks or the
 *   new one, never both, and readers paging by seq (sample-store.ts) take each sample once.
 * - A chunk that cannot be decoded is left as it is, counted and logged once, and the runs
 *   around it go on without it.
 */
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import type { Logger } from 'pino';
import { Rounds } from '../rounds.ts';
import { SampleBatch } from '../samples/sample-batch.ts';
import { CorruptChunkError } from './bit-stream.ts';
import { batchFromPayload, decodeCopyBinary } from './chunk-codec.ts';
import { compressBatch, compressedChunkMaxSamples } from './chunk-compression.ts';
import { withPooledClient } from './database.ts';

/** Distinguishes the compressor's advisory locks from any other use of the same 64-bit keys. */
const lockSeed = 0x636f6d70;
/** Chunks listed per query of the work list. */
const listChunks = 4096;

const listSealed = `SELECT c.session_id::text AS session_id, c.last_seq::float8 AS last_seq, c.sample_count, s.status = 'ended' AS ended
  FROM sample_chunks c JOIN sessions s ON s.id = c.session_id
 WHERE c.payload_layout < 2 AND (c.session_id, c.last_seq) > ($1::uuid, $2::bigint)
   AND (s.status = 'ended' OR c.max_t <= s.last_t - $3::float8)
 ORDER BY c.session_id, c.last_seq LIMIT ${listChunks}`;

interface Listed {
  session_id: string;
  last_seq: number;
  sample_count: number;
  ended: boolean;
}

/** A run of one session's chunks to compress: those with last_seq in [fromLastSeq, toLastSeq]. */
export interface ChunkGroup {
  sessionId: string;
  fromLastSeq: number;
  toLastSeq: number;
}

export interface CompressedGroup {
  chunks: number;
  samples: number;
  bytesBefore: number;
  bytesAfter: number;
}

/** The batches joined into one, in seq order. */
function joined(batches: readonly SampleBatch[]): SampleBatch {
  if (batches.length === 1) return batches[0];
  const count = batches.reduce((sum, batch) => sum + batch.count, 0);
  const { channelCount } = batches[0];
  const out = SampleBatch.allocate(count, channelCount);
  for (let column = 0; column < channelCount + 2; column++) {
    let at = column * count;
    for (const batch of batches) {
      if (batch.channelCount !== channelCount) throw new CorruptChunkError(`chunks of ${channelCount} and ${batch.channelCount} channels`);
      out.columns.set(batch.columns.subarray(column * batch.count, (column + 1) * batch.count), at);
      at += batch.count;
    }
  }
  return out;
}

async function copyOn(client: pg.ClientBase, sql: string): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of client.query(copyStreams.to(sql))) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

/**
 * Compresses one group in one transaction on `client`; null when another compressor holds the
 * session. A chunk that cannot be decoded rolls the group back and throws a CorruptChunkError
 * naming it in `lastSeq`.
 */
export async function compressGroup(client: pg.ClientBase, group: ChunkGroup): Promise<CompressedGroup | null> {
  const { sessionId, fromLastSeq, toLastSeq } = group;
  if (!/^[0-9a-f-]{36}$/i.test(sessionId) || !Number.isSafeInteger(fromLastSeq) || !Number.isSafeInteger(toLastSeq)) {
    throw new Error(`not a chunk group: ${sessionId} ${fromLastSeq}-${toLastSeq}`);
  }
  await client.query('BEGIN');
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock(hashtextextended($1, $2)) AS locked', [
      sessionId,
      lockSeed,
    ]);
    if (!rows[0].locked) {
      await client.query('ROLLBACK');
      return null;
    }
    // The run keeps the commit time of its newest chunk: retention (migration 015) goes by it,
    // so compressing never makes a sample expire before its time nor keeps it much past it.
    // And every chunk must have the session's channels: a payload cut by whole columns still
    // decodes, to fewer, and is a corrupt chunk of its own, not a run that cannot be joined.
    const { rows: run } = await client.query<{ stored_at: Date | null; channels: number }>(
      `SELECT max(stored_at) AS stored_at, (SELECT cardinality(channels) FROM sessions WHERE id = $1) AS channels
         FROM sample_chunks WHERE session_id = $1 AND last_seq BETWEEN $2 AND $3`,
      [sessionId, fromLastSeq, toLastSeq],
    );
    const deleted = decodeCopyBinary(
      await copyOn(
        client,
        `COPY (DELETE FROM sample_chunks WHERE session_id = '${sessionId}' AND last_seq BETWEEN ${fromLastSeq} AND ${toLastSeq}
               RETURNING last_seq, sample_count, payload_layout, payload) TO STDOUT (FORMAT binary)`,
      ),
    ).sort((a, b) => a.lastSeq - b.lastSeq);
    const samples = deleted.reduce((sum, chunk) => sum + chunk.sampleCount, 0);
    if (deleted.length === 0 || samples > compressedChunkMaxSamples) {
      await client.query('ROLLBACK');
      return deleted.length === 0 ? { chunks: 0, samples: 0, bytesBefore: 0, bytesAfter: 0 } : null;
    }
    const batches = deleted.map((chunk) => {
      try {
        const batch = batchFromPayload(chunk.payload, chunk.sampleCount, chunk.layout, chunk.lastSeq);
        if (batch.channelCount !== run[0].channels) {
          throw new CorruptChunkError(`a chunk of ${batch.channelCount} channels in a session of ${run[0].channels}`);
        }
        return batch;
      } catch (error) {
        throw Object.assign(error as Error, { lastSeq: chunk.lastSeq });
      }
    });
    const batch = joined(batches);
    const payload = compressBatch(batch);
    const { min, max } = batch.tRange;
    await client.query(
      `INSERT INTO sample_chunks (session_id, first_seq, last_seq, sample_count, payload_layout, min_t, max_t, payload, stored_at)
       VALUES ($1, $2, $3, $4, 2, $5, $6, $7, $8)`,
      [sessionId, batch.firstSeq, batch.lastSeq, batch.count, min, max, payload, run[0].stored_at],
    );
    await client.query('COMMIT');
    const bytesBefore = deleted.reduce((sum, chunk) => sum + chunk.payload.length, 0);
    return { chunks: deleted.length, samples, bytesBefore, bytesAfter: payload.length };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * The groups of the listed chunks: runs of up to `groupSamples` samples, cut around the chunks
 * known to be corrupt (by session, their last seqs); an open session's last run only once full.
 */
export function groupsOf(listed: readonly Listed[], groupSamples: number, corrupt: ReadonlyMap<string, readonly number[]>): ChunkGroup[] {
  const groups: ChunkGroup[] = [];
  let run: { group: ChunkGroup; samples: number; ended: boolean } | null = null;
  const close = (full: boolean) => {
    if (run !== null && (full || run.ended)) groups.push(run.group);
    run = null;
  };
  for (const chunk of listed) {
    const lastSeq = Number(chunk.last_seq);
    if (run !== null && run.group.sessionId !== chunk.session_id) close(false);
    const corruptSeqs: readonly number[] = corrupt.get(chunk.session_id) ?? [];
    const after: number = run === null ? Number.NEGATIVE_INFINITY : run.group.toLastSeq;
    if (corruptSeqs.some((seq) => seq > after && seq <= lastSeq)) close(true);
    if (corruptSeqs.includes(lastSeq)) continue;
    if (run !== null && run.samples + chunk.sample_count > groupSamples) close(true);
    run ??= { group: { sessionId: chunk.session_id, fromLastSeq: lastSeq, toLastSeq: lastSeq }, samples: 0, ended: chunk.ended };
    run.group.toLastSeq = lastSeq;
    run.samples += chunk.sample_count;
  }
  close(false);
  return groups;
}

export interface ChunkCompressorOptions {
  pool: pg.Pool;
  /** Between two rounds, each of which compresses every sealed group it finds. */
  intervalMs: number;
  /** How far a session's lastT must be past a chunk's maxT for the chunk to be sealed. */
  afterMs: number;
  /** Samples a compressed chunk holds at most. Default 8,192: a read page of 16 chunks decodes ~5 MB at three channels. */
  groupSamples?: number;
  log?: Logger;
  /** Told of each group compressed, and of each chunk found corrupt (once per chunk). */
  onGroup?: (group: CompressedGroup) => void;
  onCorrupt?: () => void;
}

/** The compressor as a Part (lifecycle.ts) of the app: a round every `intervalMs`. */
export class ChunkCompressor {
  readonly name = 'chunk compressor';
  private readonly groupSamples: number;
  private readonly corrupt = new Map<string, number[]>();
  private readonly rounds: Rounds<CompressedGroup>;

  constructor(private readonly options: ChunkCompressorOptions) {
    this.groupSamples = Math.min(options.groupSamples ?? 8192, compressedChunkMaxSamples);
    this.rounds = new Rounds(() => this.round(), options.intervalMs);
  }

  /** The first round at a random point of the first interval, so that instances started together do not compress together. */
  async start(): Promise<void> {
    this.rounds.start();
  }

  /** Compresses every sealed group, or joins the round under way; resolves with the totals. */
  compress(): Promise<CompressedGroup> {
    return this.rounds.run();
  }

  private async round(): Promise<CompressedGroup> {
    const { pool, afterMs, log } = this.options;
    const total: CompressedGroup = { chunks: 0, samples: 0, bytesBefore: 0, bytesAfter: 0 };
    try {
      let after = { sessionId: '00000000-0000-0000-0000-000000000000', lastSeq: -1 };
      while (!this.rounds.stopped) {
        const { rows } = await pool.query<Listed>(listSealed, [after.sessionId, after.lastSeq, afterMs]);
        for (const group of groupsOf(rows, this.groupSamples, this.corrupt)) {
          if (this.rounds.stopped) break;
          const done = await this.compressOne(group);
          if (done === null) continue;
          total.chunks += done.chunks;
          total.samples += done.samples;
          total.bytesBefore += done.bytesBefore;
          total.bytesAfter += done.bytesAfter;
        }
        if (rows.length < listChunks) break;
        after = { sessionId: rows[rows.length - 1].session_id, lastSeq: Number(rows[rows.length - 1].last_seq) };
      }
      if (total.chunks > 0) log?.debug(total, 'chunks compressed');
      return total;
    } catch (error) {
      log?.warn({ err: error }, 'compressing chunks failed; the next round tries again');
      throw error;
    }
  }

  private async compressOne(group: ChunkGroup): Promise<CompressedGroup | null> {
    try {
      const done = await withPooledClient(this.options.pool, (client) => compressGroup(client, group));
      if (done !== null) this.options.onGroup?.(done);
      return done;
    } catch (error) {
      const lastSeq = (error as { lastSeq?: number }).lastSeq;
      if (!(error instanceof CorruptChunkError) || lastSeq === undefined) throw error;
      const seqs = this.corrupt.get(group.sessionId) ?? [];
      this.corrupt.set(group.sessionId, [...seqs, lastSeq]);
      this.options.onCorrupt?.();
      this.options.log?.error({ err: error, sessionId: group.sessionId, lastSeq }, 'a chunk cannot be decoded; it is left as it is');
      return null;
    }
  }

  /** Stops compressing; a round under way ends after its current group. */
  async close(_deadline: number): Promise<void> {
    await this.rounds.stop();
  }
}
