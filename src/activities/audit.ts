import type { Pool } from 'pg';
import { inTransaction } from '../audit/transaction';
import type { ChecklistReport } from '../checklists/model';
import type { IncidentPhase, Severity, TimelineEvent, TriggerKind } from '../incidents/model';
import type { RunbookName } from '../runbooks/catalog';

export interface IncidentRecord {
  workflowId: string;
  runId: string;
  runbook: RunbookName;
  trigger: TriggerKind;
  /** Who or what started it: the operator, the schedule ID; for an alert, its fingerprint. */
  triggeredBy: string;
  alertname?: string;
  fingerprint?: string;
  severity?: Severity;
  service: string;
  phase: IncidentPhase;
  openedAt: string;
  closedAt?: string;
}

interface TimelineBatch {
  incident: IncidentRecord;
  events: TimelineEvent[];
}

export function createAuditActivities(pool: Pool, schema: string) {
  const table = (name: string) => `"${schema}".${name}`;
  return {
    /**
     * Upserts the incident row and appends timeline events. Exactly once per event however often it
     * retries: events are keyed by (run_id, seq) and duplicates are ignored.
     */
    async recordTimeline({ incident, events }: TimelineBatch): Promise<void> {
      await inTransaction(pool, async (client) => {
        await client.query(
          `INSERT INTO ${table('incidents')}
             (run_id, workflow_id, runbook, trigger, triggered_by, alertname, fingerprint, severity, service, phase, opened_at, closed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           ON CONFLICT (run_id) DO UPDATE SET phase = EXCLUDED.phase, closed_at = EXCLUDED.closed_at, updated_at = now()`,
          [incident.runId, incident.workflowId, incident.runbook, incident.trigger, incident.triggeredBy, incident.alertname ?? null,
            incident.fingerprint ?? null, incident.severity ?? null, incident.service, incident.phase, incident.openedAt, incident.closedAt ?? null],
        );
        for (const event of events) {
          await client.query(
            `INSERT INTO ${table('incident_events')} (run_id, seq, at, kind, actor, message, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id, seq) DO NOTHING`,
            [incident.runId, event.seq, event.at, event.kind, event.actor, event.message, event.data ?? null],
          );
        }
      });
    },

    /**
     * Stores a checklist run's report: the run upserted by its run ID, each check by (run ID, position). Idempotent:
     * a retry, or a later write of the same run with more checks done, leaves one row per run and per check.
     */
    async recordChecklistReport(report: ChecklistReport): Promise<void> {
      await inTransaction(pool, async (client) => {
        await client.query(
          `INSERT INTO ${table('checklist_runs')} (run_id, workflow_id, checklist, started_at, finished_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (run_id) DO UPDATE SET finished_at = EXCLUDED.finished_at`,
          [report.runId, report.workflowId, report.checklist, report.startedAt, report.finishedAt ?? null],
        );
        for (const [seq, check] of report.checks.entries()) {
          await client.query(
            `INSERT INTO ${table('checklist_checks')} (run_id, seq, name, result, summary, evidence, incident) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (run_id, seq) DO UPDATE SET name = EXCLUDED.name, result = EXCLUDED.result, summary = EXCLUDED.summary,
               evidence = EXCLUDED.evidence, incident = EXCLUDED.incident`,
            [report.runId, seq, check.name, check.result, check.summary, check.evidence, check.incident ?? null],
          );
        }
      });
    },
  };
}

export type AuditActivities = ReturnType<typeof createAuditActivities>;
