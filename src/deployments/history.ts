/** The deployment history (`deployments` in the audit schema): written by the recordDeployment activity, read here. */
import { Pool } from 'pg';
import type { DeploymentKind, DeploymentRecord, DeploymentResult } from './model';

interface DeploymentRow {
  id: string;
  kind: DeploymentKind;
  target: string;
  requested_by: string;
  version: string | null;
  from_image: string | null;
  from_version: string | null;
  to_image: string | null;
  to_version: string | null;
  from_revision: number | null;
  to_revision: number | null;
  result: DeploymentResult;
  reason: string | null;
  started_at: Date;
  finished_at: Date | null;
  duration_ms: string | null;
}

/** The last `last` deployments and rollbacks, newest first. `schema` is the config's validated identifier. */
export async function readDeployments(pool: Pick<Pool, 'query'>, schema: string, { last = 20 }: { last?: number } = {}): Promise<DeploymentRecord[]> {
  const { rows } = await pool.query<DeploymentRow>(`SELECT * FROM "${schema}".deployments ORDER BY started_at DESC, id LIMIT $1`, [Math.max(1, Math.min(last, 1000))]);
  return rows.map((row) => {
    const optional = <T>(key: string, value: T | null) => (value === null ? {} : { [key]: value });
    return {
      id: row.id,
      kind: row.kind,
      target: row.target,
      by: row.requested_by,
      ...optional('version', row.version),
      ...optional('fromImage', row.from_image),
      ...optional('fromVersion', row.from_version),
      ...optional('toImage', row.to_image),
      ...optional('toVersion', row.to_version),
      ...optional('fromRevision', row.from_revision),
      ...optional('toRevision', row.to_revision),
      result: row.result,
      ...optional('reason', row.reason),
      startedAt: row.started_at.toISOString(),
      ...optional('finishedAt', row.finished_at?.toISOString() ?? null),
      ...optional('durationMs', row.duration_ms === null ? null : Number(row.duration_ms)),
    } as DeploymentRecord;
  });
}

/** One read with a pool of its own (the CLI). */
export async function readDeploymentsOnce(databaseUrl: string, schema: string, options: { last?: number } = {}): Promise<DeploymentRecord[]> {
  const pool = new Pool({ connectionString: databaseUrl, max: 1, connectionTimeoutMillis: 5_000 });
  try {
    return await readDeployments(pool, schema, options);
  } finally {
    await pool.end();
  }
}
