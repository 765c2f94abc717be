-- Up Migration
-- The monitoring checklists' reports: one row per checklist run (its workflow and run ID), one per check with its
-- result and evidence. Written by an upsert, so a retried write leaves one row each.
CREATE TABLE checklist_runs (
  run_id       text PRIMARY KEY,
  workflow_id  text NOT NULL,
  checklist    text NOT NULL,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz
);
CREATE INDEX checklist_runs_started_at ON checklist_runs (started_at DESC);

CREATE TABLE checklist_checks (
  run_id    text NOT NULL REFERENCES checklist_runs (run_id) ON DELETE CASCADE,
  seq       integer NOT NULL,
  name      text NOT NULL,
  result    text NOT NULL CHECK (result IN ('pass', 'fail', 'skipped', 'signed-off')),
  summary   text NOT NULL,
  evidence  jsonb NOT NULL DEFAULT '{}',
  -- The incident a failed check opened (its workflow ID), if any.
  incident  text,
  PRIMARY KEY (run_id, seq)
);

-- Down Migration
DROP TABLE checklist_checks;
DROP TABLE checklist_runs;
