/**
 * An incident as its audit trail in Postgres recorded it (src/activities/audit.ts writes it): what a post-incident
 * review reads, long after Temporal's retention has dropped the workflow.
 */
import { Pool } from 'pg';
import type { IncidentRecord } from '../activities/audit';
import type { TimelineEvent } from '../incidents/model';

export interface AuditedIncident {
  incident: IncidentRecord;
  events: TimelineEvent[];
}

interface IncidentRow {
  run_id: string;
  workflow_id: string;
  runbook: IncidentRecord['runbook'];
  trigger: IncidentRecord['trigger'];
  triggered_by: string;
  alertname: string | null;
  fingerprint: string | null;
  severity: IncidentRecord['severity'] | null;
  service: string;
  phase: IncidentRecord['phase'];
  opened_at: Date;
  closed_at: Date | null;
}

/** The latest run of the incident with this workflow ID and its events in order; undefined when none was recorded. */
export async function readAuditedIncident(pool: Pool, schema: string, workflowId: string): Promise<AuditedIncident | undefined> {
  // `schema` is the configured one, validated as a lowercase SQL identifier by the config schema.
  const incidents = await pool.query<IncidentRow>(`SELECT * FROM "${schema}".incidents WHERE workflow_id = $1 ORDER BY opened_at DESC LIMIT 1`, [workflowId]);
  const row = incidents.rows[0];
  if (!row) return undefined;
  const events = await pool.query<{ seq: number; at: Date; kind: TimelineEvent['kind']; actor: string; message: string; data: Record<string, unknown> | null }>(
    `SELECT seq, at, kind, actor, message, data FROM "${schema}".incident_events WHERE run_id = $1 ORDER BY seq`,
    [row.run_id],
  );
  return {
    incident: {
      workflowId: row.workflow_id,
      runId: row.run_id,
      runbook: row.runbook,
      trigger: row.trigger,
      triggeredBy: row.triggered_by,
      ...(row.alertname ? { alertname: row.alertname } : {}),
      ...(row.fingerprint ? { fingerprint: row.fingerprint } : {}),
      ...(row.severity ? { severity: row.severity } : {}),
      service: row.service,
      phase: row.phase,
      openedAt: row.opened_at.toISOString(),
      ...(row.closed_at ? { closedAt: row.closed_at.toISOString() } : {}),
    },
    events: events.rows.map((e) => ({ seq: e.seq, at: e.at.toISOString(), kind: e.kind, actor: e.actor, message: e.message, ...(e.data ? { data: e.data } : {}) })),
  };
}

/** Reads one incident over a short-lived connection (the CLI); the HTTP server keeps a pool of its own. */
export async function readAuditedIncidentOnce(databaseUrl: string, schema: string, workflowId: string): Promise<AuditedIncident | undefined> {
  const pool = new Pool({ connectionString: databaseUrl, max: 1, connectionTimeoutMillis: 5_000 });
  try {
    return await readAuditedIncident(pool, schema, workflowId);
  } finally {
    await pool.end();
  }
}
