// Runs that do not start from an alert: an operator's run and a Temporal Schedule's, against the real dev
// server, a real worker and the real audit trail.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client as PgClient } from 'pg';
import { startOperatorRun, operatorInput } from '../src/intake/operator';
import type { IncidentOutcome } from '../src/incidents/model';
import { ensureSchedules, type ManagedSchedule } from '../src/temporal/schedules';
import { resolveUpdate } from '../src/workflows/lifecycle/definitions';
import { dropAuditSchema } from './support/audit';
import { testConfig } from './support/config';
import { incidentStatus, outcomeOf, terminateAll } from './support/incidents';
import { waitFor } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

describe('runs that do not start from an alert', () => {
  const config = testConfig();
  let worker: RunningWorker;
  const started: string[] = [];

  before(async () => {
    worker = await startWorker(config);
  });
  after(async () => {
    await terminateAll(worker.client, started);
    await worker.stop();
    await dropAuditSchema(config);
  });

  test("an operator's run has no escalation ladder, records who started it, and is audited with no alert or severity", async () => {
    const workflowId = `operator-${randomBytes(4).toString('hex')}`;
    started.push(workflowId);
    await startOperatorRun(worker.client, config, { runbook: 'generic', workflowId, by: 'carol', reason: 'drill', service: 'backend' });
    const status = await waitFor('the run to wait for a human', async () => {
      const s = await incidentStatus(worker.client, workflowId);
      return s.phase === 'needs-human' ? s : undefined;
    });
    assert.deepEqual(status.trigger, { kind: 'operator', by: 'carol', reason: 'drill' });
    assert.equal(status.severity, undefined);
    assert.equal(status.escalatedTo, undefined);
    assert.equal(status.timeline[0]!.message, 'generic for backend, started by carol: drill.');
    assert.equal(status.timeline[0]!.actor, 'carol');
    assert.ok(!status.timeline.some((e) => e.kind === 'notified' || e.kind === 'escalated'), 'nobody is paged');

    await worker.client.workflow.getHandle(workflowId).executeUpdate(resolveUpdate, { args: [{ by: 'carol', note: 'drill over' }] });
    const outcome: IncidentOutcome = await outcomeOf(worker.client, workflowId);
    assert.equal(outcome.resolution, 'resolved-by-human');

    const pg = new PgClient({ connectionString: config.audit.databaseUrl });
    await pg.connect();
    try {
      const { rows } = await pg.query(
        `SELECT trigger, triggered_by, alertname, fingerprint, severity, phase FROM "${config.audit.schema}".incidents WHERE workflow_id = $1`,
        [workflowId],
      );
      assert.deepEqual(rows, [{ trigger: 'operator', triggered_by: 'carol', alertname: null, fingerprint: null, severity: null, phase: 'resolved' }]);
    } finally {
      await pg.end();
    }
  });

  test('an operator run with a severity runs the escalation ladder as an alert would', async () => {
    const workflowId = `operator-${randomBytes(4).toString('hex')}`;
    started.push(workflowId);
    await startOperatorRun(worker.client, config, { runbook: 'generic', workflowId, by: 'carol', service: 'backend', severity: 'high' });
    const status = await waitFor('the first page', async () => {
      const s = await incidentStatus(worker.client, workflowId);
      return s.timeline.some((e) => e.kind === 'notified') ? s : undefined;
    });
    assert.equal(status.severity, 'high');
    assert.equal(status.escalatedTo, 'oncall');
  });

  describe('ensureSchedules', () => {
    const scheduleId = `runbooks-test-${randomBytes(4).toString('hex')}`;
    const schedule = (hour: number): ManagedSchedule => ({
      scheduleId,
      spec: { calendars: [{ hour, minute: 0 }], timezone: 'Europe/Berlin' },
      input: { ...operatorInput({ runbook: 'generic', workflowId: scheduleId, by: 'schedule', service: 'checklists' }, config), trigger: { kind: 'schedule', scheduleId } },
    });
    after(async () => {
      await worker.client.schedule.getHandle(scheduleId).delete().catch(() => undefined);
    });

    test('creates a schedule once, leaves it when unchanged, updates it when changed, deletes it when removed', async () => {
      const tq = config.temporal.taskQueue;
      assert.deepEqual(await ensureSchedules(worker.client, tq, [schedule(6)]), { created: [scheduleId], updated: [], deleted: [], unchanged: [] });
      assert.deepEqual(await ensureSchedules(worker.client, tq, [schedule(6)]), { created: [], updated: [], deleted: [], unchanged: [scheduleId] });
      const described = await worker.client.schedule.getHandle(scheduleId).describe();
      assert.equal(described.policies.overlap, 'SKIP');
      assert.deepEqual(described.spec.calendars?.[0]?.hour, [{ start: 6, end: 6, step: 1 }]);

      assert.deepEqual(await ensureSchedules(worker.client, tq, [schedule(7)]), { created: [], updated: [scheduleId], deleted: [], unchanged: [] });
      const updated = await worker.client.schedule.getHandle(scheduleId).describe();
      assert.deepEqual(updated.spec.calendars?.[0]?.hour, [{ start: 7, end: 7, step: 1 }]);

      // Schedule listing goes through visibility, which lags a little behind.
      await waitFor('the schedule in the list', async () => {
        for await (const s of worker.client.schedule.list()) if (s.scheduleId === scheduleId) return true;
        return undefined;
      });
      assert.deepEqual(await ensureSchedules(worker.client, tq, []), { created: [], updated: [], deleted: [scheduleId], unchanged: [] });
      await assert.rejects(worker.client.schedule.getHandle(scheduleId).describe());
      assert.deepEqual(await ensureSchedules(worker.client, `${tq}-other`, []), { created: [], updated: [], deleted: [], unchanged: [] });
    });
  });
});
