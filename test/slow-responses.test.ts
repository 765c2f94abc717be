// The high-response-times runbook against the sandbox audit-app: a route made slow for real raises p95 in the
// backend's /metrics while traffic flows; the runbook measures it, asks before restarting the backend, and verifies
// recovery from the same histogram. And its database path: a table read by real sequential scans for a filter no
// index serves is VACUUM ANALYZEd, and the index pg_stat_statements suggests is created concurrently once approved.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import { dockerClient } from '../src/activities';
import type { Config } from '../src/config/schema';
import { actOnIncident } from '../src/incidents/operations';
import {
  auditAppTargets,
  breakAuditApp,
  removeAuditApp,
  resetBackendFaults,
  startTraffic,
  type AuditApp,
  type Traffic,
} from '../src/sandbox/auditApp';
import { dropAuditSchema } from './support/audit';
import { testConfig } from './support/config';
import { requireEnv } from './support/env';
import { recordHistoryIfAsked } from './support/histories';
import { alert, fire, outcomeOf, waitForStatus } from './support/incidents';
import { eventually } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';
import { startTestAuditApp } from './support/sandbox';

/** A short-lived connection to the audit-app's own database (audit_app in the sandbox's PostgreSQL). */
async function withAppDatabase<T>(app: AuditApp, use: (db: PgClient) => Promise<T>): Promise<T> {
  const db = new PgClient({ connectionString: app.urls.database, application_name: 'slow-responses-test' });
  db.on('error', () => undefined);
  await db.connect();
  try {
    return await use(db);
  } finally {
    await db.end();
  }
}

describe('High Response Times runbook, against the sandbox audit-app', { timeout: 280_000 }, () => {
  let docker: Docker;
  let app: AuditApp;
  let worker: RunningWorker;
  let config: ReturnType<typeof testConfig>;
  let traffic: Traffic | undefined;
  const prefix = `slow-${randomBytes(3).toString('hex')}-`;

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    app = await startTestAuditApp(docker, prefix);
    config = testConfig({
      ...auditAppTargets(app),
      approvers: { 'scale-backend': ['erin'], 'create-index': ['erin'] },
      // A 1 s threshold over 3 s windows instead of 2 s over 15 s, so the test takes seconds.
      policies: { 'slow-responses': { p95ThresholdMs: 1_000, sampleWindowSeconds: 3, recoverWithinSeconds: 30, minSeqScans: 1_000_000 } },
    });
    worker = await startWorker(config);
  });

  after(async () => {
    await traffic?.stop();
    await worker?.stop();
    await dropAuditSchema(config);
    await removeAuditApp(docker, prefix);
  });

  test('a slow route raises p95; the runbook reports it, restarts the backend once approved, and verifies p95 back under the threshold', async () => {
    await breakAuditApp(docker, app, 'slow-route', { route: '/api/v1/documents', ms: 1_500 });
    traffic = startTraffic(app);

    const intake = await fire(worker.client, config, alert('HighResponseTime', { service: 'audit-app', severity: 'high' }));
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'the scale-backend approval', (s) => s.pendingApprovals.length > 0, 90_000);
    assert.equal(waiting.pendingApprovals[0]!.kind, 'scale-backend');
    const measured = waiting.timeline.find((e) => e.message.startsWith('p95 over 3 s:'));
    assert.ok(measured, JSON.stringify(waiting.timeline.map((e) => e.message), null, 1));
    const p95 = Number(/\/api\/v1\/documents (\d+) ms/.exec(measured.message)?.[1]);
    assert.ok(p95 >= 1_500, `p95 of the slow route: ${measured.message}`);

    await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'scale-backend', by: 'erin' });
    const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 120_000 });
    assert.equal(outcome.resolution, 'remediated', JSON.stringify(outcome.timeline.map((e) => e.message), null, 1));
    assert.ok(outcome.timeline.some((e) => e.message === `Restarted container ${app.containers.backend}.`));
    const verified = outcome.timeline.find((e) => /^p95 is \d+ ms, under 1000 ms/.test(e.message));
    assert.ok(verified, 'recovery verified from /metrics');
    assert.ok((await traffic.stop()) > 10, 'traffic flowed');
    traffic = undefined;
    await recordHistoryIfAsked(intake.workflowId, 'slow-responses-restart');
  });

  test('a table read by sequential scans for an unindexed filter is VACUUM ANALYZEd, and its index is created concurrently only once approved', async () => {
    // The API itself is fast here (no knob left from the test before), so only the database path can explain the incident.
    await resetBackendFaults(app);
    traffic = startTraffic(app);

    // The workload, for real: 50 000 audit rows of 5 000 users, then a lookup by user, parameterised as an app sends it,
    // 60 times. audit_log has indexes on ip and at but none on user_id, so every lookup is a sequential scan.
    const statement = 'SELECT id, at, ip, action FROM audit_log WHERE user_id = $1';
    const lookups = 60;
    const auditLogIndexes = () =>
      withAppDatabase(app, async (db) =>
        (await db.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'audit_log' ORDER BY indexname`)).rows.map((r) => r.indexname),
      );
    await withAppDatabase(app, async (db) => {
      await db.query(
        `INSERT INTO audit_log (ip, user_id, action, details)
         SELECT ('10.1.' || (g % 250) || '.' || (g % 200))::inet, 'user-' || (g % 5000), 'document.read', jsonb_build_object('n', g)
         FROM generate_series(1, 50000) AS g`,
      );
      for (let i = 0; i < lookups; i++) await db.query(statement, [`user-${(i * 37) % 5000}`]);
    }); // the session ends here, which flushes its table statistics
    const seqScans = await eventually('audit_log sequential scans in pg_stat_user_tables', () =>
      withAppDatabase(app, async (db) => {
        const { rows } = await db.query<{ seq_scan: string }>(`SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'audit_log'`);
        const n = Number(rows[0]?.seq_scan ?? 0);
        return n >= lookups ? n : undefined;
      }),
    );
    const indexesBefore = await auditLogIndexes();
    assert.deepEqual(indexesBefore, ['audit_log_at_idx', 'audit_log_ip_idx', 'audit_log_pkey']);

    // Intake copies the runbook's policy from the config it routes with; the worker reads no policy, so it stays as started.
    const policies = { ...config.policies, 'slow-responses': { ...config.policies['slow-responses'], minSeqScans: 20 } };
    const indexConfig: Config = { ...config, policies };
    const intake = await fire(worker.client, indexConfig, alert('SlowDatabaseQueries', { service: 'audit-app', severity: 'medium' }));
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'the create-index approval', (s) => s.pendingApprovals.length > 0, 90_000);
    const messages = (timeline: { message: string }[]) => JSON.stringify(timeline.map((e) => e.message), null, 1);
    assert.deepEqual(
      waiting.pendingApprovals.map((p) => [p.kind, p.question]),
      [['create-index', `Create an index on audit_log(user_id) concurrently? Slow statement: ${statement}`]],
      messages(waiting.timeline),
    );
    const inspected = waiting.timeline.find((e) => e.message.startsWith('Read by sequential scans:'));
    assert.ok(inspected, messages(waiting.timeline));
    const scans = Number(/\baudit_log \((\d+) scans, \d+ rows read, 0 index scans\)/.exec(inspected.message)?.[1]);
    assert.ok(scans >= seqScans, inspected.message);
    assert.match(inspected.message, /; suggested indexes: audit_log\(user_id\)\.$/);
    // Only audit_log: the API's documents query is served by the natural-key index, so documents is not hot.
    assert.ok(waiting.timeline.some((e) => e.message === 'VACUUM ANALYZE audit_log.'), `VACUUM ANALYZE needs no approval: ${messages(waiting.timeline)}`);
    const indexesWhileWaiting = await auditLogIndexes();
    assert.deepEqual(indexesWhileWaiting, indexesBefore, 'no index before the approval');

    await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'create-index', by: 'erin' });
    const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 120_000 });
    assert.equal(outcome.resolution, 'remediated', messages(outcome.timeline));
    assert.ok(outcome.timeline.some((e) => e.message === 'Created index idx_audit_log_user_id concurrently.'), messages(outcome.timeline));
    assert.ok(outcome.timeline.some((e) => /^p95 is \d+ ms, under 1000 ms/.test(e.message)), 'recovery verified from /metrics');
    assert.ok(!outcome.timeline.some((e) => e.message.startsWith('Restarted container')), 'no restart: the database path sufficed');

    await withAppDatabase(app, async (db) => {
      const { rows } = await db.query<{ valid: boolean; ready: boolean; definition: string }>(
        `SELECT i.indisvalid AS valid, i.indisready AS ready, pg_get_indexdef(i.indexrelid) AS definition
         FROM pg_index i WHERE i.indexrelid = 'public.idx_audit_log_user_id'::regclass`,
      );
      assert.deepEqual(rows, [{ valid: true, ready: true, definition: 'CREATE INDEX idx_audit_log_user_id ON public.audit_log USING btree (user_id)' }]);
      // The lookup that was a sequential scan now uses it.
      const plan = (await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statement}`, ['user-42'])).rows.map((r) => r['QUERY PLAN']).join('\n');
      assert.match(plan, /idx_audit_log_user_id/, plan);
    });
    assert.ok((await traffic.stop()) > 10, 'traffic flowed');
    traffic = undefined;
    await recordHistoryIfAsked(intake.workflowId, 'slow-responses-create-index');
  });
});
