/**
 * Runbook §2 "Database Connection Issues".
 * Diagnosis: `pg_isready` / `SELECT 1`; the connection count; queries active for over 30 s (and, here, the database
 * size of Useful Commands, sessions idle in a transaction and lock waits).
 * Resolution — if the database is down: restart PostgreSQL; restore from the backup if the data is corrupted
 * (here: only with approval). If the connection pool is exhausted: kill the sessions idle in a transaction for over
 * 10 minutes (with approval unless the policy says `autoTerminate`), restart the backend to reset its connections.
 * Prevention: a bigger pool, pgbouncer, faster queries.
 */
import { patched } from '@temporalio/workflow';
import type { ConnectionReport, DatabaseSize } from '../activities/postgres';
import type { IncidentInput, IncidentOutcome, TargetFacts } from '../incidents/model';
import { policyOf } from '../runbooks/catalog';
import { postgres } from './activityProxies';
import type { RunbookContext } from './lifecycle/runbookContext';
import { runIncident } from './lifecycle/runIncident';
import { restartContainer } from './steps/docker';
import { waitForHealth } from './steps/http';
import { checkDatabase, waitForDatabase } from './steps/postgres';

type Policy = ReturnType<typeof policyOf<'db-connections'>>;

export async function dbConnections(input: IncidentInput): Promise<IncidentOutcome> {
  const { postgres: database, backend } = input.targets;
  const policy = policyOf('db-connections', input.policy);
  return runIncident(input, {
    prevention: ['Increase the connection pool size in settings.', 'Add pgbouncer for connection pooling.', 'Review and optimize slow queries.'],
    verify: async (rb) => database !== undefined && (await checkDatabase(rb, database, 'Verify: SELECT 1')).reachable,
    respond: async (rb) => {
      if (!database) {
        rb.note('No postgres target is configured (targets.postgres): nothing to act on.');
        return false;
      }
      // Diagnosis
      if (!(await checkDatabase(rb, database)).reachable) return databaseDown(rb, database, backend);
      // Incidents started before the size was part of the diagnosis replay without it.
      if (patched('db-connections-database-size')) await recordDatabaseSize(rb, database);
      const report = await inspectConnections(rb, database, policy, 'Diagnose: connections, idle transactions, long queries, locks');
      if (report.usage >= policy.connectionsHighRatio || report.idleInTransaction.length > 0) {
        return poolExhausted(rb, database, backend, report, policy);
      }
      rb.finding('The database answers and its connections are below the threshold: nothing to fix there.');
      return backend === undefined || waitForHealth(rb, backend, 'of the backend');
    },
  });
}

/** If the database is down: restart PostgreSQL; if it answers but the application still fails, restore from the backup. */
async function databaseDown(rb: RunbookContext, database: TargetFacts, backend: TargetFacts | undefined): Promise<boolean> {
  await restartContainer(rb, 'postgres', database);
  if (!(await waitForDatabase(rb, database, 'after the restart'))) {
    await rb.escalate('PostgreSQL does not come back after a restart');
    return false;
  }
  if (backend === undefined || (await waitForHealth(rb, backend, 'after the database restart'))) return true;

  const question = `PostgreSQL answers again but the backend still fails: the data may be corrupted. Restore ${database.container} from its latest backup (pg_restore --clean)?`;
  if (!(await rb.approval('restore-database', question))) {
    rb.note('Restore rejected: the database is left as it is.');
    return false;
  }
  await rb.act(postgres.restoreFromBackup, { target: 'postgres' }, {
    title: 'Restore from the latest backup',
    summary: `pg_restore on ${database.container}`,
    record: (r) => ({ message: `Restored ${database.container} from ${r.backupFile}.`, data: { backupFile: r.backupFile } }),
  });
  return (await waitForDatabase(rb, database, 'after the restore')) && waitForHealth(rb, backend, 'after the restore');
}

/** If the connection pool is exhausted: terminate the idle transactions, restart the backend, check the count again. */
async function poolExhausted(rb: RunbookContext, database: TargetFacts, backend: TargetFacts | undefined, report: ConnectionReport, policy: Policy): Promise<boolean> {
  const idle = report.idleInTransaction;
  if (idle.length > 0) {
    const pids = idle.map((s) => s.pid).join(', ');
    const question = `Terminate ${idle.length} session(s) idle in a transaction for over ${policy.idleInTransactionMinutes} min (pids ${pids})?`;
    if (policy.autoTerminate || (await rb.approval('terminate-sessions', question))) {
      await rb.act(postgres.terminateIdleSessions, { target: 'postgres', olderThanMs: policy.idleInTransactionMinutes * 60_000 }, {
        title: 'Terminate sessions idle in a transaction',
        summary: `pg_terminate_backend on ${database.container}`,
        record: (r) => `Terminated ${r.terminated.length} session(s) idle in a transaction: pids ${r.terminated.map((s) => s.pid).join(', ') || 'none left'}.`,
      });
    } else rb.note('Terminating the sessions was rejected: they are left as they are.');
  }
  if (report.longQueries.length > 0) {
    rb.followUp(`Review the queries that ran for over ${policy.longQuerySeconds} s: ${report.longQueries.map((q) => q.query).join(' | ')}`);
  }
  if (backend) await restartContainer(rb, 'backend', backend);

  const after = await inspectConnections(rb, database, policy, 'Verify: connections after the cleanup');
  const below = after.usage < policy.connectionsHighRatio && after.idleInTransaction.length === 0;
  if (!below) rb.finding(`Still ${after.connections} of ${after.maxConnections} connections, ${after.idleInTransaction.length} idle in a transaction.`);
  return below && (backend === undefined || (await waitForHealth(rb, backend, 'after the backend restart')));
}

/** The runbook's "Check database size" (Useful Commands): what a restore or a bigger pool would be dealing with. Read-only. */
function recordDatabaseSize(rb: RunbookContext, database: TargetFacts): Promise<DatabaseSize> {
  return rb.step(postgres.databaseSize, { target: 'postgres' }, {
    title: 'Diagnose: database size',
    summary: `pg_database_size on ${database.container}`,
    record: (r) => `${r.database} is ${r.pretty} (${r.bytes} bytes).`,
  });
}

function inspectConnections(rb: RunbookContext, database: TargetFacts, policy: Policy, title: string): Promise<ConnectionReport> {
  return rb.step(
    postgres.inspectConnections,
    { target: 'postgres', idleInTransactionMs: policy.idleInTransactionMinutes * 60_000, longQueryMs: policy.longQuerySeconds * 1_000 },
    {
      title,
      summary: `pg_stat_activity on ${database.container}`,
      record: (r) =>
        `${r.connections} of ${r.maxConnections} connections (${Math.round(r.usage * 100)}%) to ${r.database}; ` +
        `${r.idleInTransaction.length} idle in a transaction for over ${policy.idleInTransactionMinutes} min; ` +
        `${r.longQueries.length} query(ies) running for over ${policy.longQuerySeconds} s` +
        `${r.longQueries.map((q) => ` (pid ${q.pid}, ${q.seconds} s: ${q.query})`).join('')}; ${r.lockWaits.length} waiting on a lock.`,
    },
  );
}
