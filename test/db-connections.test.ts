// The database-connections runbook against the sandbox audit-app (real PostgreSQL 15 in a container, the Node
// backend, Redis), on a real worker and real Temporal: the fault is made for real, the alert goes through intake.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import { dockerClient } from '../src/activities';
import { createPostgresActivities } from '../src/activities/postgres';
import { actOnIncident } from '../src/incidents/operations';
import { auditAppTargets, breakAuditApp, removeAuditApp, startAuditApp, type AuditApp } from '../src/sandbox/auditApp';
import { TEST_LABEL } from './harness/dockerd';
import { freePorts } from './harness/util';
import { dropAuditSchema } from './support/audit';
import { testConfig } from './support/config';
import { recordHistoryIfAsked } from './support/histories';
import { alert, fire, outcomeOf, waitForStatus } from './support/incidents';
import { requireEnv } from './support/env';
import { eventually } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

describe('Database Connection Issues runbook, against the sandbox audit-app', { timeout: 280_000 }, () => {
  let docker: Docker;
  let app: AuditApp;
  let worker: RunningWorker;
  let config: ReturnType<typeof testConfig>;
  const prefix = `dbc-${randomBytes(3).toString('hex')}-`;

  const health = () => fetch(app.urls.health, { signal: AbortSignal.timeout(3_000) }).then((r) => r.status, () => 0);
  async function sessions(where: string): Promise<number> {
    const pg = new PgClient({ connectionString: app.urls.database });
    await pg.connect();
    try {
      return (await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'audit_app' AND ${where}`)).rows[0]!.n;
    } finally {
      await pg.end();
    }
  }

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    const [backend, admin, postgres, redis] = await freePorts(4);
    app = await startAuditApp(docker, { prefix, ports: { backend: backend!, admin: admin!, postgres: postgres!, redis: redis! }, poolSize: 5, labels: { [TEST_LABEL]: 'true' } });
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
    assert.ok((await sessions(`state = 'idle in transaction'`)) >= 3);
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // past the test policy's 1.2 s and 1 s

    const intake = await fire(worker.client, config, alert('DatabaseConnectionsHigh', { service: 'audit-app', severity: 'high' }));
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'the terminate-sessions approval', (s) => s.pendingApprovals.length > 0, 60_000);
    assert.equal(waiting.pendingApprovals[0]!.kind, 'terminate-sessions');
    const finding = waiting.timeline.find((e) => e.message.includes('idle in a transaction for over'))!;
    assert.match(finding.message, /3 idle in a transaction/);
    assert.match(finding.message, /pid \d+, \d+ s: SELECT pg_sleep\(20\)/, 'the long query with its pid and duration');
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

  test('the restore activity restores a real pg_dump of the sandbox after a table was lost', async () => {
    const pg = createPostgresActivities(config, docker);
    const backup = await pg.exportBackup({ target: 'postgres' });
    assert.ok(backup.bytes > 0 && backup.file.startsWith('/backups/backup_'), JSON.stringify(backup));
    const db = new PgClient({ connectionString: app.urls.database });
    await db.connect();
    try {
      const before = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM documents')).rows[0]!.n;
      await db.query('DROP TABLE documents');
      await pg.restoreFromBackup({ target: 'postgres' });
      const restored = await eventually('documents back', async () =>
        (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM documents').then((r) => r.rows[0]!.n, () => undefined)),
      );
      assert.equal(restored, before);
    } finally {
      await db.end();
    }
  });
});
