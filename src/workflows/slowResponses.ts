/**
 * Runbook §4 "High Response Times" (p95 latency over 2 seconds).
 * Diagnosis: the API's `http_request_duration` metrics; the slowest statements of `pg_stat_statements`; system
 * resources (`docker stats`); and, here, tables read by sequential scans and whether Redis answers.
 * Resolution — if the database is slow: VACUUM ANALYZE, add the missing indexes (only with approval).
 * If the API is slow: more workers / a fresh backend (here: a restart, only with approval); verify Redis.
 * Then verify: p95 back under the threshold over a window.
 * Prevention: regular maintenance, indexes for common queries, caching, read replicas.
 */
import type { LatencySample } from '../activities/metrics';
import type { TableReport } from '../activities/postgres';
import type { IncidentInput, IncidentOutcome, TargetFacts } from '../incidents/model';
import { policyOf } from '../runbooks/catalog';
import { docker, metrics, postgres, redis } from './activityProxies';
import type { RunbookContext, VerifyContext } from './lifecycle/runbookContext';
import { runIncident } from './lifecycle/runIncident';
import { restartContainer } from './steps/docker';

type Policy = ReturnType<typeof policyOf<'slow-responses'>>;
/** At most this many indexes are proposed in one incident. */
const MAX_INDEX_PROPOSALS = 2;

export async function slowResponses(input: IncidentInput): Promise<IncidentOutcome> {
  const { backend, postgres: database, redis: cache } = input.targets;
  const policy = policyOf('slow-responses', input.policy);
  return runIncident(input, {
    prevention: [
      'Regular database maintenance (VACUUM, ANALYZE).',
      'Add indexes for common queries.',
      'Implement query result caching.',
      'Use database read replicas for heavy loads.',
    ],
    verify: async (rb) => backend !== undefined && recovered(rb, backend, policy),
    respond: async (rb) => {
      if (!backend) {
        rb.note('No backend target is configured (targets.backend): nothing to measure.');
        return false;
      }
      // Diagnosis
      const latency = await sampleLatency(rb, backend, policy);
      const tables = database ? await diagnoseDatabase(rb, database, policy) : undefined;
      await rb.step(docker.containerStats, { target: 'backend' }, {
        title: 'Diagnose: docker stats',
        summary: `docker stats --no-stream ${backend.container}`,
        record: (s) => (s.running ? `${s.name}: CPU ${s.cpuPercent}%, memory ${mib(s.memoryBytes)} of ${mib(s.memoryLimitBytes)} MiB.` : `${s.name} is not running.`),
      });
      if (cache) await checkRedis(rb);
      const apiSlow = latency.worstP95Ms === undefined || latency.worstP95Ms > policy.p95ThresholdMs;
      const databaseSlow = database !== undefined && tables !== undefined && tables.hot.length > 0;
      if (!apiSlow && !databaseSlow) {
        rb.finding(`p95 is under ${policy.p95ThresholdMs} ms and no table is read by sequential scans: nothing to fix.`);
        return true;
      }

      // Resolution: if the database is slow…
      if (databaseSlow) {
        await speedUpDatabase(rb, database, tables);
        if (await recovered(rb, backend, policy)) return true;
      }
      // …if the API is slow: a fresh backend.
      const question = `p95 is still over ${policy.p95ThresholdMs} ms. Restart ${backend.container} (the sandbox's stand-in for adding workers)?`;
      if (!(await rb.approval('scale-backend', question))) {
        rb.note('Restarting the backend was rejected.');
        return false;
      }
      await restartContainer(rb, 'backend', backend);
      return recovered(rb, backend, policy);
    },
  });
}

function sampleLatency(rb: RunbookContext, backend: TargetFacts, policy: Policy): Promise<LatencySample> {
  return rb.step(metrics.sampleLatency, { target: 'backend', windowMs: policy.sampleWindowSeconds * 1_000 }, {
    title: 'Diagnose: p95 per route from /metrics',
    summary: `Sample /metrics of ${backend.container} for ${policy.sampleWindowSeconds} s`,
    record: (s) =>
      s.routes.length === 0
        ? `No request reached ${backend.container} in ${policy.sampleWindowSeconds} s.`
        : `p95 over ${policy.sampleWindowSeconds} s: ${s.routes.map((r) => `${r.route} ${r.p95 === undefined ? '-' : Math.round(r.p95 * 1000)} ms (${r.requests})`).join(', ')}.`,
  });
}

async function diagnoseDatabase(rb: RunbookContext, database: TargetFacts, policy: Policy): Promise<TableReport> {
  await rb.step(postgres.topQueries, { target: 'postgres', limit: 5 }, {
    title: 'Diagnose: slowest statements (pg_stat_statements)',
    summary: `pg_stat_statements on ${database.container}`,
    record: (top) =>
      top.enabled
        ? `Slowest statements by mean time: ${top.queries.map((q) => `${q.meanMs} ms × ${q.calls}: ${q.query}`).join(' | ') || 'none yet'}.`
        : 'pg_stat_statements is not enabled on this database (shared_preload_libraries + CREATE EXTENSION): no statement statistics.',
  });
  return rb.step(postgres.inspectTables, { target: 'postgres', minSeqScans: policy.minSeqScans }, {
    title: 'Diagnose: tables read by sequential scans',
    summary: `pg_stat_user_tables on ${database.container}`,
    record: (t) =>
      t.hot.length === 0
        ? 'No table is read mostly by sequential scans.'
        : `Read by sequential scans: ${t.hot.map((h) => `${h.table} (${h.seqScans} scans, ${h.seqRowsRead} rows read, ${h.indexScans} index scans)`).join(', ')}; ` +
          `suggested indexes: ${t.suggestions.map((s) => `${s.table}(${s.column})`).join(', ') || 'none'}.`,
  });
}

/** VACUUM ANALYZE the hot tables, then the suggested indexes, each only with approval. */
async function speedUpDatabase(rb: RunbookContext, database: TargetFacts, tables: TableReport): Promise<void> {
  await rb.act(postgres.vacuumAnalyze, { target: 'postgres', tables: tables.hot.map((t) => t.table) }, {
    title: 'VACUUM ANALYZE the hot tables',
    summary: `VACUUM ANALYZE on ${database.container}`,
    record: (r) => `VACUUM ANALYZE ${r.vacuumed.join(', ')}.`,
  });
  for (const suggestion of tables.suggestions.slice(0, MAX_INDEX_PROPOSALS)) {
    const { table, column, because } = suggestion;
    if (!(await rb.approval('create-index', `Create an index on ${table}(${column}) concurrently? Slow statement: ${because}`))) {
      rb.note(`Index on ${table}(${column}) rejected.`);
      continue;
    }
    await rb.act(postgres.createIndex, { target: 'postgres', table, column }, {
      title: `CREATE INDEX CONCURRENTLY on ${table}(${column})`,
      summary: `CREATE INDEX CONCURRENTLY on ${database.container}`,
      record: (r) => (r.created ? `Created index ${r.index} concurrently.` : `Index ${r.index} already existed.`),
    });
  }
}

async function checkRedis(rb: RunbookContext): Promise<void> {
  await rb.step(redis.diagnoseRedis, { target: 'redis' }, {
    title: 'Diagnose: is the cache (Redis) working?',
    summary: 'redis-cli ping',
    record: (d) => (d.reachable ? `Redis answers PING (${d.keys} keys).` : `Redis does not answer (${d.error}): caching and rate limiting are degraded.`),
  });
}

/** Verify: p95 of the slowest route under the threshold over a window, within the policy's time. */
async function recovered(rb: RunbookContext | VerifyContext, backend: TargetFacts, policy: Policy): Promise<boolean> {
  const wait = await rb.step(
    metrics.waitForLatency,
    { target: 'backend', windowMs: policy.sampleWindowSeconds * 1_000, thresholdMs: policy.p95ThresholdMs, withinMs: policy.recoverWithinSeconds * 1_000 },
    {
      title: `Verify: p95 under ${policy.p95ThresholdMs} ms`,
      summary: `Sample /metrics of ${backend.container} until p95 ≤ ${policy.p95ThresholdMs} ms`,
      record: (w) =>
        w.belowThreshold
          ? `p95 is ${w.worstP95Ms} ms, under ${policy.p95ThresholdMs} ms (${w.samples} window(s)).`
          : `p95 still ${w.worstP95Ms === undefined ? 'unknown (no requests)' : `${w.worstP95Ms} ms`} after ${w.samples} window(s).`,
    },
  );
  return wait.belowThreshold;
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '?' : String(Math.round(bytes / 1_048_576));
}
