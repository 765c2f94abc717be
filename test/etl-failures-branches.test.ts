// Every branch of the ETL Job Failures runbook in seconds: the real workflow on the time-skipping test server, its
// activities typed stubs (test/etl-failures.test.ts runs it against the sandbox's real etl container). Also the
// classification of log lines the runbook decides by, on the pipeline's own lines.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Context } from '@temporalio/activity';
import { classifyEtlLog, type EtlDiagnosis, type EtlFailure, type PipelineRef, type PipelineRun } from '../src/activities/etl';
import type { Freshness } from '../src/activities/postgres';
import type { ConfigInput } from '../src/config/schema';
import { backfillStatusQuery } from '../src/workflows/backfill/messages';
import { approveUpdate, rejectUpdate } from '../src/workflows/lifecycle/definitions';
import { timeSkippingIncidents, type ActivityStubs } from './support/timeSkipping';

const incidents = timeSkippingIncidents({ taskQueuePrefix: 'etl-branches', runbook: 'etl-failures', labels: { alertname: 'ETLJobFailed', service: 'etl' } });
const { observe, outcomeOf, calls, pages } = incidents;

const config = (etlContainer = 'etl'): ConfigInput => ({
  targets: {
    etl: { container: etlContainer },
    postgres: { container: 'audit-app-postgres', url: 'postgres://postgres@127.0.0.1:9/audit_app' },
  },
  approvers: { 'clean-downloads': ['dana'] },
  backfill: { counties: ['Kisumu', 'Nairobi'] },
});

const T = '2026-11-27T10:00:00.000Z';
const lines = {
  rateLimited: `${T} ERROR rate limited by source: HTTP 429 Too Many Requests (delay_ms=20 is under the source's 200 ms) county=Nairobi`,
  sourceChanged: `${T} ERROR source format changed: selector "table.audit-reports" matched nothing county=Kisumu`,
  diskFull: `${T} ERROR disk full: ENOSPC: no space left on device, write '/tmp/etl_downloads/Kisumu-2026-3.html'`,
  crashed: `${T} FATAL crashed: TypeError: cannot read properties of undefined after record=12`,
  other: `${T} ERROR could not connect to the database: ECONNREFUSED 127.0.0.1:5432`,
};
const failureOf = (kind: EtlFailure['kind']): EtlFailure => ({ kind, evidence: lines[kind === 'rate-limited' ? 'rateLimited' : kind === 'source-changed' ? 'sourceChanged' : kind === 'disk-full' ? 'diskFull' : kind] });

function diagnosis(failure: EtlFailure | undefined, overrides: Partial<EtlDiagnosis> = {}): EtlDiagnosis {
  return {
    container: 'etl',
    exists: true,
    running: true,
    linesRead: 200,
    ...(failure ? { failure } : {}),
    excerpt: failure?.evidence ?? `${T} INFO run finished run=r1 written=240 seconds=5`,
    lastRun: { id: 'r2', startedAt: T, finishedAt: T, ok: false, exitCode: 3, written: 2 },
    lastSuccess: { id: 'r1', startedAt: '2026-11-26T10:00:00.000Z', finishedAt: '2026-11-26T10:00:05.000Z', ok: true, exitCode: 0, written: 240 },
    downloads: { dir: '/tmp/etl_downloads', freeBytes: 0, totalBytes: 8 * 1024 * 1024, files: 412 },
    ...overrides,
  };
}

const succeeded = (ref: PipelineRef): PipelineRun => ({ ok: true, exitCode: 0, runId: 'r3', written: 240, ...(ref.delayMs === undefined ? {} : { delayMs: ref.delayMs }) });
const failed = (kind: EtlFailure['kind'], exitCode: number): PipelineRun => ({ ok: false, exitCode, written: 2, failure: failureOf(kind) });

interface Script {
  found?: EtlFailure['kind'];
  /** What each retry answers, in order (the last one repeats); default: success. */
  runs?: Array<(ref: PipelineRef) => PipelineRun>;
  diagnosis?: Partial<EtlDiagnosis>;
  /** The data written by a run moves MAX(updated_at) past the runbook's start; false: the run writes nothing new. */
  runsRefresh?: boolean;
}

/** Stubs for one incident, and what the runbook asked of them. */
function etlStubs(script: Script = {}): { stubs: ActivityStubs; delays: Array<number | undefined> } {
  const { found, runs = [succeeded], runsRefresh = true } = script;
  const delays: Array<number | undefined> = [];
  let refreshed = false;
  const stubs: ActivityStubs = {
    diagnoseEtl: async () => diagnosis(found ? failureOf(found) : undefined, script.diagnosis),
    dataFreshness: async (): Promise<Freshness> => ({
      table: 'documents',
      column: 'updated_at',
      // The server's clock (time-skipping) at this attempt: later than the runbook's start.
      latest: refreshed ? new Date(Context.current().info.currentAttemptScheduledTimestampMs + 1).toISOString() : '2026-11-20T00:00:00.000Z',
      ageSeconds: refreshed ? 0 : 7 * 86_400,
    }),
    runPipeline: async (ref) => {
      delays.push(ref.delayMs);
      const run = runs[Math.min(delays.length - 1, runs.length - 1)]!(ref);
      if (run.ok && runsRefresh) refreshed = true;
      return run;
    },
    cleanDownloads: async () => ({ removed: 412, freedBytes: 8 * 1024 * 1024 }),
    restartContainer: async () => undefined,
  };
  return { stubs, delays };
}

describe('the pipeline\'s log lines, classified', () => {
  test('each failure line of the pipeline is its kind, with the line as the evidence', () => {
    assert.deepEqual(classifyEtlLog([`${T} INFO run started run=r2 counties=6 year=2026 from=1 delay_ms=20`, lines.rateLimited]), { kind: 'rate-limited', evidence: lines.rateLimited });
    assert.equal(classifyEtlLog([lines.sourceChanged])?.kind, 'source-changed');
    assert.equal(classifyEtlLog([lines.diskFull])?.kind, 'disk-full');
    assert.equal(classifyEtlLog([lines.crashed])?.kind, 'crashed');
    assert.equal(classifyEtlLog([lines.other])?.kind, 'other');
  });

  test('the latest run decides: a run that finished after a failure leaves nothing to fix; the latest failure wins', () => {
    assert.equal(classifyEtlLog([lines.diskFull, `${T} INFO run started run=r3`, `${T} INFO run finished run=r3 written=240 seconds=5`]), undefined);
    assert.equal(classifyEtlLog([lines.diskFull, `${T} INFO run started run=r3`, lines.crashed])?.kind, 'crashed');
    assert.equal(classifyEtlLog([`${T} WARN slow answer from the source`, `${T} INFO wrote record county=Kisumu year=2026 record=1 of=40`]), undefined);
    assert.equal(classifyEtlLog([]), undefined);
  });
});

describe('ETL Job Failures runbook, branch by branch (time-skipping server, stub activities)', { timeout: 120_000 }, () => {
  before(() => incidents.start());
  after(() => incidents.stop());

  test('a crashed run is retried at once, as it was, and the data is verified fresh', async () => {
    const { stubs, delays } = etlStubs({ found: 'crashed' });
    const incident = await incidents.startIncident({}, config(), stubs);
    const outcome = await outcomeOf(incident);
    const messages = outcome.timeline.map((e) => e.message);
    assert.equal(outcome.resolution, 'remediated', messages.join('\n'));
    assert.deepEqual(delays, [undefined], 'one retry, with the pipeline\'s own delay');
    assert.ok(messages.some((m) => m.startsWith(`200 log line(s) of etl: the latest run failed — crashed: ${lines.crashed}.`)), messages.join('\n'));
    assert.ok(messages.some((m) => m.startsWith('Latest data: MAX(updated_at) of documents is 2026-11-20T00:00:00.000Z, 7 d old.')));
    assert.ok(messages.includes('Retry 1: the pipeline ran (run r3) and wrote 240 record(s).'));
    assert.ok(messages.some((m) => /^Fresh again: MAX\(updated_at\) \S+ is past the runbook's start/.test(m)), messages.join('\n'));
    assert.equal(calls(incident).cleanDownloads, undefined);
  });

  test('rate limited: the runbook waits rateLimitWaitSeconds, then retries with retryDelayMs between requests', async () => {
    const { stubs, delays } = etlStubs({ found: 'rate-limited' });
    const incident = await incidents.startIncident({}, config(), stubs);
    const waiting = await observe(incident);
    assert.deepEqual(delays, [], 'no retry before the wait is over');
    assert.ok(waiting.timeline.some((e) => e.message === 'Rate limited by the source: waiting 60 s, then retrying with 250 ms between requests.'));
    await incidents.env.sleep('59s');
    await observe(incident);
    assert.deepEqual(delays, [], 'still waiting after 59 s');
    await incidents.env.sleep('2s');
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.deepEqual(delays, [250]);
    assert.ok(outcome.timeline.some((e) => e.message === 'Retry 1: the pipeline ran with --delay-ms 250 (run r3) and wrote 240 record(s).'));
  });

  test('rate limited again on the retry: it waits again and doubles the delay; the policy sets both', async () => {
    const { stubs, delays } = etlStubs({ found: 'rate-limited', runs: [() => failed('rate-limited', 3), succeeded] });
    const incident = await incidents.startIncident({}, { ...config(), policies: { 'etl-failures': { rateLimitWaitSeconds: 5, retryDelayMs: 300 } } }, stubs);
    await observe(incident);
    await incidents.env.sleep('6s');
    await observe(incident);
    assert.deepEqual(delays, [300]);
    await incidents.env.sleep('6s');
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.deepEqual(delays, [300, 600]);
  });

  test('disk full: the download directory is cleaned only once approved, then the pipeline is retried', async () => {
    const { stubs, delays } = etlStubs({ found: 'disk-full' });
    const incident = await incidents.startIncident({}, config(), stubs);
    const waiting = await observe(incident);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['clean-downloads']);
    assert.equal(
      waiting.pendingApprovals[0]!.question,
      `The ETL's download directory is full (0 B free of 8.0 MiB in /tmp/etl_downloads, 412 file(s)): "${lines.diskFull}". Empty it (clean-downloads in etl) and retry?`,
    );
    assert.equal(calls(incident).cleanDownloads, undefined, 'nothing cleaned before approval');
    assert.deepEqual(delays, [], 'no retry before the disk has space');
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'clean-downloads', by: 'dana' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(calls(incident).cleanDownloads, 1);
    assert.deepEqual(delays, [undefined]);
    const messages = outcome.timeline.map((e) => e.message);
    assert.ok(messages.indexOf('Cleaned the download directory of etl: 412 file(s), 8.0 MiB freed.') < messages.indexOf('Retry 1: the pipeline ran (run r3) and wrote 240 record(s).'));
  });

  test('disk full and the cleaning rejected: nothing is cleaned or retried, the incident waits for a human', async () => {
    const { stubs, delays } = etlStubs({ found: 'disk-full' });
    const incident = await incidents.startIncident({}, config(), stubs);
    await observe(incident);
    await incident.executeUpdate(rejectUpdate, { args: [{ step: 'clean-downloads', by: 'dana' }] });
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.equal(calls(incident).cleanDownloads, undefined);
    assert.deepEqual(delays, []);
    assert.ok(status.timeline.some((e) => e.message === 'Cleaning the download directory was not approved: it is left as it is, and the pipeline cannot run until it has space.'));
    await incident.terminate('test over');
  });

  test('source changed: never retried; escalated with the evidence line and the log excerpt, a follow-up for the selectors', async () => {
    const excerpt = [`${T} INFO run started run=r2 counties=6 year=2026 from=1 delay_ms=20`, lines.sourceChanged].join('\n');
    const { stubs, delays } = etlStubs({ found: 'source-changed', diagnosis: { excerpt } });
    const incident = await incidents.startIncident({}, config(), stubs);
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.deepEqual(delays, [], 'no retry');
    assert.equal(calls(incident).runPipeline, undefined);
    assert.equal(status.escalationLevel, 1);
    const escalated = status.timeline.find((e) => e.kind === 'escalated')!;
    const detail = `The last 2 log line(s) of etl:\n  ${T} INFO run started run=r2 counties=6 year=2026 from=1 delay_ms=20\n  ${lines.sourceChanged}`;
    assert.equal(escalated.message, `The ETL source changed and a human must update the selectors: ${lines.sourceChanged}: escalated to oncall (level 1).\n${detail}`);
    const page = pages.find((p) => p.workflowId === incident.workflowId && p.text.includes(lines.sourceChanged));
    assert.ok(page?.text.endsWith(`— escalated to you (level 1, ${incident.workflowId})\n${detail}`), `the page carries the evidence and the excerpt: ${page?.text}`);
    assert.ok(status.followUps.includes("Update the ETL scraper's selectors, test them with sample data, re-deploy the ETL and run it again."));
    const finding = status.timeline.find((e) => e.message.startsWith('The source website changed'))!;
    assert.deepEqual(finding.data, { evidence: lines.sourceChanged });
    await incident.terminate('test over');
  });

  test('a retry that finds the source changed stops retrying and escalates with that run\'s evidence and last lines', async () => {
    const runExcerpt = [`${T} INFO run started run=r3 counties=6 year=2026 from=1 delay_ms=20`, lines.sourceChanged].join('\n');
    const { stubs, delays } = etlStubs({ found: 'crashed', runs: [() => ({ ...failed('source-changed', 4), excerpt: runExcerpt })] });
    const incident = await incidents.startIncident({}, config(), stubs);
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.deepEqual(delays, [undefined]);
    const escalated = status.timeline.find((e) => e.kind === 'escalated');
    assert.ok(escalated?.message.includes(lines.sourceChanged), escalated?.message);
    assert.ok(escalated?.message.endsWith(`\n  ${T} INFO run started run=r3 counties=6 year=2026 from=1 delay_ms=20\n  ${lines.sourceChanged}`), `the retry's own lines, not the diagnosis's: ${escalated?.message}`);
    await incident.terminate('test over');
  });

  test('a pipeline that keeps failing is retried maxRetries times, then escalated with the last evidence', async () => {
    const { stubs, delays } = etlStubs({ found: 'other', runs: [() => failed('crashed', 70)] });
    const incident = await incidents.startIncident({}, config(), stubs);
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.deepEqual(delays, [undefined, undefined]);
    assert.ok(status.timeline.some((e) => e.kind === 'escalated' && e.message.startsWith(`The ETL still fails after 2 retries (crashed): ${lines.crashed}`)));
    await incident.terminate('test over');
  });

  test('a job that is not running: the container is started again and the pipeline run; no failure in the log is still a retry', async () => {
    const { stubs, delays } = etlStubs({ diagnosis: { running: false, statusError: 'container etl is exited', lastRun: undefined, lastSuccess: undefined, downloads: undefined } });
    const incident = await incidents.startIncident({ alertname: 'ETLJobNotRunning' }, config(), stubs);
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(calls(incident).restartContainer, 1);
    assert.deepEqual(delays, [undefined]);
    assert.ok(outcome.timeline.some((e) => e.message === '200 log line(s) of etl: no failure in the latest run. Container etl is not running. No status: container etl is exited.'));
  });

  test('a run that finishes without moving MAX(updated_at) past the runbook\'s start is not verified: a human looks', async () => {
    const { stubs } = etlStubs({ found: 'crashed', runsRefresh: false });
    const incident = await incidents.startIncident({}, config(), stubs);
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.ok(status.timeline.some((e) => e.message.startsWith("Not fresh: MAX(updated_at) 2026-11-20T00:00:00.000Z is not past the runbook's start")));
    await incident.terminate('test over');
  });

  test('ETLDataStale for a past range: once the pipeline runs again, the backfill of those years starts as an abandoned child, not waited for', async () => {
    const { stubs } = etlStubs();
    const incident = await incidents.startIncident({ alertname: 'ETLDataStale', from_year: '2023', to_year: '2024' }, config('etl-stale'), stubs);
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated', 'the incident closes while the backfill runs on');
    const link = outcome.timeline.find((e) => e.message.startsWith('Started the backfill of 2023–2024'))!;
    assert.ok(link, outcome.timeline.map((e) => e.message).join('\n'));
    assert.equal(link.data?.workflowId, 'backfill-etl-stale');
    const child = incidents.env.client.workflow.getHandle('backfill-etl-stale');
    try {
      const described = await child.describe();
      assert.equal(described.status.name, 'RUNNING');
      assert.equal(described.parentExecution?.workflowId, incident.workflowId);
      const status = await child.query(backfillStatusQuery);
      assert.deepEqual(status.request, { from: 2023, to: 2024, by: incident.workflowId });
      assert.equal(status.chunksTotal, 4, 'every configured county (2) for each year (2)');
    } finally {
      await child.terminate('test over');
    }
  });

  test('with hands-off on by then, the backfill of a past range is not started: recorded as what it would have done', async () => {
    const { stubs } = etlStubs();
    let pipelineRan = false;
    const runPipeline = stubs.runPipeline!;
    const handsOff = { scope: 'global' as const, on: true, by: 'alice', at: '2026-11-28T07:00:00.000Z' };
    const incident = await incidents.startIncident({ alertname: 'ETLDataStale', from_year: '2023', to_year: '2024' }, config('etl-hands-off'), {
      ...stubs,
      runPipeline: async (arg) => {
        pipelineRan = true;
        return runPipeline(arg);
      },
      handsOffSwitches: async () => (pipelineRan ? [handsOff] : []),
    });
    const status = await observe(incident);
    assert.deepEqual(
      status.timeline.filter((e) => e.kind === 'would-have').map((e) => e.message),
      ['Hands-off (global, set by alice): would have run "Start the backfill of 2023–2024".'],
    );
    await assert.rejects(incidents.env.client.workflow.getHandle('backfill-etl-hands-off').describe(), /not found/i);
    await incident.terminate('test over');
  });

  test('a backfill already running is named, not started twice; labels that are not a past range start none', async () => {
    const running = await incidents.startIncident({ alertname: 'ETLDataStale', from_year: '2021', to_year: '2021' }, config('etl-busy'), etlStubs().stubs);
    await outcomeOf(running);
    const again = await incidents.startIncident({ alertname: 'ETLDataStale', from_year: '2022', to_year: '2022' }, config('etl-busy'), etlStubs().stubs);
    const outcome = await outcomeOf(again);
    assert.ok(outcome.timeline.some((e) => e.message === 'No backfill of 2022–2022: one is already running (backfill-etl-busy); start it again when that one is done.'));
    await incidents.env.client.workflow.getHandle('backfill-etl-busy').terminate('test over');

    const future = await incidents.startIncident({ alertname: 'ETLDataStale', from_year: '2024', to_year: '2999' }, config('etl-future'), etlStubs().stubs);
    const refused = await outcomeOf(future);
    assert.ok(refused.timeline.some((e) => /^No backfill: the labels from_year=2024 to_year=2999 are not years from 1900 to \d{4}\.$/.test(e.message)));
    const injected = await incidents.startIncident({ alertname: 'ETLDataStale', from_year: '2023; rm -rf /', to_year: '2024' }, config('etl-future'), etlStubs().stubs);
    assert.ok((await outcomeOf(injected)).timeline.some((e) => e.message.startsWith('No backfill: the labels from_year=2023; rm -rf / to_year=2024 are not years')));
    await assert.rejects(incidents.env.client.workflow.getHandle('backfill-etl-future').describe(), /not found/i);
  });
});
