-- Upkeep of the access tables (src/access/access-sweeper.ts): audit rows older than
-- AUDIT_RETENTION_DAYS are deleted, oldest first, a small batch at a time.
CREATE INDEX audit_log_at ON audit_log (at);

-- The audit log stays append-only but for its retention. A DELETE passes only for a row older
-- than the bound the sweep sets for its own transaction (wavehouse.audit_purge_before), and
-- never for a row less than a day old, whatever is set: no setting or mistake removes the
-- record of what just happened. UPDATE and TRUNCATE are refused, as before.
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  purge_before timestamptz;
BEGIN
  IF TG_OP = 'DELETE' THEN
    purge_before := nullif(current_setting('wavehouse.audit_purge_before', true), '')::timestamptz;
    IF OLD.at < purge_before AND OLD.at < now() - interval '1 day' THEN
      RETURN OLD;
    END IF;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
