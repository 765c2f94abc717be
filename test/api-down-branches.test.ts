// Every branch of the API-down runbook in seconds: the real workflow on the time-skipping test server, its
// activities typed stubs (test/api-down.test.ts runs the same runbook against a real container).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { ContainerFacts } from '../src/activities/docker';
import type { HealthWait } from '../src/activities/http';
import type { ConfigInput } from '../src/config/schema';
import type { IncidentStatusView } from '../src/incidents/model';
import { ActivityErrorType } from '../src/runbooks/errorTypes';
import { alertResolvedSignal, approveUpdate, rejectUpdate, resolveUpdate, UpdateRefusal } from '../src/workflows/lifecycle/definitions';
import { timeSkippingIncidents, type ActivityStubs, type Incident } from './support/timeSkipping';

const incidents = timeSkippingIncidents({ taskQueuePrefix: 'api-down-branches', runbook: 'api-down', labels: { alertname: 'APIDown', service: 'backend' } });
const { observe, outcomeOf, calls } = incidents;

const config: ConfigInput = {
  targets: { backend: { container: 'backend', healthUrl: 'http://127.0.0.1:9/health', healthyWithin: '20s' } },
  approvers: { rollback: ['carol'], 'flush-cache': ['fred'] },
};

const exited: ContainerFacts = {
  name: 'backend',
  exists: true,
  status: 'exited',
  running: false,
  exitCode: 137,
  oomKilled: true,
  restartCount: 3,
  image: 'backend:2',
  previousImage: 'backend:1',
};
const healthy: HealthWait = { healthy: true, status: 200, elapsedMs: 4, attempts: 2 };
const stillDown: HealthWait = { healthy: false, error: 'ECONNREFUSED', elapsedMs: 1, attempts: 40 };

/** A backend that is down; the restart helps unless `restartHelps` is false; a rollback always does. */
function backendStubs({ restartHelps = true, container = exited } = {}): ActivityStubs {
  let rolledBack = false;
  return {
    inspectContainer: async () => container,
    containerLogs: async () => 'panic: out of memory',
    probeHealth: async () => ({ healthy: false, error: 'ECONNREFUSED', elapsedMs: 1 }),
    restartContainer: async () => undefined,
    waitForHealthy: async () => (restartHelps || rolledBack ? healthy : stillDown),
    rollbackContainer: async ({ image }) => {
      rolledBack = true;
      return { image, replacedImage: 'backend:2', keptAs: 'backend-replaced-0123456789ab', alreadyDone: false };
    },
  };
}

async function start(stubs: ActivityStubs, configInput: ConfigInput = config): Promise<Incident> {
  return incidents.startIncident({}, configInput, stubs);
}

async function waitingForRollback(incident: Incident): Promise<IncidentStatusView> {
  const status = await observe(incident);
  assert.deepEqual(status.pendingApprovals.map((p) => p.step), ['rollback'], JSON.stringify(status.timeline, null, 1));
  return status;
}

const messages = (status: { timeline: { message: string }[] }) => status.timeline.map((e) => e.message);

describe('API Service Down runbook, branch by branch (time-skipping server, stub activities)', { timeout: 120_000 }, () => {
  before(() => incidents.start());
  after(() => incidents.stop());

  test('a restart that brings /health back resolves the incident without asking anyone', async () => {
    const incident = await start(backendStubs());
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.deepEqual(calls(incident).restartContainer, 1);
    assert.equal(calls(incident).rollbackContainer, undefined);
    assert.ok(!outcome.timeline.some((e) => e.kind === 'approval-requested'));
    assert.ok(messages(outcome).includes('Container backend is exited, exit code 137, OOM-killed; 3 restart(s); image backend:2.'));
  });

  test('while the rollback waits for approval the UI names the question, not the previous step', async () => {
    const incident = await start(backendStubs({ restartHelps: false }));
    const status = await waitingForRollback(incident);
    assert.equal(status.phase, 'awaiting-approval');
    assert.equal(status.currentStep, 'Approve "rollback": Restart did not help. Roll backend back from backend:2 to backend:1?');
    await incident.terminate('test over');
  });

  test('an approved rollback runs once, to the labelled image, and is verified', async () => {
    const incident = await start(backendStubs({ restartHelps: false }));
    await waitingForRollback(incident);
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'rollback', by: 'carol' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(calls(incident).rollbackContainer, 1);
    assert.ok(messages(outcome).includes('Rolled backend back from backend:2 to backend:1; old container kept as backend-replaced-0123456789ab.'));
    assert.ok(messages(outcome).includes('/health answers 200 after the rollback (2 probe(s)).'));
  });

  test('a rejected rollback rolls nothing back and leaves the incident to a human', async () => {
    const incident = await start(backendStubs({ restartHelps: false }));
    await waitingForRollback(incident);
    await incident.executeUpdate(rejectUpdate, { args: [{ step: 'rollback', by: 'carol', reason: 'the deploy fixes a data bug' }] });
    const waiting = await observe(incident);
    assert.equal(waiting.phase, 'needs-human');
    assert.ok(messages(waiting).includes('carol rejected "rollback": the deploy fixes a data bug.'));
    await incident.executeUpdate(resolveUpdate, { args: [{ by: 'carol', note: 'fixed forward' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'resolved-by-human');
    assert.equal(calls(incident).rollbackContainer, undefined);
  });

  test('an approver of another kind of step (flush-cache) cannot approve the rollback: refused and recorded', async () => {
    const incident = await start(backendStubs({ restartHelps: false }));
    await waitingForRollback(incident);
    await assert.rejects(
      incident.executeUpdate(approveUpdate, { args: [{ step: 'rollback', by: 'fred' }] }),
      (err: unknown) => err instanceof WorkflowUpdateFailedError && (err.cause as ApplicationFailure).type === UpdateRefusal.notAnApprover,
    );
    const status = await waitingForRollback(incident);
    assert.ok(messages(status).includes('fred may not approve "rollback": not an approver for rollback.'));
    assert.equal(calls(incident).rollbackContainer, undefined);
    await incident.terminate('test over');
  });

  test('the alert resolving during the approval cancels it: no rollback ever starts', async () => {
    const incident = await start(backendStubs({ restartHelps: false }));
    await waitingForRollback(incident);
    await incident.signal(alertResolvedSignal, {});
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'alert-resolved');
    assert.ok(outcome.timeline.some((e) => e.kind === 'approval-cancelled'));
    assert.equal(calls(incident).rollbackContainer, undefined);
  });

  test('the alert resolving while the diagnosis runs means the restart never starts', async () => {
    let diagnosing!: () => void;
    const diagnosisStarted = new Promise<void>((resolve) => (diagnosing = resolve));
    let finishDiagnosis!: () => void;
    const gate = new Promise<void>((resolve) => (finishDiagnosis = resolve));
    const incident = await start({
      ...backendStubs(),
      inspectContainer: async () => {
        diagnosing();
        await gate;
        return exited;
      },
    });
    await diagnosisStarted;
    await incident.signal(alertResolvedSignal, {});
    finishDiagnosis();
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'alert-resolved');
    assert.equal(calls(incident).restartContainer, undefined, 'no restart after the alert resolved');
  });

  test('a step that fails for good hands the incident to humans instead of failing the workflow', async () => {
    const incident = await start({
      ...backendStubs(),
      inspectContainer: async () => {
        throw ApplicationFailure.nonRetryable('container "backend" does not exist', ActivityErrorType.containerNotFound);
      },
    });
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.ok(messages(status).includes('Step failed: container "backend" does not exist'), JSON.stringify(messages(status)));
    assert.equal(calls(incident).inspectContainer, 1, 'a permanent failure is not retried');
    assert.equal(calls(incident).restartContainer, undefined);
    await incident.terminate('test over');
  });

  test('without a previous image it escalates at once instead of asking for a rollback', async () => {
    const incident = await start(backendStubs({ restartHelps: false, container: { ...exited, previousImage: undefined } }));
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.equal(status.pendingApprovals.length, 0);
    assert.equal(status.escalationLevel, 1);
    assert.ok(status.timeline.some((e) => e.kind === 'escalated' && e.message.startsWith('Restart did not help and no rollback is possible')));
    await incident.terminate('test over');
  });

  test('without a backend target it acts on nothing and waits for a human', async () => {
    const incident = await start(backendStubs(), { approvers: { rollback: ['carol'] } });
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.ok(messages(status).includes('No backend target is configured (targets.backend): nothing to act on.'));
    assert.deepEqual(Object.keys(calls(incident)).filter((name) => name !== 'notify' && name !== 'recordTimeline'), []);
    await incident.terminate('test over');
  });
});
