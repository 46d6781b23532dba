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
 * Groups are compressed several to a transaction (chunk-groups.ts): a transaction advisory
 * lock on each session, tried without waiting (another instance's compressor has it: skip its
 * groups this round), then `COPY (DELETE ... RETURNING ...)` of every chunk in the runs' seq
 * ranges, and one INSERT of what they held, compressed. Why that is safe with writers, readers
 * and other compressors:
 * - Writers only insert chunks above the session's lastSeq, never inside a sealed run, and
 *   never wait for the compressor (it locks no session row).
 * - What is inserted is exactly what was deleted, and commits with the delete or not at all,
 *   so no sample is lost or stored twice; a reader's one statement sees the old chunks or the
 *   new one, never both, and readers paging by seq (sample-store.ts) take each sample once.
 * - A chunk that cannot be decoded is left as it is, counted and logged once, and the runs
 *   around it go on without it: its transaction's other groups are compressed again at once.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { Rounds } from '../rounds.ts';
import { CorruptChunkError } from './bit-stream.ts';
import { compressedChunkMaxSamples } from './chunk-compression.ts';
import { type ChunkGroup, type CompressedGroup, compressGroups, groupsOf, type ListedChunk, transactionsOf } from './chunk-groups.ts';
import { withPooledClient } from './database.ts';

/** Chunks listed per query of the work list. */
const listChunks = 4096;

const listSealed = `SELECT c.session_id::text AS session_id, c.last_seq::float8 AS last_seq, c.sample_count, s.status = 'ended' AS ended
  FROM sample_chunks c JOIN sessions s ON s.id = c.session_id
 WHERE c.payload_layout < 2 AND (c.session_id, c.last_seq) > ($1::uuid, $2::bigint)
   AND (s.status = 'ended' OR c.max_t <= s.last_t - $3::float8)
 ORDER BY c.session_id, c.last_seq LIMIT ${listChunks}`;

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
        const { rows } = await pool.query<ListedChunk>(listSealed, [after.sessionId, after.lastSeq, afterMs]);
        for (const groups of transactionsOf(groupsOf(rows, this.groupSamples, this.corrupt))) {
          if (this.rounds.stopped) break;
          for (const done of await this.compressSome(groups)) {
            if (done === null) continue;
            total.chunks += done.chunks;
            total.samples += done.samples;
            total.bytesBefore += done.bytesBefore;
            total.bytesAfter += done.bytesAfter;
          }
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

  /** The groups' results; a group with a corrupt chunk is left out, the others compressed without it. */
  private async compressSome(groups: readonly ChunkGroup[]): Promise<Array<CompressedGroup | null>> {
    try {
      const done = await withPooledClient(this.options.pool, (client) => compressGroups(client, groups));
      for (const group of done) if (group !== null) this.options.onGroup?.(group);
      return done;
    } catch (error) {
      const { group, lastSeq } = error as { group?: ChunkGroup; lastSeq?: number };
      if (!(error instanceof CorruptChunkError) || group === undefined || lastSeq === undefined) throw error;
      const seqs = this.corrupt.get(group.sessionId) ?? [];
      this.corrupt.set(group.sessionId, [...seqs, lastSeq]);
      this.options.onCorrupt?.();
      this.options.log?.error({ err: error, sessionId: group.sessionId, lastSeq }, 'a chunk cannot be decoded; it is left as it is');
      const others = groups.filter((other) => other !== group);
      return others.length === 0 ? [] : this.compressSome(others);
    }
  }

  /** Stops compressing; a round under way ends after its current group. */
  async close(_deadline: number): Promise<void> {
    await this.rounds.stop();
  }
}
