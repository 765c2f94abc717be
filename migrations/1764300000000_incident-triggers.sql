-- Up Migration
-- Runs that do not start from an alert (an operator's deployment, a scheduled checklist) have no alert and may
-- have no severity: those columns become nullable, and every run records what started it.
ALTER TABLE incidents ADD COLUMN trigger text NOT NULL DEFAULT 'alert';
ALTER TABLE incidents ALTER COLUMN trigger DROP DEFAULT;
ALTER TABLE incidents ADD COLUMN triggered_by text;
UPDATE incidents SET triggered_by = fingerprint;
ALTER TABLE incidents ALTER COLUMN triggered_by SET NOT NULL;
ALTER TABLE incidents ALTER COLUMN alertname DROP NOT NULL;
ALTER TABLE incidents ALTER COLUMN fingerprint DROP NOT NULL;
ALTER TABLE incidents ALTER COLUMN severity DROP NOT NULL;

-- Down Migration
DELETE FROM incident_events WHERE run_id IN (SELECT run_id FROM incidents WHERE alertname IS NULL OR severity IS NULL);
DELETE FROM incidents WHERE alertname IS NULL OR severity IS NULL;
ALTER TABLE incidents ALTER COLUMN severity SET NOT NULL;
ALTER TABLE incidents ALTER COLUMN fingerprint SET NOT NULL;
ALTER TABLE incidents ALTER COLUMN alertname SET NOT NULL;
ALTER TABLE incidents DROP COLUMN triggered_by;
ALTER TABLE incidents DROP COLUMN trigger;
