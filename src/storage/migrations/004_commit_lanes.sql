-- What tells the writer whether a commit whose answer was lost did land: each writer lane
-- (one per lane of each process, its id random) writes the id of the flush it commits into its
-- own row, in the flush's transaction. A lane commits one flush at a time and retries it until
-- it lands, so its row holds that flush's id exactly when the flush is stored. A chunk's end
-- could not tell: another process that took a session meanwhile may have stored a chunk of it
-- with the same end, and the flush would count as stored when it was not.
-- One row per lane, updated in place (HOT: no indexed column changes, and fillfactor leaves
-- room on the page), so thousands of commits a second add no rows; rows of lanes that stopped
-- are deleted by the writers once they are a week old (sample-store.ts).
CREATE TABLE commit_lanes (
  lane_id      uuid PRIMARY KEY,
  flush_id     uuid NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);
