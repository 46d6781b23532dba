-- Roll-ups (issue #18): per-bucket summaries of each session's samples at a few resolutions,
-- written in the same transaction as the chunks (storage/rollup-store.ts). A block is 64
-- buckets of one session at one resolution; its occupied buckets are stored in the layout of
-- storage/rollup-block.ts, so a sparse stream stores a bucket only where it has a sample.
--
-- Append-only in the commit: each commit adds one part per block it touches at the finest
-- resolution, holding only the summaries of its own samples, and never reads or rewrites a
-- stored row. Readers merge the parts of a block (summaries merge in any order and grouping),
-- and readers of a coarser resolution roll up the pending finest parts too. The compactor
-- (storage/rollup-compactor.ts) later replaces a block's parts with one, and rolls pending
-- finest parts up into the coarser resolutions, deleting and inserting in one transaction, so
-- reads of old ranges touch a row per block.
CREATE TABLE sample_rollups (
  session_id    uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  resolution_ms integer NOT NULL CHECK (resolution_ms > 0),
  -- The aligned start of the block: floor(t / (resolution_ms * 64)) * resolution_ms * 64.
  block_t       double precision NOT NULL,
  -- Tells a block's parts apart; drawn for every part, the compactor's too, so no two collide.
  part          bigint GENERATED ALWAYS AS IDENTITY,
  -- The compactor has work with this part: fold it into its block's other parts and, at the
  -- finest resolution, roll its buckets up into the coarser resolutions, which do not hold its
  -- samples yet. False for the fold the compactor writes of a block's parts, and for a
  -- commit's finest part whose samples the commit wrote at every resolution itself.
  pending       boolean NOT NULL,
  summary       bytea NOT NULL,
  PRIMARY KEY (session_id, resolution_ms, block_t, part)
);

-- Floats barely compress; skipping pglz saves the backend CPU, as for chunk payloads (migration 001).
ALTER TABLE sample_rollups ALTER COLUMN summary SET STORAGE EXTERNAL;

-- The compactor's work list, and what readers of a coarser resolution roll up: the pending
-- parts. Small, since the compactor keeps emptying it.
CREATE INDEX sample_rollups_pending ON sample_rollups (session_id, resolution_ms, block_t) WHERE pending;

-- How many of the session's committed samples the roll-ups hold: moved with sample_count by
-- the commits that write roll-ups, and only by them. Roll-ups are complete exactly when the two
-- are equal; sessions stored before this migration (0 of N) are not, nor those written with
-- WRITE_ROLLUPS=false, by an instance of the previous version, or by a producer spraying t over
-- more blocks than a commit may touch. Their aggregates read raw samples. A fast default: no rewrite.
ALTER TABLE sessions ADD COLUMN rollup_sample_count bigint NOT NULL DEFAULT 0;
