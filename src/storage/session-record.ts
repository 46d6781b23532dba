/** A session as the code sees it, the row PostgreSQL answers with, and the mapping between them. */

export interface SessionRecord {
  id: string;
  tokenHash: Buffer;
  /** The stream name it is found by, unique among sessions; null for an anonymous session. */
  key: string | null;
  /** Whether its values may be null (held as NaN, docs/protocol.md). */
  nullable: boolean;
  status: 'created' | 'active' | 'ended';
  createdAt: Date;
  endedAt: Date | null;
  channels: string[];
  sampleRateHz: number | null;
  /** Days its chunks are kept after their commit (maintenance/retention-job.ts); null: RETENTION_DAYS alone. */
  retentionDays: number | null;
  metadata: Record<string, unknown>;
  sampleCount: number;
  lastSeq: number | null;
  /** The lowest and highest t of its committed samples (not those of its first and last seq: t may jump back); null before any. */
  firstT: number | null;
  lastT: number | null;
  /** When it was soft deleted; null for every session a read finds (they skip deleted ones). */
  deletedAt: Date | null;
  /** How many times retention has removed stored samples, of any session (migration 017): part of its version. */
  retentionGeneration: number;
}

/** A row of sessions as pg returns it: bigints come as strings. */
export interface SessionRow {
  id: string;
  token_hash: Buffer;
  key: string | null;
  nullable: boolean;
  status: SessionRecord['status'];
  created_at: Date;
  ended_at: Date | null;
  channels: string[];
  sample_rate_hz: number | null;
  retention_days: number | null;
  metadata: Record<string, unknown>;
  sample_count: string;
  last_seq: string | null;
  first_t: number | null;
  last_t: number | null;
  deleted_at: Date | null;
  retention_generation: string;
}

/** The columns of a SessionRow, for a statement's SELECT or RETURNING list. */
export const sessionColumns =
  'id, token_hash, key, nullable, status, created_at, ended_at, channels, sample_rate_hz, retention_days, metadata, ' +
  'sample_count, last_seq, first_t, last_t, deleted_at, (SELECT generation FROM sample_retention) AS retention_generation';

export function toRecord(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    tokenHash: row.token_hash,
    key: row.key,
    nullable: row.nullable,
    status: row.status,
    createdAt: row.created_at,
    endedAt: row.ended_at,
    channels: row.channels,
    sampleRateHz: row.sample_rate_hz,
    retentionDays: row.retention_days,
    metadata: row.metadata,
    sampleCount: Number(row.sample_count),
    lastSeq: row.last_seq === null ? null : Number(row.last_seq),
    firstT: row.first_t,
    lastT: row.last_t,
    deletedAt: row.deleted_at,
    retentionGeneration: Number(row.retention_generation),
  };
}
