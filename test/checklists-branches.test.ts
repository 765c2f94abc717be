// The monitoring checklists (daily, weekly, monthly) on the time-skipping test server, their activities typed stubs:
// what each check decides, a failed check opening an incident on the runbook its alert routes to (not waited for),
// the report stored, the monthly tasks signed off with an Update and escalated when late. Also the `schedules` config.
// (test/checklists-schedules.test.ts fires real Schedules; test/checklists-sandbox.test.ts restores a real dump.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import type { EtlDiagnosis } from '../src/activities/etl';
import type { RestoreCheck, RestoreCheckDump } from '../src/activities/postgres';
import type { ErrorPatterns } from '../src/checklists/errorPatterns';
import { errorPatterns, patternOf } from '../src/checklists/errorPatterns';
import type { ChecklistReport } from '../src/checklists/model';
import { parseConfig } from '../src/config/load';
import type { ConfigInput } from '../src/config/schema';
import type { IncidentInput, IncidentOutcome } from '../src/incidents/model';
import { configuredSchedules } from '../src/intake/schedules';
import { ActivityErrorType } from '../src/runbooks/errorTypes';
import { statusQuery } from '../src/workflows/lifecycle/definitions';
import { timeSkippingIncidents, type ActivityStubs } from './support/timeSkipping';

const suite = timeSkippingIncidents({ taskQueuePrefix: 'checklists-branches', labels: { alertname: 'Unused' } });
const { calls } = suite;

const TARGETS: ConfigInput['targets'] = {
  backend: { container: 'backend', healthUrl: 'http://127.0.0.1:9/health', metricsUrl: 'http://127.0.0.1:9/metrics' },
  postgres: { container: 'postgres', url: 'postgres://postgres@127.0.0.1:9/audit_app' },
  etl: { container: 'etl' },
};

/** The input a schedule of this runbook starts its run with, from the config as `runbooks schedules apply` builds it. */
function scheduledInput(runbook: string, overrides: Partial<ConfigInput> = {}, schedule: Record<string, unknown> = {}): IncidentInput {
  const config = parseConfig({ targets: TARGETS, ...overrides, schedules: { [runbook]: { runbook, cron: '0 7 * * *', ...schedule } } });
  return configuredSchedules(config)[0]!.input;
}

const NOW = () => Date.now();
const healthyEtl = (): EtlDiagnosis => ({
  container: 'etl',
  exists: true,
  running: true,
  linesRead: 40,
  excerpt: '',
  lastRun: { id: 'r9', ok: true, finishedAt: new Date(NOW() - 3_600_000).toISOString() },
  lastSuccess: { id: 'r9', ok: true, finishedAt: new Date(NOW() - 3_600_000).toISOString() },
  downloads: { dir: '/tmp/etl_downloads', freeBytes: 3_000_000, totalBytes: 4_000_000, files: 1 },
});
const noErrors = (): ErrorPatterns => ({ container: 'backend', exists: true, linesRead: 100, windowStart: new Date(NOW()).toISOString(), errorLines: 0, patterns: [], newPatterns: 0 });

/** Stubs of a healthy day; `reports` collects what the checklist stored. */
function dailyStubs(reports: ChecklistReport[], overrides: ActivityStubs = {}): ActivityStubs {
  return {
    errorPatterns: async () => noErrors(),
    sampleLatency: async ({ windowMs }) => ({ windowMs, routes: [{ route: '/api/v1/documents', requests: 12, p95: 0.08 }], worstP95Ms: 80 }),
    diagnoseEtl: async () => healthyEtl(),
    recordChecklistReport: async (report) => void reports.push(report),
    ...overrides,
  };
}

const results = (report: ChecklistReport) => Object.fromEntries(report.checks.map((c) => [c.name, c.result]));
type Run = WorkflowHandle<(input: IncidentInput) => Promise<IncidentOutcome>>;

describe('monitoring checklists, on the time-skipping test server', () => {
  before(() => suite.start());
  after(() => suite.stop());

  test('a healthy day passes every daily check, stores one report and closes without opening an incident', async () => {
    const reports: ChecklistReport[] = [];
    const run: Run = await suite.startWorkflow('dailyChecklist', scheduledInput('daily-checklist'), dailyStubs(reports));
    const outcome = await run.result();
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(reports.length, 1);
    assert.deepEqual(results(reports[0]!), { 'Check for new errors': 'pass', 'Review response times': 'pass', 'Verify ETL jobs succeeded': 'pass', 'Check disk space usage': 'pass' });
    assert.equal(reports[0]!.checklist, 'daily-checklist');
    assert.equal(reports[0]!.workflowId, run.workflowId);
    assert.match(reports[0]!.checks[3]!.summary, /^\/tmp\/etl_downloads: 3000000 of 4000000 bytes free \(75%, minimum 10%\)\.$/);
    assert.ok(!outcome.timeline.some((e) => e.data?.handedOverTo), 'no incident opened');
    assert.equal(outcome.timeline[0]!.actor, 'schedule');
    assert.equal(outcome.timeline.at(-1)!.message, 'Checklist done; its report is stored (runbooks checklists).');
  });

  test('a failed ETL run, a full download directory, slow routes and a new error pattern each open an incident on their runbook, not waited for', async () => {
    const reports: ChecklistReport[] = [];
    const failedEtl: EtlDiagnosis = {
      ...healthyEtl(),
      lastRun: { id: 'r10', ok: false, exitCode: 5 },
      failure: { kind: 'disk-full', evidence: 'ERROR disk full: ENOSPC: no space left on device' },
      downloads: { dir: '/tmp/etl_downloads', freeBytes: 0, totalBytes: 4_000_000, files: 3 },
    };
    const run: Run = await suite.startWorkflow(
      'dailyChecklist',
      scheduledInput('daily-checklist'),
      dailyStubs(reports, {
        diagnoseEtl: async () => failedEtl,
        sampleLatency: async ({ windowMs }) => ({ windowMs, routes: [{ route: '/api/v1/documents', requests: 9, p95: 2.5 }], worstP95Ms: 2500 }),
        errorPatterns: async () => ({
          ...noErrors(),
          errorLines: 3,
          patterns: [{ pattern: 'ERROR GET /api/v1/documents: boom', count: 3, isNew: true, example: 'ERROR GET /api/v1/documents: boom' }],
          newPatterns: 1,
        }),
      }),
    );
    const outcome = await run.result();
    assert.equal(outcome.resolution, 'remediated', 'the checklist run closes; the incidents carry on');
    const report = reports[0]!;
    assert.deepEqual(results(report), { 'Check for new errors': 'fail', 'Review response times': 'fail', 'Verify ETL jobs succeeded': 'fail', 'Check disk space usage': 'fail' });
    const opened = Object.fromEntries(report.checks.map((c) => [c.name, c.incident]));
    assert.deepEqual(opened, {
      'Check for new errors': `NewErrorPatterns-from-${run.workflowId}`,
      'Review response times': `HighResponseTime-from-${run.workflowId}`,
      'Verify ETL jobs succeeded': `ETLJobFailed-from-${run.workflowId}`,
      'Check disk space usage': `DiskSpaceLow-from-${run.workflowId}`,
    });
    assert.match(report.checks[2]!.summary, /^The last run r10 failed: ERROR disk full/);

    // Each incident runs its routed runbook with the check's labels; an unrouted alert takes the generic one.
    const runbookOf = async (workflowId: string) => {
      const status = await suite.env.client.workflow.getHandle(workflowId).query(statusQuery);
      assert.equal(status.trigger.kind, 'alert');
      const labels = status.trigger.kind === 'alert' ? status.trigger.alert.labels : {};
      assert.equal(labels.checklist, 'daily-checklist');
      assert.equal(labels.handed_over_by, run.workflowId);
      return status.runbook;
    };
    assert.equal(await runbookOf(opened['Verify ETL jobs succeeded']!), 'etl-failures');
    assert.equal(await runbookOf(opened['Review response times']!), 'slow-responses');
    assert.equal(await runbookOf(opened['Check disk space usage']!), 'generic');
    for (const id of Object.values(opened)) await suite.env.client.workflow.getHandle(id!).terminate('test over');
  });

  test('a check whose target is not configured is skipped; a step that fails for good fails its check with the error as evidence', async () => {
    const reports: ChecklistReport[] = [];
    const input = scheduledInput('daily-checklist', { targets: { backend: TARGETS.backend } });
    const run: Run = await suite.startWorkflow('dailyChecklist', input, dailyStubs(reports, {
      sampleLatency: async () => {
        throw ApplicationFailure.nonRetryable('no metrics URL is configured for "backend" (targets.backend.metricsUrl)', ActivityErrorType.targetNotConfigured);
      },
      errorPatterns: async () => {
        throw ApplicationFailure.nonRetryable('container backend does not exist', ActivityErrorType.containerNotFound);
      },
    }));
    await run.result();
    const report = reports[0]!;
    assert.deepEqual(results(report), { 'Check for new errors': 'fail', 'Review response times': 'skipped', 'Verify ETL jobs succeeded': 'skipped', 'Check disk space usage': 'skipped' });
    assert.equal(report.checks[0]!.evidence.error, 'container backend does not exist');
    assert.equal(calls(run).diagnoseEtl, undefined, 'no ETL target: not looked at');
    await suite.env.client.workflow.getHandle(report.checks[0]!.incident!).terminate('test over');
  });

  test('the weekly restore check fails when the dump does not restore: BackupRestoreFailed opens a generic incident with pg_restore\'s words', async () => {
    const reports: ChecklistReport[] = [];
    const dump: RestoreCheckDump = { database: 'audit_app', file: '/backups/restore-check.dump', bytes: 900, rowCounts: { documents: 18, audit_log: 0 } };
    const failed: RestoreCheck = {
      database: 'audit_app',
      scratch: 'audit_app_restore_check',
      file: dump.file,
      restored: false,
      error: 'pg_restore exited 1: pg_restore: error: could not read from input file: end of file',
      tables: [],
      mismatches: [],
    };
    const run: Run = await suite.startWorkflow('weeklyChecklist', scheduledInput('weekly-checklist'), {
      topQueries: async () => ({ enabled: true, queries: [{ query: 'SELECT * FROM documents WHERE county = $1', calls: 40, meanMs: 3.2, maxMs: 9 }] }),
      sampleRateLimited: async ({ windowMs }) => ({ windowMs, rateLimited: 0, requests: 30, perMinute: 0 }),
      dumpForRestoreCheck: async () => dump,
      restoreIntoScratch: async (arg) => (assert.deepEqual(arg.dump, { file: dump.file, rowCounts: dump.rowCounts }), failed),
      recordChecklistReport: async (report) => void reports.push(report),
    });
    await run.result();
    const report = reports[0]!;
    assert.deepEqual(results(report), { 'Review slow query log': 'pass', 'Analyze traffic patterns': 'pass', 'Check for security updates': 'skipped', 'Test backup restoration': 'fail' });
    const restore = report.checks[3]!;
    assert.match(restore.summary, /^The dump of audit_app does not restore: pg_restore exited 1: .*end of file\. \(Scratch database audit_app_restore_check dropped\.\)$/);
    assert.equal(restore.incident, `BackupRestoreFailed-from-${run.workflowId}`);
    const incident = await suite.env.client.workflow.getHandle(restore.incident).query(statusQuery);
    assert.equal(incident.runbook, 'generic');
    await suite.env.client.workflow.getHandle(restore.incident).terminate('test over');
  });

  test('row counts that differ after a restore fail the check, naming each table', async () => {
    const reports: ChecklistReport[] = [];
    const run: Run = await suite.startWorkflow('weeklyChecklist', scheduledInput('weekly-checklist', { targets: { postgres: TARGETS.postgres } }), {
      topQueries: async () => ({ enabled: false, queries: [] }),
      dumpForRestoreCheck: async () => ({ database: 'audit_app', file: '/backups/restore-check.dump', bytes: 900, rowCounts: { documents: 18, audit_log: 2 } }),
      restoreIntoScratch: async ({ dump }) => ({
        database: 'audit_app',
        scratch: 'audit_app_restore_check',
        file: dump.file,
        restored: true,
        tables: [
          { table: 'audit_log', expected: 2, restored: 2 },
          { table: 'documents', expected: 18, restored: 17 },
        ],
        mismatches: ['documents'],
      }),
      recordChecklistReport: async (report) => void reports.push(report),
    });
    await run.result();
    assert.deepEqual(results(reports[0]!), { 'Review slow query log': 'skipped', 'Analyze traffic patterns': 'skipped', 'Check for security updates': 'skipped', 'Test backup restoration': 'fail' });
    assert.equal(reports[0]!.checks[3]!.summary, 'Row counts differ after the restore: documents 17 of 18.');
    await suite.env.client.workflow.getHandle(reports[0]!.checks[3]!.incident!).terminate('test over');
  });

});

describe('the schedules section of the config', () => {
  test('each schedule becomes a Temporal Schedule of its runbook: ID by task queue and name, cron or calendar in its time zone, a schedule trigger', () => {
    const config = parseConfig({
      temporal: { taskQueue: 'ops' },
      targets: TARGETS,
      schedules: {
        daily: { runbook: 'daily-checklist', cron: '30 7 * * *', timeZone: 'Europe/Berlin', catchupWindow: '2h' },
        weekly: { runbook: 'weekly-checklist', calendar: { dayOfWeek: 'MONDAY', hour: 6 } },
      },
    });
    const [daily, weekly] = configuredSchedules(config);
    assert.equal(daily!.scheduleId, 'ops-daily');
    assert.deepEqual(daily!.spec, { cronExpressions: ['30 7 * * *'], timezone: 'Europe/Berlin' });
    assert.equal(daily!.catchupWindow, 7_200_000);
    assert.deepEqual(daily!.input.trigger, { kind: 'schedule', scheduleId: 'ops-daily' });
    assert.deepEqual(Object.keys(daily!.input.targets).sort(), ['backend', 'etl']);
    assert.deepEqual(Object.keys(daily!.input.handOvers ?? {}).sort(), ['DiskSpaceLow', 'ETLJobFailed', 'HighResponseTime', 'NewErrorPatterns']);
    assert.equal(daily!.input.escalation, undefined);
    assert.deepEqual(weekly!.spec, { calendars: [{ dayOfWeek: 'MONDAY', hour: 6 }], timezone: 'UTC' });
  });

  test('a bad schedule is refused, naming the field', () => {
    const refused: Array<[Record<string, unknown>, RegExp]> = [
      [{ runbook: 'api-down', cron: '0 7 * * *' }, /schedules\.x\.runbook: a runbook the catalog marks scheduled/],
      [{ runbook: 'daily-checklist' }, /schedules\.x\.cron: give either cron or calendar/],
      [{ runbook: 'daily-checklist', cron: '0 7 * * *', calendar: { hour: 7 } }, /schedules\.x\.cron: give either cron or calendar/],
      [{ runbook: 'daily-checklist', cron: '0 7 * *; rm -rf /' }, /schedules\.x\.cron/],
      [{ runbook: 'daily-checklist', calendar: { hour: 24 } }, /schedules\.x\.calendar/],
      [{ runbook: 'daily-checklist', cron: '0 7 * * *', timeZone: 'Mars/Olympus' }, /schedules\.x\.timeZone: an IANA time zone/],
      [{ runbook: 'daily-checklist', cron: '0 7 * * *', catchupWindow: 'soon' }, /schedules\.x\.catchupWindow/],
      [{ runbook: 'daily-checklist', cron: '0 7 * * *', every: 'day' }, /schedules\.x.*every/],
    ];
    for (const [schedule, message] of refused) assert.throws(() => parseConfig({ schedules: { x: schedule } }), message, JSON.stringify(schedule));
  });
});

describe('error patterns of a log (the daily "new errors" check)', () => {
  test('lines become patterns without their times, addresses, numbers and users; a pattern is new when it shows only in the window', () => {
    assert.equal(patternOf('2026-11-27T10:00:00.123Z 203.0.113.7 GET /api/v1/documents duration 2513ms status=500 user=alice'), '<time> <ip> GET /api/v1/documents duration <n>ms status=500 user=<id>');
    const window = Date.parse('2026-11-27T12:00:00Z');
    const lines = [
      '2026-11-27T11:00:00.000000000Z 2026-11-27T11:00:00.000Z ERROR database: idle connection lost: terminated',
      '2026-11-27T11:30:00.000000000Z 2026-11-27T11:30:00.000Z 127.0.0.1 GET /health duration 3ms status=200 user=-',
      '2026-11-27T12:10:00.000000000Z 2026-11-27T12:10:00.000Z ERROR database: idle connection lost: terminated',
      '2026-11-27T12:20:00.000000000Z 2026-11-27T12:20:00.000Z 10.0.0.1 GET /api/v1/documents duration 12ms status=500 user=bob',
      '2026-11-27T12:21:00.000000000Z 2026-11-27T12:21:00.000Z 10.0.0.2 GET /api/v1/documents duration 15ms status=500 user=carol',
    ];
    const found = errorPatterns('backend', lines, window);
    assert.equal(found.errorLines, 3);
    assert.equal(found.newPatterns, 1);
    assert.deepEqual(found.patterns.map((p) => [p.isNew, p.count]), [[true, 2], [false, 1]]);
    assert.equal(found.patterns[0]!.pattern, '<time> <ip> GET /api/v1/documents duration <n>ms status=500 user=<id>');
  });
});
