import { Client as PgClient } from 'pg';
import type { Config } from '../../src/config/schema';

export interface AuditRow {
  seq: number;
  kind: string;
  actor: string;
  message: string;
}

/** Reads the audit trail straight from Postgres, as a post-incident review would. */
export async function readAudit(config: Config, workflowId: string): Promise<{ incidents: { phase: string; closed_at: Date | null }[]; events: AuditRow[] }> {
  const pg = new PgClient({ connectionString: config.audit.databaseUrl });
  await pg.connect();
  try {
    const schema = config.audit.schema;
    const incidents = await pg.query(`SELECT phase, closed_at, run_id FROM "${schema}".incidents WHERE workflow_id = $1`, [workflowId]);
    const events = await pg.query(
      `SELECT e.seq, e.kind, e.actor, e.message FROM "${schema}".incident_events e JOIN "${schema}".incidents i USING (run_id)
       WHERE i.workflow_id = $1 ORDER BY e.seq`,
      [workflowId],
    );
    return { incidents: incidents.rows, events: events.rows };
  } finally {
    await pg.end();
  }
}

export async function dropAuditSchema(config: Config): Promise<void> {
  const pg = new PgClient({ connectionString: config.audit.databaseUrl });
  await pg.connect();
  await pg.query(`DROP SCHEMA IF EXISTS "${config.audit.schema}" CASCADE`).finally(() => pg.end());
}
