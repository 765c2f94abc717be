// The daily and weekly checklists against the sandbox audit-app (real PostgreSQL 15 with pg_dump / pg_restore in its container,
// the Node backend's /metrics), on real Temporal with real workers and the real report store: the backup-restore
// check restores a real dump into a scratch database and compares the row counts (dropping a leftover scratch
// database first, and its own afterwards); and with the dump truncated on disk between the dump and the restore, as a
// bad disk would, it fails with pg_restore's words and opens a BackupRestoreFailed incident. The daily checks read the
// real ETL container (a real run; then a real full download directory, which opens an etl-failures incident and a
// generic one), the backend's real log and its /metrics under real traffic.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { NativeConnection, Worker } from '@temporalio/worker';
import type Docker from 'dockerode';
import { Client as PgClient, Pool } from 'pg';
import pino from 'pino';
import { createActivities, dockerClient } from '../src/activities';
import { execInContainer } from '../src/activities/docker';
import { readChecklistReportsOnce } from '../src/checklists/reports';
import type { ChecklistReport } from '../src/checklists/model';
import { parseConfig } from '../src/config/load';
import type { Config, ConfigInput } from '../src/config/schema';
import { configuredSchedules } from '../src/intake/schedules';
import { auditAppTargets, breakAuditApp, removeAuditApp, startTraffic, type AuditApp } from '../src/sandbox/auditApp';
import { statusQuery } from '../src/workflows/lifecycle/definitions';
import { dropAuditSchema } from './support/audit';
import { testConfigInput } from './support/config';
import { requireEnv } from './support/env';
import { recordHistoryIfAsked } from './support/histories';
import { outcomeOf } from './support/incidents';
import { startTestAuditApp } from './support/sandbox';
import { startWorker, type RunningWorker } from './support/worker';

const SCRATCH = 'audit_app_restore_check';

describe('the daily and weekly checklists against the sandbox audit-app', { timeout: 280_000 }, () => {
  let docker: Docker;
  let app: AuditApp;
  let worker: RunningWorker;
  let input: ConfigInput;
  let config: Config;
  const prefix = `chk-${randomBytes(3).toString('hex')}-`;
  const started: string[] = [];

  async function sql<T extends Record<string, unknown>>(database: string, text: string): Promise<T[]> {
    const url = new URL(app.urls.database);
    url.pathname = `/${database}`;
    const pg = new PgClient({ connectionString: url.toString() });
    await pg.connect();
    try {
      return (await pg.query<T>(text)).rows;
    } finally {
      await pg.end();
    }
  }
  const scratchExists = async () => (await sql('postgres', `SELECT 1 FROM pg_database WHERE datname = '${SCRATCH}'`)).length > 0;

  /** Starts a checklist as its schedule would, on this config's task queue; its report once it closed. */
  async function runChecklist(on: Config, runbook: 'daily-checklist' | 'weekly-checklist'): Promise<{ workflowId: string; report: ChecklistReport }> {
    const schedule = configuredSchedules(on).find((s) => s.input.runbook === runbook)!;
    const workflowType = { 'daily-checklist': 'dailyChecklist', 'weekly-checklist': 'weeklyChecklist' }[runbook];
    const workflowId = `${schedule.scheduleId}-${randomBytes(4).toString('hex')}`;
    started.push(workflowId);
    await worker.client.workflow.start(workflowType, { workflowId, taskQueue: on.temporal.taskQueue, args: [schedule.input] });
    const outcome = await outcomeOf(worker.client, workflowId, { timeoutMs: 120_000 });
    assert.equal(outcome.resolution, 'remediated', JSON.stringify(outcome.timeline.map((e) => e.message), null, 1));
    const report = (await readChecklistReportsOnce(on.audit.databaseUrl, on.audit.schema, 10)).find((r) => r.workflowId === workflowId);
    assert.ok(report, `no report of ${workflowId}`);
    return { workflowId, report };
  }

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    app = await startTestAuditApp(docker, prefix);
    input = testConfigInput({
      ...auditAppTargets(app),
      policies: { 'weekly-checklist': { sampleWindowSeconds: 1 }, 'daily-checklist': { sampleWindowSeconds: 2 } },
      schedules: { weekly: { runbook: 'weekly-checklist', cron: '0 6 * * 1' }, daily: { runbook: 'daily-checklist', cron: '0 7 * * *' } },
    });
    config = parseConfig(input);
    worker = await startWorker(config);
    await sql('audit_app', `INSERT INTO audit_log (ip, user_id, action) SELECT '203.0.113.9', 'u' || i, 'login' FROM generate_series(1, 5) AS i`);
  });

  after(async () => {
    for (const id of started) await worker.client.workflow.getHandle(id).terminate('test over').catch(() => undefined);
    await worker?.stop();
    await dropAuditSchema(config);
    await removeAuditApp(docker, prefix);
  });

  test('the real backup restores into a scratch database with every row count matching; a leftover scratch database is dropped first, its own afterwards', async () => {
    // What a crashed earlier attempt would leave behind.
    await sql('postgres', `CREATE DATABASE ${SCRATCH}`);
    await sql(SCRATCH, 'CREATE TABLE leftover (x int)');

    const { workflowId, report } = await runChecklist(config, 'weekly-checklist');
    const restore = report.checks.find((c) => c.name === 'Test backup restoration')!;
    assert.equal(restore.result, 'pass', restore.summary);
    assert.match(restore.summary, /^Restored into audit_app_restore_check: 2 table\(s\), 23 row\(s\), every count matches; the scratch database is dropped\.$/);
    assert.deepEqual(restore.evidence.tables, [
      { table: 'audit_log', expected: 5, restored: 5 },
      { table: 'documents', expected: 18, restored: 18 },
    ]);
    assert.equal(restore.evidence.file, '/backups/restore-check.dump');
    assert.ok(Number(restore.evidence.bytes) > 1000);
    assert.equal(await scratchExists(), false);
    assert.equal(restore.incident, undefined);

    // The other automated checks looked at the real thing too.
    assert.deepEqual(report.checks.map((c) => [c.name, c.result]), [
      ['Review slow query log', 'pass'],
      ['Analyze traffic patterns', 'pass'],
      ['Check for security updates', 'skipped'],
      ['Test backup restoration', 'pass'],
    ]);
    assert.match(report.checks[0]!.summary, /^No statement over 500 ms mean/);
    await recordHistoryIfAsked(workflowId, 'weekly-checklist-sandbox');
  });

  test('a dump truncated on disk before the restore fails the check with pg_restore\'s words and opens a BackupRestoreFailed incident; the scratch database is dropped', async () => {
    // A worker whose dump step is the real one, after which the file is cut in half inside the container.
    const corrupt = parseConfig({ ...input, temporal: { ...input.temporal, taskQueue: `${config.temporal.taskQueue}-corrupt` } });
    const pool = new Pool({ connectionString: corrupt.audit.databaseUrl, max: 2 });
    const real = createActivities({ config: corrupt, logger: pino({ level: 'silent' }), pool, docker });
    const connection = await NativeConnection.connect({ address: corrupt.temporal.address });
    const corrupting = await Worker.create({
      connection,
      namespace: corrupt.temporal.namespace,
      taskQueue: corrupt.temporal.taskQueue,
      workflowBundle: { codePath: requireEnv('RUNBOOKS_WORKFLOW_BUNDLE') },
      activities: {
        ...real,
        async dumpForRestoreCheck(ref: Parameters<typeof real.dumpForRestoreCheck>[0]) {
          const dump = await real.dumpForRestoreCheck(ref);
          const cut = await execInContainer(docker, app.containers.postgres, ['truncate', '-s', String(Math.floor(dump.bytes / 2)), dump.file]);
          assert.equal(cut.exitCode, 0, cut.output);
          return dump;
        },
      },
    });
    const running = corrupting.run();
    try {
      const { workflowId, report } = await runChecklist(corrupt, 'weekly-checklist');
      const restore = report.checks.find((c) => c.name === 'Test backup restoration')!;
      assert.equal(restore.result, 'fail');
      assert.match(restore.summary, /^The dump of audit_app does not restore: pg_restore exited 1: pg_restore: error: .+\. \(Scratch database audit_app_restore_check dropped\.\)$/);
      assert.match(String(restore.evidence.error), /pg_restore: error:/);
      assert.equal(await scratchExists(), false);

      assert.equal(restore.incident, `BackupRestoreFailed-from-${workflowId}`);
      started.push(restore.incident!);
      const incident = await worker.client.workflow.getHandle(restore.incident!).query(statusQuery);
      assert.equal(incident.runbook, 'generic');
      const labels = incident.trigger.kind === 'alert' ? incident.trigger.alert.labels : {};
      assert.deepEqual([labels.checklist, labels.check, labels.handed_over_by], ['weekly-checklist', 'Test backup restoration', workflowId]);
      assert.match(incident.trigger.kind === 'alert' ? incident.trigger.alert.annotations.summary! : '', /^Test backup restoration: The dump of audit_app does not restore/);
      await worker.client.workflow.getHandle(restore.incident!).terminate('test over');
    } finally {
      corrupting.shutdown();
      await running;
      await connection.close();
      await pool.end();
    }
  });

  test('a healthy day on the sandbox: a real ETL run, the backend\'s real log and its /metrics under traffic pass every daily check', async () => {
    const etlRun = await execInContainer(docker, app.containers.etl, [...app.etl.program, 'run', '--county', 'Nairobi', '--records', '3']);
    assert.equal(etlRun.exitCode, 0, etlRun.output);
    const traffic = startTraffic(app);
    const { workflowId, report } = await runChecklist(config, 'daily-checklist').finally(() => traffic.stop());
    assert.deepEqual(
      report.checks.map((c) => [c.name, c.result]),
      [
        ['Check for new errors', 'pass'],
        ['Review response times', 'pass'],
        ['Verify ETL jobs succeeded', 'pass'],
        ['Check disk space usage', 'pass'],
      ],
      JSON.stringify(report.checks, null, 1),
    );
    assert.match(report.checks[1]!.summary, /^worst p95 \d+ ms \(threshold 2000 ms\)\.$/);
    assert.match(report.checks[2]!.summary, /^The last run succeeded \d+(\.\d)? h ago\.$/);
    assert.match(report.checks[3]!.summary, /^\/tmp\/etl_downloads: \d+ of \d+ bytes free/);
    await recordHistoryIfAsked(workflowId, 'daily-checklist-sandbox');
  });

  test('a full download directory fails the ETL and disk checks on the real container and opens an etl-failures and a generic incident', async () => {
    await breakAuditApp(docker, app, 'etl-disk-full');
    const { workflowId, report } = await runChecklist(config, 'daily-checklist');
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
    assert.equal(byName['Verify ETL jobs succeeded']!.result, 'fail');
    assert.match(byName['Verify ETL jobs succeeded']!.summary, /^The last run \S+ failed: .*ERROR disk full: ENOSPC/);
    assert.equal(byName['Check disk space usage']!.result, 'fail');
    assert.match(byName['Check disk space usage']!.summary, /^Low: \/tmp\/etl_downloads: 0 of \d+ bytes free \(0%, minimum 10%\)\.$/);
    const opened = { etl: byName['Verify ETL jobs succeeded']!.incident!, disk: byName['Check disk space usage']!.incident! };
    assert.deepEqual(opened, { etl: `ETLJobFailed-from-${workflowId}`, disk: `DiskSpaceLow-from-${workflowId}` });
    started.push(opened.etl, opened.disk);
    assert.equal((await worker.client.workflow.getHandle(opened.etl).query(statusQuery)).runbook, 'etl-failures');
    assert.equal((await worker.client.workflow.getHandle(opened.disk).query(statusQuery)).runbook, 'generic');
  });
});
