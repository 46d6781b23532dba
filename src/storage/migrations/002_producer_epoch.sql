-- A fencing token for producers: bumped each time a process takes a session's producer, and
-- checked by every commit of that process. If a process lost its producer lock (a dropped
-- lock connection) and another one took the session meanwhile, the first one's late commits
-- are refused instead of storing samples a second time.
ALTER TABLE sessions ADD COLUMN producer_epoch bigint NOT NULL DEFAULT 0;
