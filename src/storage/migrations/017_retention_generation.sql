-- What retention has removed so far, as one number every read learns with its session row:
-- a session's version (storage/session-version.ts) holds it, so a cached read, or an ETag a
-- client sends back, made before retention removed samples is never served after. Retention
-- (maintenance/retention-job.ts) raises it in the transaction that detaches a partition or
-- deletes chunks or roll-ups; nothing else moves it. The session counters cannot say it: they
-- keep counting every committed sample, expired ones included.
CREATE TABLE IF NOT EXISTS sample_retention (
  only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  generation bigint NOT NULL DEFAULT 0
);
INSERT INTO sample_retention DEFAULT VALUES ON CONFLICT DO NOTHING;
