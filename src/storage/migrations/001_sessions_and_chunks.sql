-- Sessions and their samples, stored as chunks: one row per run of consecutive samples of a
-- session, its payload the column-wise float64 layout of samples/sample-batch.ts.
-- A row per sample tops out near 0.45 M samples/s here; rows of chunks reach 2.6-7 M
-- ("The machine's limits" in docs/performance.md), so chunks are the layout that can meet the benchmark bar.

CREATE TABLE sessions (
  id             uuid PRIMARY KEY,
  token_hash     bytea NOT NULL,
  status         text NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'active', 'ended')),
  created_at     timestamptz NOT NULL DEFAULT now(),
  ended_at       timestamptz,
  channels       text[] NOT NULL,
  sample_rate_hz double precision,
  metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
  sample_count   bigint NOT NULL DEFAULT 0,
  last_seq       bigint
);

CREATE TABLE sample_chunks (
  session_id   uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  first_seq    bigint NOT NULL,
  last_seq     bigint NOT NULL,
  sample_count integer NOT NULL CHECK (sample_count > 0),
  payload      bytea NOT NULL,
  -- Chunks of a session never overlap, so last_seq orders them as first_seq does; keying on
  -- it lets a range read start at the first chunk that reaches fromSeq.
  PRIMARY KEY (session_id, last_seq)
);

-- Float samples barely compress; skipping pglz saves the backend CPU that bounds COPY.
ALTER TABLE sample_chunks ALTER COLUMN payload SET STORAGE EXTERNAL;
