-- The audit-app's database (runbooks sandbox), made at the container's first start by psql as postgres.
CREATE DATABASE audit_app;
\connect audit_app

-- Section 4 of the runbook reads it: SELECT query, calls, mean_exec_time … FROM pg_stat_statements.
CREATE EXTENSION pg_stat_statements;

-- Documents the ETL loads. The natural key is (county, year, report_type): one report of a kind per county and
-- fiscal year. The ETL (etl.ts) upserts on it, so a re-run adds no row, and every load refreshes updated_at —
-- the freshness the ETL runbook reads (MAX(updated_at)) advances when a retry has run, changed or not:
--   INSERT INTO documents (county, year, report_type, payload) VALUES ($1, $2, $3, $4)
--   ON CONFLICT ON CONSTRAINT documents_natural_key
--   DO UPDATE SET payload = EXCLUDED.payload, updated_at = now();
CREATE TABLE documents (
  id          bigserial   PRIMARY KEY,
  county      text        NOT NULL,
  year        int         NOT NULL CHECK (year BETWEEN 1900 AND 2200),
  report_type text        NOT NULL DEFAULT 'audit-report',
  updated_at  timestamptz NOT NULL DEFAULT now(),
  payload     jsonb       NOT NULL DEFAULT '{}'::jsonb,
  CONSTRAINT documents_natural_key UNIQUE (county, year, report_type)
);

-- Who did what from where: the API's write route adds a row per call.
CREATE TABLE audit_log (
  id      bigserial   PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT now(),
  ip      inet,
  user_id text,
  action  text        NOT NULL,
  details jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_ip_idx ON audit_log (ip);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- A few documents, so the API has something to serve.
INSERT INTO documents (county, year, report_type, payload)
SELECT county, year, 'audit-report',
       jsonb_build_object('title', format('Report of the Auditor-General on %s County, FY %s/%s', county, year, year + 1),
                          'opinion', (ARRAY['unqualified', 'qualified', 'adverse', 'disclaimer'])[1 + (year + length(county)) % 4])
  FROM unnest(ARRAY['Kisumu', 'Machakos', 'Mombasa', 'Nairobi', 'Nakuru', 'Turkana']) AS county,
       generate_series(2021, 2023) AS year;
