-- wavehouse: no transaction
-- The roll-up step of retention (storage/retention-deletes.ts) looks for the compacted parts
-- whose block ended before a horizon, at each resolution: this index serves exactly that, and
-- finds them by reading only them. Before it, the step joined every session whose first_t was
-- past the horizon to its parts, which PostgreSQL ran as a scan of all of sample_rollups
-- (an index on sessions.first_t does not help: once the install is older than
-- ROLLUP_RETENTION_DAYS, most sessions are past the horizon, their parts long gone). On
-- 4.8 M parts of 100,000 sessions: a batch 1.0-1.9 s before, 0.8-2.2 ms with it (docs/performance.md).
--
-- No transaction, so it is built CONCURRENTLY: a plain build would hold off every commit's
-- roll-up insert for as long as it reads the table. Safe to run again (migrations.ts): an
-- invalid index a failed build left is dropped before the next try.
DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'sample_rollups_expiry' AND NOT i.indisvalid) THEN DROP INDEX sample_rollups_expiry; END IF; END $$;
CREATE INDEX CONCURRENTLY IF NOT EXISTS sample_rollups_expiry ON sample_rollups (resolution_ms, block_t) WHERE NOT pending;
