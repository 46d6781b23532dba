-- wavehouse: no transaction
-- Soft delete (issue #20): a deleted session keeps its row, chunks and roll-ups for
-- DELETE_GRACE_DAYS, hidden from every read, and may be restored meanwhile; after that the
-- purge (maintenance/session-purger.ts) deletes them. Its key is free again as soon as it is
-- deleted, so the unique index on keys covers the sessions not deleted only, and every
-- ON CONFLICT and key lookup names the same predicate (session-creates.ts).
--
-- No transaction, so the new index is built CONCURRENTLY: a plain build locks sessions
-- against writes (creates, the writer's counters) for as long as it reads the table. Each
-- statement is safe to run again after a failure (migrations.ts): a failed concurrent build
-- leaves an invalid index, dropped before the next try; a valid one is kept, so a retry never
-- leaves keys unguarded.

-- A fast default (null): no rewrite, a moment's lock.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS deleted_at timestamptz;

DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'sessions_live_key' AND NOT i.indisvalid) THEN DROP INDEX sessions_live_key; END IF; END $$;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS sessions_live_key ON sessions (key) WHERE key IS NOT NULL AND deleted_at IS NULL;

-- Only once the new index guards keys: the old one would keep a deleted session's key taken.
DROP INDEX CONCURRENTLY IF EXISTS sessions_key;

-- The purge's work list: the deleted sessions, oldest deletion first. Small: purged ones leave it.
DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'sessions_deleted' AND NOT i.indisvalid) THEN DROP INDEX sessions_deleted; END IF; END $$;
CREATE INDEX CONCURRENTLY IF NOT EXISTS sessions_deleted ON sessions (deleted_at) WHERE deleted_at IS NOT NULL;
