/**
 * Runbook §3 "ETL Job Failures" (alerts ETLJobFailed, ETLJobNotRunning, and ETLDataStale for stale data).
 * Diagnosis: `docker logs etl --tail=200` (classified here: rate limited, source changed, disk full, crashed or other,
 * with the line that says so), the last successful run, `SELECT MAX(updated_at) FROM documents`, and the free space
 * of the download directory.
 * Resolution: "Manual retry" — run the pipeline again (`docker exec`, an argv array, never a shell string built
 * from the alert) — after fixing the common issue the logs show: source website changed → no retry, a human updates
 * the selectors; rate limited → wait, then retry with a longer delay between requests; disk space full → clean the
 * download directory (only with approval), then retry. "Or backfill specific date range": when the alert names past
 * years (`from_year`, `to_year`), the backfill procedure is started for them, and not waited for.
 * Verify: the data's freshness advanced past the moment the runbook started.
 * Prevention: monitor the ETL success rate, alert on data freshness, document the source website's contacts.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, patched, sleep, startChild, workflowInfo } from '@temporalio/workflow';
import type { EtlDiagnosis, EtlFailure, EtlRun, PipelineRun } from '../activities/etl';
import type { Freshness } from '../activities/postgres';
import { alertOf, type IncidentInput, type IncidentOutcome, type TargetFacts } from '../incidents/model';
import { policyOf, procedures } from '../runbooks/catalog';
import { etl, postgres } from './activityProxies';
import type { backfill } from './backfill';
import type { RunbookContext, VerifyContext } from './lifecycle/runbookContext';
import { runIncident } from './lifecycle/runIncident';
import { restartContainer } from './steps/docker';

type Policy = ReturnType<typeof policyOf<'etl-failures'>>;

/** The runbook's freshness query: `SELECT MAX(updated_at) FROM documents`. */
const FRESHNESS = { table: 'documents', column: 'updated_at' } as const;
/** The largest `--delay-ms` a retry asks for, however often the source still rate-limits. */
const MAX_DELAY_MS = 600_000;

export async function etlFailures(input: IncidentInput): Promise<IncidentOutcome> {
  const startedAt = Date.now();
  const { etl: pipeline, postgres: database } = input.targets;
  const policy = policyOf('etl-failures', input.policy);
  return runIncident(input, {
    prevention: ['Monitor the ETL success rate.', 'Alert on data freshness (MAX(updated_at) of documents).', "Document the source website's contacts."],
    verify: async (rb) => {
      if (!database) return false;
      const fresh = await freshness(rb, database, 'Verify: freshness after the alert resolved');
      return fresh.ageSeconds !== null && fresh.ageSeconds <= policy.freshWithinMinutes * 60;
    },
    respond: async (rb) => {
      if (!pipeline) {
        rb.note('No ETL target is configured (targets.etl): nothing to act on.');
        return false;
      }
      // Diagnosis
      const diagnosis = await diagnose(rb, pipeline);
      if (database) await freshness(rb, database, 'Diagnose: freshness of documents');
      if (!diagnosis.exists) {
        await rb.escalate(`The ETL container ${pipeline.container} does not exist`);
        return false;
      }
      if (!diagnosis.running) await restartContainer(rb, 'etl', pipeline);

      // Resolution: fix the common issue the logs show, then the manual retry — at most maxRetries times.
      let failure = diagnosis.failure;
      let excerpt = diagnosis.excerpt;
      let delayMs: number | undefined;
      for (let retry = 1; ; retry++) {
        if (failure?.kind === 'source-changed') return sourceChanged(rb, pipeline, failure, excerpt);
        if (retry > policy.maxRetries) {
          await rb.escalate(`The ETL still fails after ${policy.maxRetries} retries (${failure?.kind}): ${failure?.evidence}`);
          return false;
        }
        if (failure?.kind === 'rate-limited') delayMs = await waitOutRateLimit(rb, failure, delayMs, policy);
        if (failure?.kind === 'disk-full' && !(await cleanDownloads(rb, pipeline, failure, diagnosis))) return false;
        const run = await runPipeline(rb, pipeline, retry, delayMs);
        if (run.ok) break;
        failure = run.failure;
        excerpt = run.excerpt ?? '';
      }

      // Verify
      const verified = await freshnessAdvanced(rb, database, startedAt);
      // "Or backfill specific date range"
      if (verified) await backfillPastRange(rb);
      return verified;
    },
  });
}

/** The log tail classified, and `<program> status`. */
function diagnose(rb: RunbookContext, pipeline: TargetFacts): Promise<EtlDiagnosis> {
  return rb.step(etl.diagnoseEtl, { target: 'etl', tailLines: 200 }, {
    title: 'Diagnose: last 200 log lines, last run, download directory',
    summary: `docker logs --tail=200 ${pipeline.container}; … status`,
    record: describeDiagnosis,
  });
}

function freshness(rb: VerifyContext, database: TargetFacts, title: string): Promise<Freshness> {
  return rb.step(postgres.dataFreshness, { target: 'postgres', ...FRESHNESS }, {
    title,
    summary: `SELECT MAX(${FRESHNESS.column}) FROM ${FRESHNESS.table} on ${database.container}`,
    record: (f) => (f.latest === null ? `${f.table} is empty.` : `Latest data: MAX(${f.column}) of ${f.table} is ${f.latest}, ${duration(f.ageSeconds ?? 0)} old.`),
  });
}

/**
 * If the source website changed: no retry can help; a human updates the selectors, and gets the log excerpt with
 * the page (at most 20 lines of at most 500 characters: the activities clip it).
 */
async function sourceChanged(rb: RunbookContext, pipeline: TargetFacts, failure: EtlFailure, excerpt: string): Promise<false> {
  rb.finding('The source website changed: the pipeline cannot read it until its selectors are updated, so it is not retried.', { evidence: failure.evidence });
  rb.followUp('Update the ETL scraper\'s selectors, test them with sample data, re-deploy the ETL and run it again.');
  const lines = excerpt.split('\n').filter((line) => line !== '');
  const detail = lines.length ? [`The last ${lines.length} log line(s) of ${pipeline.container}:`, ...lines.map((line) => `  ${line}`)].join('\n') : undefined;
  await rb.escalate(`The ETL source changed and a human must update the selectors: ${failure.evidence}`, detail);
  return false;
}

/** If rate limited: wait, then retry with a longer delay between requests (doubled each time it is rate limited again). */
async function waitOutRateLimit(rb: RunbookContext, failure: EtlFailure, delayMs: number | undefined, policy: Policy): Promise<number> {
  const longer = Math.min(delayMs === undefined ? policy.retryDelayMs : delayMs * 2, MAX_DELAY_MS);
  rb.note(`Rate limited by the source: waiting ${policy.rateLimitWaitSeconds} s, then retrying with ${longer} ms between requests.`, { evidence: failure.evidence });
  await sleep(policy.rateLimitWaitSeconds * 1_000);
  return longer;
}

/** If the disk is full: clean the download directory, only with approval. False when rejected. */
async function cleanDownloads(rb: RunbookContext, pipeline: TargetFacts, failure: EtlFailure, diagnosis: EtlDiagnosis): Promise<boolean> {
  const space = diagnosis.downloads ? ` (${bytes(diagnosis.downloads.freeBytes)} free of ${bytes(diagnosis.downloads.totalBytes)} in ${diagnosis.downloads.dir}, ${diagnosis.downloads.files} file(s))` : '';
  const question = `The ETL's download directory is full${space}: "${failure.evidence}". Empty it (clean-downloads in ${pipeline.container}) and retry?`;
  if (!(await rb.approval('clean-downloads', question))) {
    rb.note('Cleaning the download directory was not approved: it is left as it is, and the pipeline cannot run until it has space.');
    return false;
  }
  await rb.act(etl.cleanDownloads, { target: 'etl' }, {
    title: 'Clean the download directory',
    summary: `docker exec ${pipeline.container} … clean-downloads`,
    record: (c) => `Cleaned the download directory of ${pipeline.container}: ${c.removed} file(s), ${bytes(c.freedBytes)} freed.`,
  });
  return true;
}

/** The manual retry: the pipeline run once more, by `docker exec` with an argv array. */
function runPipeline(rb: RunbookContext, pipeline: TargetFacts, retry: number, delayMs: number | undefined): Promise<PipelineRun> {
  const delay = delayMs === undefined ? '' : ` --delay-ms ${delayMs}`;
  return rb.act(etl.runPipeline, { target: 'etl', ...(delayMs === undefined ? {} : { delayMs }) }, {
    title: `Retry ${retry}: run the pipeline${delay}`,
    summary: `docker exec ${pipeline.container} … run${delay}`,
    record: (r) =>
      r.ok
        ? `Retry ${retry}: the pipeline ran${delay ? ` with${delay}` : ''}${r.runId ? ` (run ${r.runId})` : ''} and wrote ${r.written} record(s).`
        : `Retry ${retry}: the pipeline failed again, exit ${r.exitCode} after ${r.written} record(s) — ${r.failure?.kind}: ${r.failure?.evidence}`,
  });
}

/** The data is fresh again: MAX(updated_at) is later than the moment this runbook started. */
async function freshnessAdvanced(rb: RunbookContext, database: TargetFacts | undefined, startedAt: number): Promise<boolean> {
  if (!database) {
    rb.note('No postgres target is configured (targets.postgres): the run finished, its freshness is not verified.');
    return true;
  }
  const after = await freshness(rb, database, 'Verify: freshness after the retry');
  const since = new Date(startedAt).toISOString();
  if (after.latest !== null && Date.parse(after.latest) > startedAt) {
    rb.finding(`Fresh again: MAX(${after.column}) ${after.latest} is past the runbook's start (${since}).`);
    return true;
  }
  rb.finding(`Not fresh: MAX(${after.column}) ${after.latest ?? 'is empty'} is not past the runbook's start (${since}), although the pipeline finished.`);
  return false;
}

/** When the alert names past years (`from_year`, `to_year`), starts the backfill for them and does not wait for it. */
async function backfillPastRange(rb: RunbookContext): Promise<void> {
  const labels = alertOf(rb.input.trigger)?.labels ?? {};
  if (labels.from_year === undefined && labels.to_year === undefined) return;
  const range = pastRange(labels.from_year ?? labels.to_year!, labels.to_year ?? labels.from_year!);
  if (typeof range === 'string') {
    rb.note(`No backfill: ${range}.`, { from_year: labels.from_year, to_year: labels.to_year });
    return;
  }
  const setup = rb.input.procedures?.backfill;
  if (!setup) {
    rb.note(`No backfill of ${range.from}–${range.to}: the worker's config cannot run one (targets.etl).`);
    return;
  }
  const by = workflowInfo().workflowId;
  try {
    // A child, so Temporal links the two both ways; abandoned, so it outlives this incident, which does not wait for it.
    const start = () =>
      startChild<typeof backfill>(procedures.backfill.workflowType, {
        workflowId: setup.workflowId,
        args: [{ ...setup.input, request: { ...range, by } }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        staticSummary: `Backfill ${range.from}–${range.to}, started by ${by}`,
      });
    // Writing data is a change: through the gate every change passes (hands-off, pause, abort). Incidents from before replay without it.
    const child = patched('backfill-start-through-gate') ? await rb.change(`Start the backfill of ${range.from}–${range.to}`, start) : await start();
    rb.note(`Started the backfill of ${range.from}–${range.to} for the stale range: ${child.workflowId} (runbooks backfill status; not waited for).`, {
      workflowId: child.workflowId,
      runId: child.firstExecutionRunId,
      ...range,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    rb.note(`No backfill of ${range.from}–${range.to}: one is already running (${setup.workflowId}); start it again when that one is done.`, { workflowId: setup.workflowId });
  }
}

/** Years from the alert's labels, validated: whole years from 1900, not after this year, `from` not after `to`. */
function pastRange(fromLabel: string, toLabel: string): { from: number; to: number } | string {
  const thisYear = new Date().getUTCFullYear();
  const year = (text: string) => (/^\d{4}$/.test(text) && Number(text) >= 1900 && Number(text) <= thisYear ? Number(text) : undefined);
  const from = year(fromLabel);
  const to = year(toLabel);
  if (from === undefined || to === undefined) return `the labels from_year=${fromLabel} to_year=${toLabel} are not years from 1900 to ${thisYear}`;
  if (from > to) return `from_year ${from} is after to_year ${to}`;
  return { from, to };
}

function describeDiagnosis(d: EtlDiagnosis): string {
  if (!d.exists) return `Container ${d.container} does not exist.`;
  const failure = d.failure ? `the latest run failed — ${d.failure.kind}: ${d.failure.evidence}` : 'no failure in the latest run';
  const state = d.running ? '' : ` Container ${d.container} is not running.`;
  const downloads = d.downloads ? ` Download directory ${d.downloads.dir}: ${bytes(d.downloads.freeBytes)} free of ${bytes(d.downloads.totalBytes)}, ${d.downloads.files} file(s).` : '';
  const status = d.statusError ? ` No status: ${d.statusError}.` : ` Last run: ${describeRun(d.lastRun)}. Last successful run: ${describeRun(d.lastSuccess)}.`;
  return `${d.linesRead} log line(s) of ${d.container}: ${failure}.${state}${status}${downloads}`;
}

function describeRun(run: EtlRun | undefined): string {
  if (!run) return 'none';
  const outcome = run.ok === undefined ? '' : run.ok ? `, ok, ${run.written ?? 0} record(s)` : `, failed (exit ${run.exitCode ?? '?'})`;
  return `${run.id} at ${run.finishedAt ?? run.startedAt ?? '?'}${outcome}`;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3_600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}
