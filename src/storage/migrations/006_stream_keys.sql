-- Streams are sessions with a key: a name a device or a dashboard finds its session by,
-- unique among sessions, listed and limited by prefix (an API key's keyPrefix).
-- COLLATE "C" orders keys byte-wise, so a prefix is one contiguous range of the unique index
-- (`key LIKE 'evara/%'` and `key >= 'evara/' AND key < 'evara0'` read only that range).

ALTER TABLE sessions ADD COLUMN key text COLLATE "C" CHECK (key ~ '^[A-Za-z0-9_.:/-]{1,200}$');

CREATE UNIQUE INDEX sessions_key ON sessions (key) WHERE key IS NOT NULL;

-- Listing goes newest first, a page at a time from a cursor (created_at, id).
CREATE INDEX sessions_created ON sessions (created_at DESC, id DESC);
