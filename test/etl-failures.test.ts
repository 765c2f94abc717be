// The ETL Job Failures runbook against the sandbox audit-app's real etl container (its pipeline writing `documents`
// in the sandbox's PostgreSQL), on a real worker and real Temporal: each failure class is made for real by
// breakAuditApp, the alert goes through intake, and what the runbook did is read back from the container's own log
// (`run started` lines: how often the pipeline ran, with which --delay-ms) and from the database.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import { dockerClient } from '../src/activities';
import { demultiplex, execInContainer } from '../src/activities/docker';
import { actOnIncident } from '../src/incidents/operations';
import { auditAppTargets, breakAuditApp, EtlLogPatterns, removeAuditApp, type AuditApp, type EtlStatus } from '../src/sandbox/auditApp';
import type { IncidentOutcome } from '../src/incidents/model';
import { dropAuditSchema } from './support/audit';
import { testConfig } from './support/config';
import { requireEnv } from './support/env';
import { startTestAuditApp } from './support/sandbox';
import { recordHistoryIfAsked } from './support/histories';
import { alert, fire, outcomeOf, waitForStatus } from './support/incidents';
import { startWorker, type RunningWorker } from './support/worker';

/** The source rate-limits runs with under 40 ms between records; the runbook retries with 60 (its default is 250). */
const SOURCE_MIN_DELAY_MS = 40;
const RETRY_DELAY_MS = 60;

describe('ETL Job Failures runbook, against the sandbox etl container', { timeout: 280_000 }, () => {
  let docker: Docker;
  let app: AuditApp;
  let worker: RunningWorker;
  let config: ReturnType<typeof testConfig>;
  const prefix = `etlrb-${randomBytes(3).toString('hex')}-`;

  const etl = (...args: string[]) => execInContainer(docker, app.containers.etl, [...app.etl.program, ...args]);
  async function status(): Promise<EtlStatus> {
    const { exitCode, output } = await etl('status');
    assert.equal(exitCode, 0, output);
    return JSON.parse(output) as EtlStatus;
  }
  /** Every run of the pipeline in the container's log, in order: its id and its --delay-ms. */
  async function runsStarted(): Promise<Array<{ run: string; delayMs: number }>> {
    const raw = await docker.getContainer(app.containers.etl).logs({ stdout: true, stderr: true, follow: false });
    return demultiplex(raw)
      .toString('utf8')
      .split('\n')
      .flatMap((line) => {
        const started = EtlLogPatterns.runStarted.exec(line);
        return started ? [{ run: started[1]!, delayMs: Number(started[5]) }] : [];
      });
  }
  async function maxUpdatedAt(): Promise<Date> {
    const pg = new PgClient({ connectionString: app.urls.database });
    await pg.connect();
    try {
      return (await pg.query<{ max: Date }>('SELECT MAX(updated_at) AS max FROM documents')).rows[0]!.max;
    } finally {
      await pg.end();
    }
  }
  const messagesOf = (outcome: Pick<IncidentOutcome, 'timeline'>) => outcome.timeline.map((e) => e.message);

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    app = await startTestAuditApp(docker, prefix);
    config = testConfig({
      ...auditAppTargets(app),
      approvers: { 'clean-downloads': ['dana'] },
      // Seconds instead of the runbook's minute; a retry delay just over the source's limit keeps each run short.
      policies: { 'etl-failures': { rateLimitWaitSeconds: 2, retryDelayMs: RETRY_DELAY_MS } },
      // The ETLDataStale test's backfill: one county, so a year is one chunk of 40 records.
      backfill: { counties: ['Kisumu'] },
    });
    worker = await startWorker(config);
  });

  after(async () => {
    await worker?.stop();
    await dropAuditSchema(config);
    await removeAuditApp(docker, prefix);
  });

  test('a crashed run is diagnosed from the log and retried once, as it was; the data is fresh again', async () => {
    const before = (await runsStarted()).length;
    const broken = await breakAuditApp(docker, app, 'etl-crash');
    const fatal = /"(FATAL crashed: .* after record=5)"/.exec(broken.description)![1]!;
    const startedAt = new Date();

    const intake = await fire(worker.client, config, alert('ETLJobFailed', { service: 'etl', severity: 'high' }));
    const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 120_000 });
    const messages = messagesOf(outcome);
    assert.equal(outcome.resolution, 'remediated', messages.join('\n'));
    assert.ok(messages.some((m) => m.includes(`the latest run failed — crashed: `) && m.includes(fatal)), messages.join('\n'));
    assert.ok(messages.some((m) => /Last run: \S+ at \S+, failed \(exit 70\)\. Last successful run: /.test(m)), messages.join('\n'));
    assert.ok(messages.some((m) => /^Retry 1: the pipeline ran \(run \S+\) and wrote 240 record\(s\)\.$/.test(m)), messages.join('\n'));
    assert.ok(messages.some((m) => m.startsWith("Fresh again: MAX(updated_at) ")), messages.join('\n'));

    const runs = (await runsStarted()).slice(before);
    assert.deepEqual(runs.map((r) => r.delayMs), [20, 20], 'the faulty run, then one retry with the pipeline\'s own delay');
    assert.ok((await maxUpdatedAt()) > startedAt);
  });

  test('rate limited: the runbook waits, retries with the longer delay, and the source takes it; freshness advances', async () => {
    const before = (await runsStarted()).length;
    const broken = await breakAuditApp(docker, app, 'etl-rate-limited', { ms: SOURCE_MIN_DELAY_MS });
    assert.match(broken.description, /HTTP 429 Too Many Requests \(delay_ms=20 is under the source's 40 ms\)/);
    const freshBefore = await maxUpdatedAt();
    try {
      const intake = await fire(worker.client, config, alert('ETLJobFailed', { service: 'etl', severity: 'high' }));
      const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 120_000 });
      const messages = messagesOf(outcome);
      assert.equal(outcome.resolution, 'remediated', messages.join('\n'));
      assert.ok(messages.some((m) => /the latest run failed — rate-limited: \S+ ERROR rate limited by source: HTTP 429/.test(m)), messages.join('\n'));
      assert.ok(messages.includes(`Rate limited by the source: waiting 2 s, then retrying with ${RETRY_DELAY_MS} ms between requests.`), messages.join('\n'));
      assert.ok(messages.some((m) => new RegExp(`^Retry 1: the pipeline ran with --delay-ms ${RETRY_DELAY_MS} \\(run \\S+\\) and wrote 240 record\\(s\\)\\.$`).test(m)), messages.join('\n'));

      const runs = (await runsStarted()).slice(before);
      assert.deepEqual(runs.map((r) => r.delayMs), [20, RETRY_DELAY_MS], 'the limited run, then one retry with the longer delay');
      assert.ok((await maxUpdatedAt()) > freshBefore, 'freshness advanced');
      assert.equal((await status()).lastRun?.delayMs, RETRY_DELAY_MS);
      await recordHistoryIfAsked(intake.workflowId, 'etl-failures-rate-limited');
    } finally {
      await etl('fault', 'clear');
    }
  });

  test('disk full: nothing is cleaned or retried before approval; approved, the downloads are cleaned and the retry runs', async () => {
    const before = (await runsStarted()).length;
    await breakAuditApp(docker, app, 'etl-disk-full');
    const full = await status();
    assert.ok(full.downloads.freeBytes < 64 * 1024, `free ${full.downloads.freeBytes}`);

    const intake = await fire(worker.client, config, alert('ETLJobFailed', { service: 'etl', severity: 'high' }));
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'the clean-downloads approval', (s) => s.pendingApprovals.length > 0, 60_000);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['clean-downloads']);
    assert.match(waiting.pendingApprovals[0]!.question, /^The ETL's download directory is full \(.* free of .* in \/tmp\/etl_downloads, 1 file\(s\)\): ".* ERROR disk full: ENOSPC: no space left on device, write '\/tmp\/etl_downloads\/Nairobi-\d{4}-1\.html'"\. Empty it/);
    assert.equal((await runsStarted()).length - before, 1, 'no retry before approval');
    assert.equal((await status()).downloads.files, 1, 'nothing cleaned before approval');

    await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'clean-downloads', by: 'dana' });
    const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 120_000 });
    const messages = messagesOf(outcome);
    assert.equal(outcome.resolution, 'remediated', messages.join('\n'));
    assert.ok(messages.some((m) => new RegExp(`^Cleaned the download directory of ${app.containers.etl}: 1 file\\(s\\), [\\d.]+ MiB freed\\.$`).test(m)), messages.join('\n'));
    assert.ok(messages.some((m) => /^Retry 1: the pipeline ran \(run \S+\) and wrote 240 record\(s\)\.$/.test(m)), messages.join('\n'));
    const after = await status();
    assert.equal(after.faults.diskFull, null);
    assert.ok(after.downloads.freeBytes > full.downloads.freeBytes);
    assert.equal((await runsStarted()).length - before, 2);
    await recordHistoryIfAsked(intake.workflowId, 'etl-failures-disk-full-approved');
  });

  test('ETLDataStale for a past year: the pipeline runs again, then the backfill of that year starts (not waited for) and loads it', async () => {
    const intake = await fire(worker.client, config, alert('ETLDataStale', { service: 'etl', severity: 'medium', from_year: '2015', to_year: '2015' }));
    const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 120_000 });
    const messages = messagesOf(outcome);
    assert.equal(outcome.resolution, 'remediated', messages.join('\n'));
    const backfillId = `backfill-${app.containers.etl}`;
    assert.ok(messages.some((m) => m.startsWith(`Started the backfill of 2015–2015 for the stale range: ${backfillId}`)), messages.join('\n'));

    const backfill = worker.client.workflow.getHandle(backfillId);
    assert.equal((await backfill.describe()).parentExecution?.workflowId, intake.workflowId);
    assert.deepEqual(await backfill.result(), { cancelled: false, chunksDone: 1, recordsWritten: 40, skipped: [], runs: 1 });
    await recordHistoryIfAsked(backfillId, 'backfill-started-by-etl-failures');
    const pg = new PgClient({ connectionString: app.urls.database });
    await pg.connect();
    try {
      const { rows } = await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM documents WHERE county = 'Kisumu' AND year = 2015 AND report_type LIKE 'report-%'`);
      assert.equal(rows[0]!.n, 40);
    } finally {
      await pg.end();
    }
  });

  test('source changed: never retried; escalated with the evidence line and the log excerpt for a human to update the selectors', async () => {
    const before = (await runsStarted()).length;
    await breakAuditApp(docker, app, 'etl-source-changed');
    try {
      const intake = await fire(worker.client, config, alert('ETLJobFailed', { service: 'etl', severity: 'high' }));
      const handedOver = await waitForStatus(worker.client, intake.workflowId, 'the incident left to a human', (s) => s.phase === 'needs-human', 60_000);
      const escalated = handedOver.timeline.find((e) => e.kind === 'escalated');
      assert.match(
        escalated?.message ?? '',
        /^The ETL source changed and a human must update the selectors: \S+ ERROR source format changed: selector "table\.audit-reports" matched nothing county=Nairobi year=\d{4} record=1: escalated to oncall \(level 1\)\.\nThe last \d+ log line\(s\) of \S+etl:\n(?: {2}.*\n)* {2}\S+ INFO run started run=\S+ .*\n {2}\S+ ERROR source format changed: selector "table\.audit-reports" matched nothing county=Nairobi year=\d{4} record=1$/,
        JSON.stringify(handedOver.timeline.map((e) => e.message), null, 1),
      );
      assert.ok(handedOver.followUps.some((f) => f.startsWith("Update the ETL scraper's selectors")));
      assert.equal((await runsStarted()).length - before, 1, 'only the failed run: no retry');

      await actOnIncident(worker.client, intake.workflowId, { kind: 'resolve', by: 'dana', note: 'selectors updated by hand' });
      const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 60_000 });
      assert.equal(outcome.resolution, 'resolved-by-human');
      assert.ok(!messagesOf(outcome).some((m) => m.startsWith('Retry ')), 'no retry ran');
      assert.equal((await runsStarted()).length - before, 1);
    } finally {
      await etl('fault', 'clear');
    }
  });
});
