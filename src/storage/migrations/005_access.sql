-- Access: API keys, the refresh tokens access tokens are renewed with, and the audit log.
-- Secrets are stored as their SHA-256 only (src/access/key-format.ts); nothing here can be
-- used to call the service.

CREATE TABLE api_keys (
  id           uuid PRIMARY KEY,
  name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  key_hash     bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
  scopes       text[] NOT NULL,
  -- Sessions whose key starts with this, and only those (the session key's alphabet).
  key_prefix   text CHECK (key_prefix ~ '^[A-Za-z0-9_.:/-]{1,200}$'),
  -- {requestsPerMinute?, maxSockets?}, enforced by the edges that serve the key.
  limits       jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_by   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  revoked_at   timestamptz,
  -- Updated at most about once a minute per key, in batches (src/access/last-used.ts).
  last_used_at timestamptz
);

-- A family is the chain of refresh tokens grown from one exchange of a key: each refresh uses
-- up one token and adds the next. A token used twice means it was copied, and revokes the
-- whole family, the thief's tokens and the owner's alike.
CREATE TABLE refresh_families (
  id             uuid PRIMARY KEY,
  key_id         uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  created_at     timestamptz NOT NULL DEFAULT now(),
  revoked_at     timestamptz,
  revoked_reason text CHECK (revoked_reason IN ('logout', 'reuse'))
);
CREATE INDEX refresh_families_key ON refresh_families (key_id);

CREATE TABLE refresh_tokens (
  token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
  family_id  uuid NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  -- Set by the one refresh that uses the token; a second use finds it set.
  used_at    timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

-- Who did what to which session, key, token family or connector, and the credentials that
-- were refused (aggregated: one row per client, reason and minute, with `count`). Never a
-- secret. Listed newest first by id, which is the order rows were appended in.
CREATE TABLE audit_log (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL,
  actor      text NOT NULL CHECK (char_length(actor) <= 300),
  action     text NOT NULL CHECK (char_length(action) <= 100),
  target     text CHECK (char_length(target) <= 300),
  ip         text CHECK (char_length(ip) <= 100),
  request_id text CHECK (char_length(request_id) <= 200),
  outcome    text NOT NULL CHECK (char_length(outcome) <= 100),
  count      integer NOT NULL DEFAULT 1 CHECK (count >= 1)
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

-- Append-only: a row, once written, is neither changed nor removed (UPDATE, DELETE and
-- TRUNCATE are refused), whatever the role of the connection, short of dropping the trigger,
-- which only the table's owner can do, on purpose.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
