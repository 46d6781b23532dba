-- Roll-ups (issue #18): per-bucket summaries of each session's samples at a few resolutions,
-- written in the same transaction as the chunks (storage/rollup-store.ts). One row per session,
-- resolution and block of 64 buckets, holding only the block's occupied buckets in the layout of
-- storage/rollup-block.ts: a read of an hour at 600 ms is ~94 rows, not 6,000, and a sparse
-- stream stores a bucket only where it has a sample.
CREATE TABLE sample_rollups (
  session_id    uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  resolution_ms integer NOT NULL CHECK (resolution_ms > 0),
  -- The aligned start of the block: floor(t / (resolution_ms * 64)) * resolution_ms * 64.
  block_t       double precision NOT NULL,
  summary       bytea NOT NULL,
  PRIMARY KEY (session_id, resolution_ms, block_t)
);

-- Floats barely compress; skipping pglz saves the backend CPU, as for chunk payloads (migration 001).
ALTER TABLE sample_rollups ALTER COLUMN summary SET STORAGE EXTERNAL;

-- How many of the session's committed samples the roll-ups hold: moved with sample_count by
-- the commits that write roll-ups, and only by them. Roll-ups are complete exactly when the two
-- are equal; sessions stored before this migration (0 of N) are not, nor those written with
-- WRITE_ROLLUPS=false, by an instance of the previous version, or by a producer spraying t over
-- more blocks than a commit may touch. Their aggregates read raw samples. A fast default: no rewrite.
ALTER TABLE sessions ADD COLUMN rollup_sample_count bigint NOT NULL DEFAULT 0;
