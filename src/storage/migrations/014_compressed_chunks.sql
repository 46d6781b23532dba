-- wavehouse: no transaction
-- Compressed chunks (issue #20): the chunk compressor (storage/chunk-compressor.ts) replaces
-- sealed chunks of a session with fewer, bigger ones in payload_layout 2, a lossless compressed
-- layout (storage/chunk-compression.ts). Readers take every layout alike.
--
-- The check is widened without a scan under an exclusive lock: added NOT VALID (an instant),
-- then validated with writes going on. Each statement may run again after a failure.
ALTER TABLE sample_chunks
  DROP CONSTRAINT IF EXISTS sample_chunks_payload_layout_check,
  ADD CONSTRAINT sample_chunks_payload_layout_check CHECK (payload_layout IN (0, 1, 2)) NOT VALID;
ALTER TABLE sample_chunks VALIDATE CONSTRAINT sample_chunks_payload_layout_check;

-- The compressor's work list: the chunks not compressed yet. Small, since it keeps emptying it:
-- those of the last COMPRESS_AFTER_MS of each open session.
DROP INDEX CONCURRENTLY IF EXISTS sample_chunks_uncompressed;
CREATE INDEX CONCURRENTLY sample_chunks_uncompressed ON sample_chunks (session_id, last_seq) WHERE payload_layout < 2;
