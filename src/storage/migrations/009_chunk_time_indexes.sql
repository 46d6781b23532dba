-- wavehouse: no transaction
-- Built CONCURRENTLY, so that a big sample_chunks keeps taking the writer's COPYs meanwhile
-- (a plain CREATE INDEX blocks writes for the whole build). CONCURRENTLY cannot run in a
-- transaction: migrations.ts runs this file a statement at a time. A build that fails leaves
-- an invalid index behind, and the migration unrecorded: the DROPs clear it on the next try.

-- Chunks by time within a session (sample-store.ts, the seq bounds of a time range).
DROP INDEX CONCURRENTLY IF EXISTS sample_chunks_time;
CREATE INDEX CONCURRENTLY sample_chunks_time ON sample_chunks USING gist (session_id, min_t, max_t);

-- The chunks whose times are not known yet: what the backfill works through, and what a read
-- by time must read whatever its range. Empty once the backfill is done: new chunks carry
-- their times, and a partial index holds no entry for them.
DROP INDEX CONCURRENTLY IF EXISTS sample_chunks_unknown_t;
CREATE INDEX CONCURRENTLY sample_chunks_unknown_t ON sample_chunks (session_id, last_seq) WHERE min_t IS NULL;
