/** The checklist reports the checklist runs stored in Postgres (src/activities/audit.ts writes them), latest first. */
import { Pool } from 'pg';
import type { CheckResult, ChecklistReport } from './model';

interface RunRow {
  run_id: string;
  workflow_id: string;
  checklist: string;
  started_at: Date;
  finished_at: Date | null;
}

interface CheckRow {
  run_id: string;
  name: string;
  result: CheckResult;
  summary: string;
  evidence: Record<string, unknown>;
  incident: string | null;
}

/** The latest `last` runs with their checks in order. */
export async function readChecklistReports(pool: Pool, schema: string, last: number): Promise<ChecklistReport[]> {
  // `schema` is the configured one, validated as a lowercase SQL identifier by the config schema.
  const runs = await pool.query<RunRow>(`SELECT * FROM "${schema}".checklist_runs ORDER BY started_at DESC, run_id LIMIT $1`, [last]);
  const checks = await pool.query<CheckRow>(
    `SELECT run_id, name, result, summary, evidence, incident FROM "${schema}".checklist_checks WHERE run_id = ANY($1) ORDER BY run_id, seq`,
    [runs.rows.map((r) => r.run_id)],
  );
  return runs.rows.map((run) => ({
    workflowId: run.workflow_id,
    runId: run.run_id,
    checklist: run.checklist,
    startedAt: run.started_at.toISOString(),
    ...(run.finished_at ? { finishedAt: run.finished_at.toISOString() } : {}),
    checks: checks.rows
      .filter((c) => c.run_id === run.run_id)
      .map((c) => ({ name: c.name, result: c.result, summary: c.summary, evidence: c.evidence, ...(c.incident ? { incident: c.incident } : {}) })),
  }));
}

/** Over a short-lived connection (the CLI). */
export async function readChecklistReportsOnce(databaseUrl: string, schema: string, last: number): Promise<ChecklistReport[]> {
  const pool = new Pool({ connectionString: databaseUrl, max: 1, connectionTimeoutMillis: 5_000 });
  try {
    return await readChecklistReports(pool, schema, last);
  } finally {
    await pool.end();
  }
}
