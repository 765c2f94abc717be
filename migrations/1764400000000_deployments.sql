-- Up Migration
-- The deployment history (runbook "Deployment Procedures"): one row per deploy or rollback workflow, upserted by its
-- workflow ID as it goes (running, then its result), so a retried write never makes a second row.
CREATE TABLE deployments (
  id           text        PRIMARY KEY,
  kind         text        NOT NULL CHECK (kind IN ('deploy', 'rollback')),
  target       text        NOT NULL,
  requested_by text        NOT NULL,
  version      text,
  from_image   text,
  from_version text,
  to_image     text,
  to_version   text,
  from_revision int,
  to_revision  int,
  result       text        NOT NULL CHECK (result IN ('running', 'succeeded', 'rolled-back', 'failed', 'refused')),
  reason       text,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz,
  duration_ms  bigint,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deployments_started_at_idx ON deployments (started_at DESC);

-- Down Migration
DROP TABLE deployments;
