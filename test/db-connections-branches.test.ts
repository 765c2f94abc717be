// Every branch of the database-connections runbook in seconds: the real workflow on the time-skipping test server,
// its activities typed stubs (test/db-connections.test.ts runs it against the sandbox audit-app's PostgreSQL).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ConnectionReport, Session } from '../src/activities/postgres';
import type { ConfigInput } from '../src/config/schema';
import { approveUpdate, rejectUpdate } from '../src/workflows/lifecycle/definitions';
import { timeSkippingIncidents, type ActivityStubs } from './support/timeSkipping';

const incidents = timeSkippingIncidents({ taskQueuePrefix: 'db-branches', runbook: 'db-connections', labels: { alertname: 'DatabaseConnectionsHigh', service: 'audit-app' } });
const { observe, outcomeOf, calls } = incidents;

const config: ConfigInput = {
  targets: {
    postgres: { container: 'audit-app-postgres', url: 'postgres://postgres@127.0.0.1:9/audit_app' },
    backend: { container: 'audit-app-backend', healthUrl: 'http://127.0.0.1:9/health' },
  },
  approvers: { 'terminate-sessions': ['dana'], 'restore-database': ['dana'] },
};

const idleSession: Session = { pid: 4242, user: 'app', application: 'audit-app', client: '127.0.0.1', state: 'idle in transaction', seconds: 900, query: 'UPDATE documents …' };
const calm: ConnectionReport = { database: 'audit_app', connections: 5, maxConnections: 100, usage: 0.05, byState: { idle: 5 }, idleInTransaction: [], longQueries: [], lockWaits: [] };
const exhausted: ConnectionReport = { ...calm, connections: 95, usage: 0.95, byState: { 'idle in transaction': 90, idle: 5 }, idleInTransaction: [idleSession] };
const healthy = { healthy: true, status: 200, elapsedMs: 3, attempts: 1 };
const size = { database: 'audit_app', bytes: 8_135_171, pretty: '7945 kB' };

function stubs(options: { reachable?: boolean; reports?: ConnectionReport[]; healthyAfterRestart?: boolean; comesBack?: boolean } = {}): ActivityStubs {
  const { reachable = true, reports = [calm], healthyAfterRestart = true, comesBack = true } = options;
  let inspections = 0;
  let restored = false;
  return {
    checkDatabase: async () => (reachable ? { reachable: true, latencyMs: 2 } : { reachable: false, latencyMs: 1, error: 'ECONNREFUSED' }),
    databaseSize: async () => size,
    waitForDatabase: async () => (comesBack ? { reachable: true, latencyMs: 2, attempts: 3 } : { reachable: false, latencyMs: 1, attempts: 60, error: 'ECONNREFUSED' }),
    inspectConnections: async () => reports[Math.min(inspections++, reports.length - 1)]!,
    terminateIdleSessions: async () => ({ terminated: [idleSession] }),
    restartContainer: async () => undefined,
    waitForHealthy: async () => (healthyAfterRestart || restored ? healthy : { healthy: false, status: 500, elapsedMs: 3, attempts: 20 }),
    restoreFromBackup: async () => {
      restored = true;
      return { backupFile: '/backups/latest.dump', output: '' };
    },
  };
}

describe('Database Connection Issues runbook, branch by branch (time-skipping server, stub activities)', { timeout: 120_000 }, () => {
  before(() => incidents.start());
  after(() => incidents.stop());

  test('a database that is down is restarted and verified with SELECT 1 and /health; no restore is asked for', async () => {
    const incident = await incidents.startIncident({ alertname: 'DatabaseDown' }, config, stubs({ reachable: false }));
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(calls(incident).restartContainer, 1);
    assert.equal(calls(incident).restoreFromBackup, undefined);
    assert.equal(calls(incident).databaseSize, undefined, 'a database that does not answer has no size to read');
    assert.ok(outcome.timeline.some((e) => e.message === 'Restarted container audit-app-postgres.'));
  });

  test('a database that answers after the restart while the backend still fails is restored from the backup once approved', async () => {
    const incident = await incidents.startIncident({ alertname: 'DatabaseDown' }, config, stubs({ reachable: false, healthyAfterRestart: false }));
    const waiting = await observe(incident);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['restore-database']);
    assert.equal(calls(incident).restoreFromBackup, undefined, 'nothing restored before approval');
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'restore-database', by: 'dana' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(calls(incident).restoreFromBackup, 1);
    assert.ok(outcome.timeline.some((e) => e.message === 'Restored audit-app-postgres from /backups/latest.dump.'));
  });

  test('a rejected restore restores nothing and leaves the incident to a human', async () => {
    const incident = await incidents.startIncident({ alertname: 'DatabaseDown' }, config, stubs({ reachable: false, healthyAfterRestart: false }));
    await observe(incident);
    await incident.executeUpdate(rejectUpdate, { args: [{ step: 'restore-database', by: 'dana' }] });
    assert.equal((await observe(incident)).phase, 'needs-human');
    assert.equal(calls(incident).restoreFromBackup, undefined);
    await incident.terminate('test over');
  });

  test('a database that does not come back after a restart is escalated, not restored', async () => {
    const incident = await incidents.startIncident({ alertname: 'DatabaseDown' }, config, stubs({ reachable: false, comesBack: false }));
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.equal(status.escalationLevel, 1);
    assert.equal(status.pendingApprovals.length, 0);
    await incident.terminate('test over');
  });

  test('an exhausted pool: idle transactions are terminated once approved, the backend restarted, the count verified, and the prevention notes become follow-ups', async () => {
    const incident = await incidents.startIncident({}, config, stubs({ reports: [exhausted, calm] }));
    const waiting = await observe(incident);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.question), ['Terminate 1 session(s) idle in a transaction for over 10 min (pids 4242)?']);
    assert.equal(calls(incident).terminateIdleSessions, undefined);
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'terminate-sessions', by: 'dana' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(calls(incident).terminateIdleSessions, 1);
    assert.equal(calls(incident).restartContainer, 1, 'the backend is restarted to reset its pool');
    assert.ok(outcome.timeline.some((e) => e.message === 'Terminated 1 session(s) idle in a transaction: pids 4242.'));
    // The section's Prevention notes, as the closed incident's follow-ups.
    assert.deepEqual((await observe(incident)).followUps, [
      'Increase the connection pool size in settings.',
      'Add pgbouncer for connection pooling.',
      'Review and optimize slow queries.',
    ]);
  });

  test('with autoTerminate in the policy the sessions are terminated without asking', async () => {
    const incident = await incidents.startIncident({}, { ...config, policies: { 'db-connections': { autoTerminate: true } } }, stubs({ reports: [exhausted, calm] }));
    const outcome = await outcomeOf(incident);
    assert.ok(!outcome.timeline.some((e) => e.kind === 'approval-requested'));
    assert.equal(calls(incident).terminateIdleSessions, 1);
  });

  test('connections still high after the cleanup hand the incident to a human, with the long queries as a follow-up', async () => {
    const slow: Session = { ...idleSession, pid: 7, state: 'active', seconds: 45, query: 'SELECT pg_sleep(45)' };
    const stillHigh = { ...exhausted, longQueries: [slow] };
    const incident = await incidents.startIncident({}, { ...config, policies: { 'db-connections': { autoTerminate: true } } }, stubs({ reports: [stillHigh, stillHigh] }));
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.ok(status.followUps.includes('Review the queries that ran for over 30 s: SELECT pg_sleep(45)'), JSON.stringify(status.followUps));
    await incident.terminate('test over');
  });

  test('a healthy database with calm connections needs nothing but a look at the backend; its size is on the timeline', async () => {
    const incident = await incidents.startIncident({}, config, stubs());
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    const sized = outcome.timeline.find((e) => e.message === 'audit_app is 7945 kB (8135171 bytes).');
    assert.deepEqual(sized?.data, size);
    assert.equal(calls(incident).restartContainer, undefined);
    assert.equal(calls(incident).terminateIdleSessions, undefined);
  });
});
