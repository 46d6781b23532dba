-- Pull connectors (docs/connectors.md). Secrets are never here in clear: `secrets` is the
-- AES-256-GCM sealing of a JSON object of them (src/connectors/connector-secrets.ts).
CREATE TABLE connectors (
  id                 uuid PRIMARY KEY,
  kind               text NOT NULL,
  name               text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  -- The config as created, without its secret members.
  config             jsonb NOT NULL,
  secrets            bytea,
  secret_names       text[] NOT NULL DEFAULT '{}',
  poll_interval_s    double precision NOT NULL CHECK (poll_interval_s > 0),
  paused             boolean NOT NULL DEFAULT false,
  created_at         timestamptz NOT NULL DEFAULT now(),
  -- [{key, sessionId, mapping}]: the streams it feeds, added by the poll that creates each.
  streams            jsonb NOT NULL DEFAULT '[]'::jsonb,
  -- Status, written by the instance polling it after each poll.
  last_poll_at       timestamptz,
  last_success_at    timestamptz,
  last_error         text,
  failing_since      timestamptz,
  breaker            text NOT NULL DEFAULT 'closed' CHECK (breaker IN ('closed', 'open', 'half-open')),
  breaker_open_since timestamptz,
  last_record_at     timestamptz,
  next_poll_at       timestamptz
);
