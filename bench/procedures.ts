/**
 * The rows that act on the audit-app sandbox: API-down MTTR (the runbook restarting a stopped backend, against a bare
 * `docker restart` and a health poll) and the backfill (records/s through the workflow, against the pipeline run
 * directly for the same range; the records done twice after a worker SIGKILL).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import { dockerClient } from '../src/activities';
import { execInContainer } from '../src/activities/docker';
import { getBackfill } from '../src/backfills/operations';
import type { BackfillOutcome } from '../src/backfills/model';
import type { Config } from '../src/config/schema';
import type { IncidentOutcome } from '../src/incidents/model';
import { startBackfill } from '../src/intake/backfill';
import { DEFAULT_ETL_RECORDS, etlLog, etlWrites, type AuditApp } from '../src/sandbox/auditApp';
import { sandboxBreak } from '../src/sandbox/commands';
import { postJson } from './load';
import { fmt, notification, type Row } from './rows';
import { BENCH_TOKEN, type BenchProcess } from './stack';

export interface SandboxStack {
  client: Client;
  config: Config;
  configFile: string;
  url: string;
  app: AuditApp;
  dockerHost: string;
  /** The worker process; the backfill row replaces it after killing it. */
  worker: BenchProcess;
}

/**
 * API-down MTTR: the backend container stopped, then either our alert posted to the webhook and the incident followed to
 * its close (diagnosis, restart, health verified, audit trail written), or a bare `docker restart` of the same container
 * and a poll of /health. Alternated over `rounds`; the medians compared.
 */
export async function mttrRow(stack: SandboxStack, rounds = 3): Promise<Row> {
  const docker = dockerClient(stack.dockerHost);
  const bare: number[] = [];
  const ours: number[] = [];
  const restored: number[] = [];
  let lastIncident = '';
  for (let round = 0; round < rounds; round++) {
    await stopBackend(stack);
    let t0 = performance.now();
    await docker.getContainer(stack.app.containers.backend).restart();
    await untilHealthy(stack.app.urls.health);
    bare.push(performance.now() - t0);

    await stopBackend(stack);
    t0 = performance.now();
    // A poller beside the incident sees when the service is back (the runbook's restart), before the incident closes.
    const back = untilHealthy(stack.app.urls.health).then(() => restored.push(performance.now() - t0));
    const answer = (await postJson(`${stack.url}/alerts`, notification('APIDown', randomBytes(8).toString('hex')), BENCH_TOKEN)) as { results: Array<{ workflowId: string }> };
    lastIncident = answer.results[0]!.workflowId;
    const outcome: IncidentOutcome = await stack.client.workflow.getHandle(lastIncident).result();
    ours.push(performance.now() - t0);
    await back;
    if (outcome.resolution !== 'remediated') throw new Error(`${lastIncident} ended ${outcome.resolution}, not remediated`);
  }
  const o = median(ours) / 1000;
  const b = median(bare) / 1000;
  return {
    row: 'API-down MTTR (backend stopped)',
    ours: `alert → incident closed, health verified: median ${fmt(o, 2)} s of ${rounds}`,
    baseline: `docker restart + /health poll: median ${fmt(b, 2)} s`,
    ratio: o / b,
    target: '≤ baseline + 1 s',
    met: o <= b + 1,
    figures: { rounds, oursSeconds: o, restoredSeconds: median(restored) / 1000, bareSeconds: b, oursAll: ours.map((ms) => fmt(ms / 1000, 2)).join(' '), bareAll: bare.map((ms) => fmt(ms / 1000, 2)).join(' ') },
    notes: [`the service answered /health again ${fmt(median(restored) / 1000, 2)} s after the alert (median): the rest is verification and closing`, await whereTheTimeWent(stack.client, lastIncident)],
  };
}

async function stopBackend(stack: SandboxStack): Promise<void> {
  await sandboxBreak({ dockerHost: stack.dockerHost, prefix: stack.app.prefix, fault: 'backend-stopped' });
}

async function untilHealthy(url: string): Promise<void> {
  for (;;) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return;
    await sleep(20);
  }
}

/** The incident's activities by time spent (scheduled → completed), and what the rest of its life was. */
async function whereTheTimeWent(client: Client, workflowId: string): Promise<string> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
  const events = history.events ?? [];
  const scheduled = new Map<string, { name: string; at: number }>();
  const spent: Array<[string, number]> = [];
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), { name: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', at: ms(e.eventTime) });
    const done = e.activityTaskCompletedEventAttributes;
    const from = done && scheduled.get(String(done.scheduledEventId));
    if (from) spent.push([from.name, ms(e.eventTime) - from.at]);
  }
  const total = ms(events.at(-1)?.eventTime) - ms(events[0]?.eventTime);
  const inActivities = spent.reduce((n, [, t]) => n + t, 0);
  const top = [...spent].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([name, t]) => `${name} ${fmt(t, 0)} ms`);
  return `one incident: ${fmt(total, 0)} ms from start to close, ${fmt(inActivities, 0)} ms in ${spent.length} activities (${top.join(', ')}); the rest is workflow tasks and Temporal round trips`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Backfill: `years` of every county through the backfill workflow (a county-year per activity) against the pipeline run
 * directly, one `docker exec … run --year Y` per year for all counties, at the same per-record delay; then one more
 * year with the worker SIGKILLed half-way through a chunk, counting from the pipeline's own log the records written twice.
 */
export async function backfillRow(stack: SandboxStack, years: number, startWorker: () => Promise<BenchProcess>): Promise<Row> {
  const docker = dockerClient(stack.dockerHost);
  const delayMs = stack.config.backfill.delay;
  const bareYears = range(1901, years);
  const ourYears = range(1951, years);
  const t0 = performance.now();
  let bareRecords = 0;
  for (const year of bareYears) bareRecords += await runPipeline(docker, stack.app, year, delayMs);
  const bareSeconds = (performance.now() - t0) / 1000;

  const t1 = performance.now();
  const { handle } = await startBackfill(stack.client, stack.config, { from: ourYears[0], to: ourYears.at(-1), by: 'bench' });
  const outcome: BackfillOutcome = await handle.result();
  const ourSeconds = (performance.now() - t1) / 1000;
  const chunks = ourYears.length * stack.config.backfill.counties.length;

  const crash = await backfillThroughAKill(stack, docker, 1990, startWorker);
  const oursPerSecond = outcome.recordsWritten / ourSeconds;
  const barePerSecond = bareRecords / bareSeconds;
  const ratio = oursPerSecond / barePerSecond;
  const perHeartbeat = crash.recordsPerSecond * (HEARTBEAT_THROTTLE_MS / 1000);
  return {
    row: `backfill (${years} years × ${stack.config.backfill.counties.length} counties, ${delayMs} ms/record)`,
    ours: `${fmt(oursPerSecond)} records/s (${outcome.recordsWritten} in ${chunks} chunks); after a worker SIGKILL mid-chunk ${crash.writtenTwice} record(s) written twice`,
    baseline: `pipeline run directly: ${fmt(barePerSecond)} records/s (${bareRecords})`,
    ratio,
    target: '≥ 0.9×; re-done after a kill ≤ one heartbeat’s worth',
    met: ratio >= 0.9 && crash.writtenTwice <= Math.ceil(perHeartbeat) && crash.everyRecordOnce,
    figures: { years, chunks, delayMs, oursPerSecond, barePerSecond, writtenTwice: crash.writtenTwice, recordsPerHeartbeat: perHeartbeat, everyRecordOnce: String(crash.everyRecordOnce) },
    notes: [
      `a heartbeat reaches the server at most ${HEARTBEAT_THROTTLE_MS} ms late (maxHeartbeatThrottleInterval): ${fmt(perHeartbeat, 1)} records at the killed run's pace`,
      `per chunk: ${fmt((ourSeconds / chunks) * 1000, 0)} ms through the workflow, ${fmt(((bareSeconds / bareRecords) * outcome.recordsWritten * 1000) / chunks, 0)} ms of the direct pipeline's time for as many records (the difference is one docker exec and one activity round trip per chunk)`,
    ],
  };
}

/** The worker's maxHeartbeatThrottleInterval (src/worker/worker.ts). */
const HEARTBEAT_THROTTLE_MS = 1000;

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

/** One direct run of the pipeline for a year (all counties); the records it wrote. */
async function runPipeline(docker: Docker, app: AuditApp, year: number, delayMs: number): Promise<number> {
  const result = await execInContainer(docker, app.containers.etl, [...app.etl.program, 'run', '--year', String(year), '--delay-ms', String(delayMs)]);
  if (result.exitCode !== 0) throw new Error(`the pipeline for ${year} exited ${result.exitCode}: ${result.output.slice(-500)}`);
  return etlWrites(await etlLog(docker, app), [year]).size;
}

async function backfillThroughAKill(stack: SandboxStack, docker: Docker, year: number, startWorker: () => Promise<BenchProcess>) {
  const t0 = performance.now();
  const { handle } = await startBackfill(stack.client, stack.config, { from: year, to: year, by: 'bench' });
  // Killed once a chunk after the first is under way (its first heartbeat, sent at once, names a cursor).
  for (;;) {
    const view = await getBackfill(stack.client, handle.workflowId);
    if (view.chunksDone >= 1 && view.cursor) break;
    if (view.phase === 'done') throw new Error(`the backfill of ${year} finished before a chunk could be killed half-way`);
    await sleep(50);
  }
  const writtenBeforeKill = etlWrites(await etlLog(docker, stack.app), [year]).size;
  const elapsed = (performance.now() - t0) / 1000;
  await stack.worker.kill('SIGKILL');
  stack.worker = await startWorker();
  await handle.result();
  const writes = etlWrites(await etlLog(docker, stack.app), [year]);
  const expected = stack.config.backfill.counties.length * DEFAULT_ETL_RECORDS;
  return {
    writtenTwice: [...writes.values()].filter((n) => n > 1).length,
    everyRecordOnce: writes.size === expected && (await documentRows(stack.app, year)) === expected,
    recordsPerSecond: writtenBeforeKill / elapsed,
  };
}

/** The backfilled rows of `year` in the sandbox's documents table (the ETL upserts on its natural key). */
async function documentRows(app: AuditApp, year: number): Promise<number> {
  const pg = new PgClient({ connectionString: app.urls.database });
  await pg.connect();
  try {
    const { rows } = await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM documents WHERE year = $1 AND report_type LIKE 'report-%'`, [year]);
    return rows[0]!.n;
  } finally {
    await pg.end();
  }
}
