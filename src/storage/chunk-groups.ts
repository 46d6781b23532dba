/**
 * The chunk compressor's unit of work (chunk-compressor.ts): groups, runs of one session's
 * consecutive chunks that become one compressed chunk, and the transaction that compresses
 * several groups at once.
 *
 * A transaction takes groups of any sessions, up to `transactionSamples` in all, in five round
 * trips whatever their number: BEGIN; a transaction advisory lock on each of their sessions,
 * tried without waiting (another instance's compressor has it: its groups are skipped this
 * round); what each group's run needs to know (its newest stored_at, the session's channels);
 * one `COPY (DELETE ... RETURNING ...)` of every chunk in the groups' seq ranges; one INSERT of
 * what they held, compressed; COMMIT. One transaction a group took six round trips a group, and
 * their client side was a third of the job's main thread (docs/performance.md).
 * A chunk that cannot be decoded rolls the whole transaction back and throws a CorruptChunkError
 * naming its group and `lastSeq`; the caller compresses the others again without that group.
 */
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import type { SampleBatch } from '../samples/sample-batch.ts';
import { decodeCopyBinary, joinedChunks, type StoredChunk } from './chunk-codec.ts';
import { compressBatch, compressedChunkMaxSamples } from './chunk-compression.ts';

/** Distinguishes the compressor's advisory locks from any other use of the same 64-bit keys. */
const lockSeed = 0x636f6d70;
/**
 * Samples one transaction compresses at most: about 2 MB of COPY output and 2.6 MB decoded at
 * three channels, and the rows it deletes stay locked until it commits (a retention delete of
 * them waits that long, ~0.5 s on a busy 2-core box).
 */
export const transactionSamples = 65_536;

/** A chunk of the compressor's work list. */
export interface ListedChunk {
  session_id: string;
  last_seq: number;
  sample_count: number;
  ended: boolean;
}

/** A run of one session's chunks to compress: those with last_seq in [fromLastSeq, toLastSeq], `samples` as listed. */
export interface ChunkGroup {
  sessionId: string;
  fromLastSeq: number;
  toLastSeq: number;
  samples: number;
}

export interface CompressedGroup {
  chunks: number;
  samples: number;
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * The groups of the listed chunks: runs of up to `groupSamples` samples, cut around the chunks
 * known to be corrupt (by session, their last seqs); an open session's last run only once full.
 */
export function groupsOf(
  listed: readonly ListedChunk[],
  groupSamples: number,
  corrupt: ReadonlyMap<string, readonly number[]>,
): ChunkGroup[] {
  const groups: ChunkGroup[] = [];
  let run: { group: ChunkGroup; ended: boolean } | null = null;
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
    if (run !== null && run.group.samples + chunk.sample_count > groupSamples) close(true);
    run ??= { group: { sessionId: chunk.session_id, fromLastSeq: lastSeq, toLastSeq: lastSeq, samples: 0 }, ended: chunk.ended };
    run.group.toLastSeq = lastSeq;
    run.group.samples += chunk.sample_count;
  }
  close(false);
  return groups;
}

/** The groups in runs of up to transactionSamples listed samples (at least one group a run), in order. */
export function transactionsOf(groups: readonly ChunkGroup[]): ChunkGroup[][] {
  const transactions: ChunkGroup[][] = [];
  let samples = Number.POSITIVE_INFINITY;
  for (const group of groups) {
    if (samples + group.samples > transactionSamples) {
      transactions.push([]);
      samples = 0;
    }
    transactions[transactions.length - 1].push(group);
    samples += group.samples;
  }
  return transactions;
}

async function copyOn(client: pg.ClientBase, sql: string): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of client.query(copyStreams.to(sql))) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

/** The groups as a relation with their index (1-based): literals, as COPY takes no parameters (compressGroups checks them). */
function groupsRelation(groups: readonly ChunkGroup[]): string {
  const rows = groups.map((group, i) => `('${group.sessionId}'::uuid, ${group.fromLastSeq}::bigint, ${group.toLastSeq}::bigint, ${i + 1})`);
  return `(VALUES ${rows.join(', ')}) AS g(session_id, from_seq, to_seq, i)`;
}

/**
 * Compresses the groups in one transaction on `client`: a result for each, null for a group
 * whose session another compressor holds, or for every group when one of them holds more than a
 * compressed chunk may (chunks joined since it was listed: it waits for the next round).
 */
export async function compressGroups(client: pg.ClientBase, groups: readonly ChunkGroup[]): Promise<Array<CompressedGroup | null>> {
  for (const { sessionId, fromLastSeq, toLastSeq } of groups) {
    if (!/^[0-9a-f-]{36}$/i.test(sessionId) || !Number.isSafeInteger(fromLastSeq) || !Number.isSafeInteger(toLastSeq)) {
      throw new Error(`not a chunk group: ${sessionId} ${fromLastSeq}-${toLastSeq}`);
    }
  }
  const results: Array<CompressedGroup | null> = groups.map(() => null);
  await client.query('BEGIN');
  try {
    const sessions = [...new Set(groups.map((group) => group.sessionId.toLowerCase()))];
    const { rows: locked } = await client.query<{ id: string }>(
      'SELECT id FROM unnest($1::text[]) AS id WHERE pg_try_advisory_xact_lock(hashtextextended(id, $2))',
      [sessions, lockSeed],
    );
    const held = new Set(locked.map((row) => row.id));
    const mine = groups.filter((group) => held.has(group.sessionId.toLowerCase()));
    if (mine.length === 0) {
      await client.query('ROLLBACK');
      return results;
    }
    // A run keeps the commit time of its newest chunk: retention (migration 015) goes by it,
    // so compressing never makes a sample expire before its time nor keeps it much past it.
    // And every chunk must have the session's channels: a payload cut by whole columns still
    // decodes, to fewer, and is a corrupt chunk of its own, not a run that cannot be joined.
    const { rows: runs } = await client.query<{ stored_at: string | null; channels: number }>(
      `SELECT (SELECT max(c.stored_at)::text FROM sample_chunks c
                WHERE c.session_id = g.session_id AND c.last_seq BETWEEN g.from_seq AND g.to_seq) AS stored_at,
              (SELECT cardinality(channels) FROM sessions WHERE id = g.session_id) AS channels
         FROM ${groupsRelation(mine)} ORDER BY g.i`,
    );
    const deleted = decodeCopyBinary(
      await copyOn(
        client,
        `COPY (DELETE FROM sample_chunks c USING ${groupsRelation(mine)}
                WHERE c.session_id = g.session_id AND c.last_seq BETWEEN g.from_seq AND g.to_seq
               RETURNING g.i, c.last_seq, c.sample_count, c.payload_layout, c.payload) TO STDOUT (FORMAT binary)`,
      ),
      true,
    ).sort((a, b) => (a.group ?? 0) - (b.group ?? 0) || a.lastSeq - b.lastSeq);
    const chunksOf = mine.map((): StoredChunk[] => []);
    for (const chunk of deleted) chunksOf[(chunk.group ?? 0) - 1].push(chunk);
    if (chunksOf.some((chunks) => chunks.reduce((sum, chunk) => sum + chunk.sampleCount, 0) > compressedChunkMaxSamples)) {
      await client.query('ROLLBACK');
      return results;
    }
    const values: unknown[] = [];
    const rows: string[] = [];
    const done = mine.map((group, i): CompressedGroup => {
      const chunks = chunksOf[i];
      if (chunks.length === 0) return { chunks: 0, samples: 0, bytesBefore: 0, bytesAfter: 0 };
      let batch: SampleBatch;
      try {
        batch = joinedChunks(chunks, runs[i].channels);
      } catch (error) {
        throw Object.assign(error as Error, { group });
      }
      const payload = compressBatch(batch);
      const { min, max } = batch.tRange;
      const at = values.push(group.sessionId, batch.firstSeq, batch.lastSeq, batch.count, min, max, payload, runs[i].stored_at) - 8;
      rows.push(`($${at + 1}::uuid, $${at + 2}, $${at + 3}, $${at + 4}, 2, $${at + 5}, $${at + 6}, $${at + 7}, $${at + 8}::timestamptz)`);
      const bytesBefore = chunks.reduce((sum, chunk) => sum + chunk.payload.length, 0);
      return { chunks: chunks.length, samples: batch.count, bytesBefore, bytesAfter: payload.length };
    });
    if (rows.length > 0) {
      await client.query(
        `INSERT INTO sample_chunks (session_id, first_seq, last_seq, sample_count, payload_layout, min_t, max_t, payload, stored_at)
         VALUES ${rows.join(', ')}`,
        values,
      );
    }
    await client.query('COMMIT');
    for (const [i, group] of mine.entries()) results[groups.indexOf(group)] = done[i];
    return results;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
