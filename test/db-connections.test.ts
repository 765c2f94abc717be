// The database-connections runbook against the sandbox audit-app (real PostgreSQL 15 in a container, the Node
// backend, Redis), on a real worker and real Temporal: the fault is made for real, the alert goes through intake.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import { dockerClient } from '../src/activities';
import type { ConnectionReport } from '../src/activities/postgres';
import { actOnIncident } from '../src/incidents/operations';
import { auditAppTargets, breakAuditApp, removeAuditApp, type AuditApp } from '../src/sandbox/auditApp';
import { dropAuditSchema } from './support/audit';
import { testConfig } from './support/config';
import { recordHistoryIfAsked } from './support/histories';
import { alert, fire, outcomeOf, waitForStatus } from './support/incidents';
import { requireEnv } from './support/env';
import { startTestAuditApp } from './support/sandbox';
import { startWorker, type RunningWorker } from './support/worker';

describe('Database Connection Issues runbook, against the sandbox audit-app', { timeout: 280_000 }, () => {
  let docker: Docker;
  let app: AuditApp;
  let worker: RunningWorker;
  let config: ReturnType<typeof testConfig>;
  const prefix = `dbc-${randomBytes(3).toString('hex')}-`;

  const health = () => fetch(app.urls.health, { signal: AbortSignal.timeout(3_000) }).then((r) => r.status, () => 0);
  const healthAnswer = async () => {
    const response = await fetch(app.urls.health, { signal: AbortSignal.timeout(3_000) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  /** Rows of documents, or undefined when the table is gone. */
  async function documentCount(): Promise<number | undefined> {
    const pg = new PgClient({ connectionString: app.urls.database });
    await pg.connect();
    try {
      return await pg.query<{ n: number }>('SELECT count(*)::int AS n FROM documents').then(
        (r) => r.rows[0]!.n,
        (err: { code?: string }) => {
          if (err.code === '42P01') return undefined; // undefined_table
          throw err;
        },
      );
    } finally {
      await pg.end();
    }
  }
  async function sessions(where: string): Promise<number> {
    return (await pidsOf(where)).length;
  }
  /** The pids of the application database's sessions that match, in order. */
  async function pidsOf(where: string): Promise<number[]> {
    const pg = new PgClient({ connectionString: app.urls.database });
    await pg.connect();
    try {
      return (await pg.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = 'audit_app' AND ${where} ORDER BY pid`)).rows.map((r) => r.pid);
    } finally {
      await pg.end();
    }
  }

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    app = await startTestAuditApp(docker, prefix, { poolSize: 5 });
    config = testConfig({
      ...auditAppTargets(app),
      approvers: { 'terminate-sessions': ['dana'], 'restore-database': ['dana'] },
      // Seconds instead of the runbook's 10 minutes and 30 seconds, so the real sessions qualify quickly.
      policies: { 'db-connections': { idleInTransactionMinutes: 0.02, longQuerySeconds: 1 } },
    });
    worker = await startWorker(config);
  });

  after(async () => {
    await worker?.stop();
    await dropAuditSchema(config);
    await removeAuditApp(docker, prefix);
  });

  test('a stopped database is restarted and verified with SELECT 1 and the backend /health', async () => {
    await breakAuditApp(docker, app, 'db-stopped');
    assert.equal(await health(), 503);
    const intake = await fire(worker.client, config, alert('DatabaseDown', { service: 'audit-app' }));
    const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 120_000 });
    assert.equal(outcome.resolution, 'remediated', JSON.stringify(outcome.timeline.map((e) => e.message), null, 1));
    assert.equal(await health(), 200);
    const messages = outcome.timeline.map((e) => e.message);
    assert.ok(messages.some((m) => m.startsWith('The database does not answer')), messages.join('\n'));
    assert.ok(messages.includes(`Restarted container ${app.containers.postgres}.`));
    assert.ok(messages.some((m) => m.startsWith('The database answers SELECT 1 after the restart')));
    await recordHistoryIfAsked(intake.workflowId, 'db-connections-database-down');
  });

  test('real sessions idle in a transaction are terminated once approved and are gone from pg_stat_activity; a real pg_sleep is reported with its duration', async () => {
    await breakAuditApp(docker, app, 'idle-in-transaction', { sessions: 3 });
    await breakAuditApp(docker, app, 'slow-query', { seconds: 20 });
    const idlePids = await pidsOf(`state = 'idle in transaction'`);
    assert.equal(idlePids.length, 3);
    const [sleepPid] = await pidsOf(`state = 'active' AND query LIKE 'SELECT pg_sleep(20)%'`);
    assert.ok(sleepPid, 'the pg_sleep query runs');
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // past the test policy's 1.2 s and 1 s

    const intake = await fire(worker.client, config, alert('DatabaseConnectionsHigh', { service: 'audit-app', severity: 'high' }));
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'the terminate-sessions approval', (s) => s.pendingApprovals.length > 0, 60_000);
    assert.equal(waiting.pendingApprovals[0]!.kind, 'terminate-sessions');
    const finding = waiting.timeline.find((e) => e.message.includes('idle in a transaction for over'))!;
    assert.match(finding.message, /3 idle in a transaction/);
    assert.match(finding.message, /pid \d+, \d+ s: SELECT pg_sleep\(20\)/, 'the long query with its pid and duration');
    // The same finding as data: which sessions, and the long query's pid and duration.
    const report = finding.data as unknown as ConnectionReport;
    assert.deepEqual(report.idleInTransaction.map((s) => s.pid).sort((a, b) => a - b), idlePids);
    assert.ok(report.idleInTransaction.every((s) => s.state === 'idle in transaction' && s.seconds >= 1), JSON.stringify(report.idleInTransaction));
    const sleep = report.longQueries.find((q) => q.pid === sleepPid);
    assert.ok(sleep, `pid ${sleepPid} among the long queries: ${JSON.stringify(report.longQueries)}`);
    assert.match(sleep.query, /^SELECT pg_sleep\(20\)/);
    assert.ok(sleep.seconds >= 1, `ran ${sleep.seconds} s`);
    assert.ok((await sessions(`state = 'idle in transaction'`)) >= 3, 'nothing terminated before approval');

    await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'terminate-sessions', by: 'dana' });
    const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 120_000 });
    assert.equal(outcome.resolution, 'remediated', JSON.stringify(outcome.timeline.map((e) => e.message), null, 1));
    assert.equal(await sessions(`state = 'idle in transaction'`), 0);
    assert.ok(outcome.timeline.some((e) => /^Terminated 3 session\(s\) idle in a transaction: pids \d+, \d+, \d+\.$/.test(e.message)));
    assert.ok(outcome.timeline.some((e) => e.message === `Restarted container ${app.containers.backend}.`));
    assert.equal(await health(), 200);
    await recordHistoryIfAsked(intake.workflowId, 'db-connections-idle-sessions');
  });

  // Runbook §2 "restore from backup if data corrupted", in two parts that share the sandbox: the corrupted database
  // is first left alone because the restore is rejected, then restored from the same good dump once approved.
  let documentsBefore: number | undefined;

  test('a database that lost its documents table comes back after a restart but /health stays 503; the restore is rejected and nothing is restored', async () => {
    const counted = await documentCount();
    assert.ok(counted !== undefined && counted > 0, 'the sandbox has documents');
    documentsBefore = counted;
    const broken = await breakAuditApp(docker, app, 'db-corrupted');
    assert.match(broken.description, /backed up audit_app to \/backups\/latest\.dump, dropped the documents table and stopped/);
    assert.equal(await health(), 503);

    const intake = await fire(worker.client, config, alert('DatabaseDown', { service: 'audit-app' }));
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'the restore-database approval', (s) => s.pendingApprovals.length > 0, 120_000);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['restore-database']);
    const asked = waiting.timeline.map((e) => e.message);
    assert.ok(asked.includes(`Restarted container ${app.containers.postgres}.`), asked.join('\n'));
    assert.ok(asked.some((m) => m.startsWith('The database answers SELECT 1 after the restart')), asked.join('\n'));
    const answer = await healthAnswer();
    assert.equal(answer.status, 503, 'the database answers SELECT 1, the backend still fails');
    assert.match(String(answer.body.database), /relation "documents" does not exist/);

    await actOnIncident(worker.client, intake.workflowId, { kind: 'reject', step: 'restore-database', by: 'dana' });
    const handedOver = await waitForStatus(worker.client, intake.workflowId, 'the incident left to a human', (s) => s.phase === 'needs-human', 30_000);
    const messages = handedOver.timeline.map((e) => e.message);
    assert.ok(messages.includes('Restore rejected: the database is left as it is.'), messages.join('\n'));
    assert.ok(!messages.some((m) => m.startsWith('Restored ')), 'no restore ran');
    assert.equal(await documentCount(), undefined, 'documents is still missing');
    assert.equal(await health(), 503);

    await actOnIncident(worker.client, intake.workflowId, { kind: 'resolve', by: 'dana', note: 'restore declined in the test' });
    const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 60_000 });
    assert.equal(outcome.resolution, 'resolved-by-human');
    assert.equal(outcome.resolvedBy, 'dana');
    assert.ok(!outcome.timeline.some((e) => e.message.startsWith('Restored ')), 'no restore ran');
  });

  test('the same corrupted database, down again, is restored from the good pg_dump once approved: every document back and /health 200', async () => {
    assert.ok(documentsBefore !== undefined, 'runs after the rejected restore');
    // The fault refuses a second time: its pg_dump would overwrite the good backup with the broken database.
    await assert.rejects(breakAuditApp(docker, app, 'db-corrupted'), /documents is already gone from audit_app: restore \/backups\/latest\.dump first/);
    await breakAuditApp(docker, app, 'db-stopped'); // /backups/latest.dump is still the good backup db-corrupted took
    const intake = await fire(worker.client, config, alert('DatabaseDown', { service: 'audit-app' }));
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'the restore-database approval', (s) => s.pendingApprovals.length > 0, 120_000);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['restore-database']);
    assert.equal(await documentCount(), undefined, 'nothing restored before approval');

    await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'restore-database', by: 'dana' });
    const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 120_000 });
    const messages = outcome.timeline.map((e) => e.message);
    assert.equal(outcome.resolution, 'remediated', JSON.stringify(messages, null, 1));
    assert.ok(messages.includes(`Restored ${app.containers.postgres} from /backups/latest.dump.`), messages.join('\n'));
    assert.equal(await documentCount(), documentsBefore);
    assert.equal(await health(), 200);
    await recordHistoryIfAsked(intake.workflowId, 'db-connections-restore-approved');
  });
});
