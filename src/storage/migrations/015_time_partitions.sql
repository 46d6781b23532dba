-- wavehouse: no transaction
-- Time partitions for sample storage (issue #20): sample_chunks becomes a table partitioned by
-- RANGE of stored_at, the chunk's commit time by the server's clock, a partition per UTC day,
-- so that retention drops a day's partition instead of deleting its rows. Never the producer's
-- t: a hostile or jumping clock would make partitions anywhere. storage/chunk-partitions.ts
-- creates the days ahead and drops the expired ones (maintenance/retention-job.ts).
--
-- An existing install moves with no rewrite and no scan under a lock that blocks writes:
-- 1. stored_at is added with the default now(), which is stable, so PostgreSQL keeps the value of
--    this moment in the catalog for the rows already stored (a "fast default"): no rewrite. Each
--    later row gets its own commit time; an instance of the previous version, whose COPY names no
--    stored_at, writes it too during a rolling deploy.
-- 2. The legacy table will be the partition of everything before a cut: the start of the UTC day
--    after tomorrow, kept in sample_chunk_partitioning, so that its rows keep landing in it for at
--    least a day whatever the steps between take.
-- 3. A CHECK (stored_at < cut) is added NOT VALID (an instant), then validated: the scan holds
--    only a SHARE UPDATE EXCLUSIVE lock, which writes pass.
-- 4. One transaction of catalog changes: rename the table to sample_chunks_legacy, create the
--    partitioned parent LIKE it (so it carries whatever columns and CHECKs earlier migrations
--    gave it), attach the legacy table as [MINVALUE, cut) (the validated CHECK proves the bound,
--    so ATTACH skips its scan), and give the parent the legacy table's indexes (ON ONLY, then
--    each legacy index attached: a match is not rebuilt). The lock it takes is held for
--    milliseconds, once the writes in flight are done.
--
-- Keys: a unique index on a partitioned table must hold the partition key, and (session_id,
-- last_seq, stored_at) would allow the same chunk twice at two commit times: no guarantee. So
-- each partition keeps its own primary key (session_id, last_seq), made with it (the legacy
-- table's is its old one), and across partitions the commit itself refuses a chunk that does not
-- start after its session's stored lastSeq (sample-store.ts).
--
-- Each statement must be safe to run again (a failure leaves the ones before it done): the DO
-- blocks act only while sample_chunks is still a plain table.

ALTER TABLE sample_chunks ADD COLUMN IF NOT EXISTS stored_at timestamptz NOT NULL DEFAULT now();

-- Per-session retention (POST /sessions retentionDays): chunks stored longer ago are deleted in
-- small batches; NULL keeps them as long as RETENTION_DAYS does. Catalog only, no rewrite.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS retention_days integer CHECK (retention_days > 0);

-- The sessions with a retention of their own: what the retention job walks.
CREATE INDEX IF NOT EXISTS sessions_retention ON sessions (id) WHERE retention_days IS NOT NULL;

CREATE TABLE IF NOT EXISTS sample_chunk_partitioning (
  only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  -- The upper bound of sample_chunks_legacy, and the lower bound of the first day partition.
  legacy_cut timestamptz NOT NULL
);

INSERT INTO sample_chunk_partitioning (legacy_cut) VALUES (date_trunc('day', now(), 'UTC') + interval '2 days')
  ON CONFLICT DO NOTHING;

DO $$
BEGIN
  IF (SELECT relkind FROM pg_class WHERE oid = 'sample_chunks'::regclass) = 'r'
     AND NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'sample_chunks_legacy_bound') THEN
    EXECUTE format('ALTER TABLE sample_chunks ADD CONSTRAINT sample_chunks_legacy_bound CHECK (stored_at < %L) NOT VALID',
                   (SELECT legacy_cut FROM sample_chunk_partitioning));
  END IF;
END $$;

DO $$
BEGIN
  IF (SELECT relkind FROM pg_class WHERE oid = 'sample_chunks'::regclass) = 'r' THEN
    ALTER TABLE sample_chunks VALIDATE CONSTRAINT sample_chunks_legacy_bound;
  END IF;
END $$;

DO $$
BEGIN
  IF (SELECT relkind FROM pg_class WHERE oid = 'sample_chunks'::regclass) = 'r' THEN
    -- A commit locks sessions, then sample_chunks; the foreign key below locks sessions after
    -- sample_chunks. Taken first, in the commit's order, so that the two cannot deadlock.
    LOCK TABLE sessions IN SHARE ROW EXCLUSIVE MODE;
    ALTER TABLE sample_chunks RENAME TO sample_chunks_legacy;
    ALTER INDEX sample_chunks_pkey RENAME TO sample_chunks_legacy_pkey;
    ALTER INDEX sample_chunks_time RENAME TO sample_chunks_legacy_time;
    ALTER INDEX sample_chunks_unknown_t RENAME TO sample_chunks_legacy_unknown_t;
    ALTER INDEX sample_chunks_uncompressed RENAME TO sample_chunks_legacy_uncompressed;
    CREATE TABLE sample_chunks (LIKE sample_chunks_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)
      PARTITION BY RANGE (stored_at);
    ALTER TABLE sample_chunks DROP CONSTRAINT sample_chunks_legacy_bound;
    ALTER TABLE sample_chunks ADD FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE;
    EXECUTE format('ALTER TABLE sample_chunks ATTACH PARTITION sample_chunks_legacy FOR VALUES FROM (MINVALUE) TO (%L)',
                   (SELECT legacy_cut FROM sample_chunk_partitioning));
    CREATE INDEX sample_chunks_time ON ONLY sample_chunks USING gist (session_id, min_t, max_t);
    ALTER INDEX sample_chunks_time ATTACH PARTITION sample_chunks_legacy_time;
    CREATE INDEX sample_chunks_unknown_t ON ONLY sample_chunks (session_id, last_seq) WHERE min_t IS NULL;
    ALTER INDEX sample_chunks_unknown_t ATTACH PARTITION sample_chunks_legacy_unknown_t;
    -- The chunk compressor's work list (migration 014).
    CREATE INDEX sample_chunks_uncompressed ON ONLY sample_chunks (session_id, last_seq) WHERE payload_layout < 2;
    ALTER INDEX sample_chunks_uncompressed ATTACH PARTITION sample_chunks_legacy_uncompressed;
    -- Where a chunk goes when no day partition holds its stored_at (the job has not run for
    -- days): an insert never fails for want of a partition. The job moves such rows into the
    -- day partition it creates for them.
    CREATE TABLE sample_chunks_default PARTITION OF sample_chunks DEFAULT;
    ALTER TABLE sample_chunks_default ADD PRIMARY KEY (session_id, last_seq);
  END IF;
END $$;
