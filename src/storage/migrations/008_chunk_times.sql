-- Reads by time (GET /sessions/{id}/data?fromT=&toT=): each chunk knows the lowest and highest
-- `t` of its samples, and each session those of its committed samples. Lowest and highest, not
-- first and last: a producer's clock may jump back, so `t` need not rise with `seq`.
-- NULL means not known: a chunk written before this migration (filled in by the backfill that
-- migrations.ts runs after the migrations, chunk-time-backfill.ts) or by an instance of the
-- previous version during a rolling deploy. Reads never skip such a chunk.
-- Adding a nullable column with no default only changes the catalog: no rewrite, the lock
-- is held for an instant whatever the table's size. The indexes come in 008, built concurrently.

ALTER TABLE sample_chunks ADD COLUMN min_t double precision, ADD COLUMN max_t double precision;
ALTER TABLE sessions ADD COLUMN first_t double precision, ADD COLUMN last_t double precision;

-- The time index covers (session_id, min_t, max_t) together, which a B-tree cannot do for an
-- overlap test (min_t < toT AND max_t >= fromT): it bounds one side and scans the rest of the
-- session. A GiST index prunes on both. btree_gist gives GiST the uuid and float8 operators;
-- it is a trusted extension (PostgreSQL 13+), so the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS btree_gist;
