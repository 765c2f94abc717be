-- Up Migration
-- The hands-off switch (operator controls): one row per scope ('global' or a runbook's name) as it stands now, and
-- every change to it kept (who, when, why), so the switch survives restarts of everything and is audited.
CREATE TABLE hands_off (
  scope      text        PRIMARY KEY,
  is_on      boolean     NOT NULL,
  changed_by text        NOT NULL,
  changed_at timestamptz NOT NULL,
  reason     text
);
CREATE TABLE hands_off_changes (
  id         bigserial   PRIMARY KEY,
  scope      text        NOT NULL,
  is_on      boolean     NOT NULL,
  changed_by text        NOT NULL,
  changed_at timestamptz NOT NULL,
  reason     text
);
CREATE INDEX hands_off_changes_changed_at_idx ON hands_off_changes (changed_at DESC);

-- Down Migration
DROP TABLE hands_off_changes;
DROP TABLE hands_off;
