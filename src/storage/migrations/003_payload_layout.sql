-- How a chunk's payload lays out its samples. 0: the columns `seq, t, channels...` (any
-- increasing seqs). 1: `t, channels...` only, the seqs being first_seq, first_seq + 1, ...,
-- last_seq: a run of consecutive seqs, the usual chunk, is stored 8 bytes a sample lighter.
-- Writing chunks is bound by the bytes PostgreSQL has to move (TOAST and WAL), so that is
-- about a fifth more samples a second for three channels (docs/performance.md).
ALTER TABLE sample_chunks
  ADD COLUMN payload_layout smallint NOT NULL DEFAULT 0 CHECK (payload_layout IN (0, 1));
