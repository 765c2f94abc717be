-- Up Migration
-- The audit trail outlives Temporal's retention: one row per incident run, one per timeline event.
CREATE TABLE incidents (
  run_id        text PRIMARY KEY,
  workflow_id   text NOT NULL,
  runbook       text NOT NULL,
  alertname     text NOT NULL,
  fingerprint   text NOT NULL,
  severity      text NOT NULL,
  service       text NOT NULL,
  phase         text NOT NULL,
  opened_at     timestamptz NOT NULL,
  closed_at     timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_workflow_id ON incidents (workflow_id);

CREATE TABLE incident_events (
  run_id   text NOT NULL REFERENCES incidents (run_id),
  seq      integer NOT NULL,
  at       timestamptz NOT NULL,
  kind     text NOT NULL,
  actor    text NOT NULL,
  message  text NOT NULL,
  data     jsonb,
  PRIMARY KEY (run_id, seq)
);

-- Down Migration
DROP TABLE incident_events;
DROP TABLE incidents;
