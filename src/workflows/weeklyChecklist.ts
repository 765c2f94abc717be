/**
 * Runbook "Monitoring Checklist" — **Weekly**, started by a Temporal Schedule (`runbooks schedules apply`):
 *   - Review slow query log        → the slowest statements of pg_stat_statements against `slowQueryMs`
 *   - Analyze traffic patterns     → requests and 429s per minute from the backend's /metrics over `sampleWindowSeconds`
 *   - Check for security updates   → a human's: recorded as skipped
 *   - Test backup restoration      → for real: pg_dump (row counts from the dump's own snapshot) → pg_restore into a
 *                                    scratch database → row counts per table match → the scratch database dropped
 * A failed check opens an incident on the runbook its alert routes to (SlowDatabaseQueries, HighRequestRate,
 * BackupRestoreFailed), not waited for; the run stores its report and closes.
 */
import type { RestoreCheck } from '../activities/postgres';
import type { IncidentInput, IncidentOutcome } from '../incidents/model';
import { policyOf } from '../runbooks/catalog';
import { metrics, postgres } from './activityProxies';
import { fail, pass, runChecklist, skipped, type Outcome } from './checklist/checklist';

export async function weeklyChecklist(input: IncidentInput): Promise<IncidentOutcome> {
  const policy = policyOf('weekly-checklist', input.policy);
  return runChecklist(input, async (rb, checklist) => {
    const { backend, postgres: database } = rb.input.targets;

    await checklist.check('Review slow query log', 'SlowDatabaseQueries', async () => {
      if (!database) return skipped('No database is configured (targets.postgres).');
      const top = await rb.step(postgres.topQueries, { target: 'postgres', limit: 10 }, { title: 'Weekly: slowest statements', summary: 'pg_stat_statements by mean time' });
      if (!top.enabled) return skipped('pg_stat_statements is not enabled in the database.');
      const slow = top.queries.filter((q) => q.meanMs > policy.slowQueryMs);
      const evidence = { slowQueryMs: policy.slowQueryMs, slowest: top.queries.slice(0, 5) };
      return slow.length > 0
        ? fail(`${slow.length} statement(s) over ${policy.slowQueryMs} ms mean, the slowest ${slow[0]!.meanMs} ms: ${slow[0]!.query}`, evidence)
        : pass(`No statement over ${policy.slowQueryMs} ms mean (the slowest ${top.queries[0]?.meanMs ?? 0} ms).`, evidence);
    });

    await checklist.check('Analyze traffic patterns', 'HighRequestRate', async () => {
      if (!backend) return skipped('No backend is configured (targets.backend).');
      const traffic = await rb.step(metrics.sampleRateLimited, { target: 'backend', windowMs: policy.sampleWindowSeconds * 1000 }, {
        title: 'Weekly: traffic and 429s',
        summary: `Sample /metrics of ${backend.container} over ${policy.sampleWindowSeconds}s`,
      });
      const perMinute = Math.round((traffic.requests * 60_000) / traffic.windowMs);
      const evidence = { requestsPerMinute: perMinute, rateLimitedPerMinute: traffic.perMinute, windowMs: traffic.windowMs };
      const verdict = `${perMinute} request(s)/min, ${traffic.perMinute} answered 429/min (at most ${policy.max429PerMinute})`;
      return traffic.perMinute > policy.max429PerMinute ? fail(`Rate limited: ${verdict}.`, evidence) : pass(`${verdict}.`, evidence);
    });

    await checklist.check('Check for security updates', undefined, async () => skipped('A human\'s item: not automated.'));

    await checklist.check('Test backup restoration', 'BackupRestoreFailed', async () => {
      if (!database) return skipped('No database is configured (targets.postgres).');
      const dump = await rb.step(postgres.dumpForRestoreCheck, { target: 'postgres' }, {
        title: 'Weekly: dump the database',
        summary: `pg_dump -Fc in ${database.container}`,
        record: (d) => ({ message: `Dumped ${d.database} to ${d.file} (${d.bytes} bytes, ${Object.keys(d.rowCounts).length} table(s)).`, data: { file: d.file, bytes: d.bytes, rowCounts: d.rowCounts } }),
      });
      const restore = await rb.step(postgres.restoreIntoScratch, { target: 'postgres', dump: { file: dump.file, rowCounts: dump.rowCounts } }, {
        title: 'Weekly: restore the dump into a scratch database',
        summary: `pg_restore ${dump.file} into a scratch database, count, drop`,
      });
      return restoreVerdict(restore, dump.bytes);
    });
  });
}

function restoreVerdict(r: RestoreCheck, bytes: number): Outcome {
  const evidence = { file: r.file, bytes, scratch: r.scratch, tables: r.tables, ...(r.error ? { error: r.error } : {}) };
  if (!r.restored) return fail(`The dump of ${r.database} does not restore: ${r.error}. (Scratch database ${r.scratch} dropped.)`, evidence);
  if (r.tables.length === 0) return fail(`The dump of ${r.database} restored, but it has no tables to compare.`, evidence);
  if (r.mismatches.length > 0) {
    const differing = r.tables.filter((t) => r.mismatches.includes(t.table)).map((t) => `${t.table} ${t.restored ?? 'missing'} of ${t.expected}`);
    return fail(`Row counts differ after the restore: ${differing.join(', ')}.`, evidence);
  }
  const rows = r.tables.reduce((sum, t) => sum + t.expected, 0);
  return pass(`Restored into ${r.scratch}: ${r.tables.length} table(s), ${rows} row(s), every count matches; the scratch database is dropped.`, evidence);
}
