/**
 * The version of a session as its reads see it: everything of its row that a read answers
 * from, the counters of its committed samples included. Cached reads key on it and their ETag
 * is made from it (http/read-cache.ts), so it must move whenever what a read answers does.
 *
 * Why the row is enough: samples are append-only, and a commit moves `sample_count`,
 * `last_seq`, `first_t` and `last_t` in the transaction that stores the chunks (and the
 * roll-ups), so every commit that stores a sample moves `sample_count`, and no commit moves
 * nothing it stored. A commit that stores nothing (duplicates only) leaves the version alone,
 * and so do the columns no read shows (the ingest token's hash, the producer epoch a
 * reconnect bumps). Retention removes samples without moving the counters (they keep counting
 * every committed sample): it raises the retention generation instead, in the transaction that
 * removes them (migration 017), and the generation comes with every row a read loads.
 *
 * Why a read learns it from the row it loads anyway (for its 404 and its access check), and
 * never from a cache or a broadcast: an ack is sent after the COMMIT, so a read that starts
 * after an ack, on any instance, loads a row that counts the acked sample. No message between
 * instances can be late for it; the price is one lookup per read, which batches with others
 * (session-repository.ts).
 */
import type { SessionRecord } from './session-record.ts';

export function sessionVersion(record: SessionRecord): string {
  return JSON.stringify([
    record.id,
    record.key,
    record.nullable,
    record.status,
    record.createdAt.getTime(),
    record.endedAt?.getTime() ?? null,
    record.channels,
    record.sampleRateHz,
    record.retentionDays,
    record.metadata,
    record.sampleCount,
    record.lastSeq,
    record.firstT,
    record.lastT,
    record.retentionGeneration,
  ]);
}
