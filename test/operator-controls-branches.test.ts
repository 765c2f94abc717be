// The operator controls at the gates every remediation step passes (hands-off, pause/resume, abort) and approvals
// by quorum and with an expiry, on the
// time-skipping server with the API-down runbook and stub activities; test/operator-controls.test.ts drives the
// hands-off switch end to end (PUT /controls, Postgres, a real worker).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ApplicationFailure } from '@temporalio/activity';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { workflowMetadataQuery } from '@temporalio/workflow';
import type { ContainerFacts } from '../src/activities/docker';
import type { ConfigInput } from '../src/config/schema';
import type { HandsOffSwitch } from '../src/controls/model';
import { abortUpdate, approveUpdate, handsOffSignal, pauseUpdate, resolveUpdate, resumeUpdate, UpdateRefusal } from '../src/workflows/lifecycle/definitions';
import { timeSkippingIncidents, type ActivityStubs, type Incident } from './support/timeSkipping';

const incidents = timeSkippingIncidents({ taskQueuePrefix: 'controls-branches', runbook: 'api-down', labels: { alertname: 'APIDown', service: 'backend' } });
const { observe, outcomeOf, calls } = incidents;

const config: ConfigInput = {
  targets: { backend: { container: 'backend', healthUrl: 'http://127.0.0.1:9/health', healthyWithin: '20s' } },
  approvers: { rollback: ['carol'] },
};
const container: ContainerFacts = { name: 'backend', exists: true, status: 'exited', running: false, exitCode: 1, oomKilled: false, restartCount: 1, image: 'backend:2', previousImage: 'backend:1' };
const globalOn: HandsOffSwitch = { scope: 'global', on: true, by: 'alice', at: '2026-11-28T07:00:00.000Z', reason: 'database migration' };

/** A backend that is down; the restart does not help, the rollback does. `switches` answers the hands-off read. */
function backendStubs(switches: () => HandsOffSwitch[] = () => []): ActivityStubs {
  let rolledBack = false;
  return {
    handsOffSwitches: async () => switches(),
    inspectContainer: async () => container,
    containerLogs: async () => 'panic',
    probeHealth: async () => ({ healthy: false, error: 'ECONNREFUSED', elapsedMs: 1 }),
    restartContainer: async () => undefined,
    waitForHealthy: async () => (rolledBack ? { healthy: true, status: 200, elapsedMs: 1, attempts: 1 } : { healthy: false, error: 'ECONNREFUSED', elapsedMs: 1, attempts: 3 }),
    rollbackContainer: async ({ image }) => {
      rolledBack = true;
      return { image, replacedImage: 'backend:2', alreadyDone: false };
    },
  };
}

async function waitingForRollback(incident: Incident) {
  const status = await observe(incident);
  assert.deepEqual(status.pendingApprovals.map((p) => p.step), ['rollback'], JSON.stringify(status.timeline, null, 1));
  return status;
}

const refusedWith = (type: string) => (err: unknown) => err instanceof WorkflowUpdateFailedError && (err.cause as ApplicationFailure).type === type;
const entries = (status: { timeline: { kind: string; message: string }[] }, kind: string) => status.timeline.filter((e) => e.kind === kind).map((e) => e.message);

describe('operator controls at the remediation gates (time-skipping server, stub activities)', { timeout: 120_000 }, () => {
  before(() => incidents.start());
  after(() => incidents.stop());

  test('with hands-off on, an incident still diagnoses and pages, records the restart it would have run, and waits for a human', async () => {
    const incident = await incidents.startIncident({ severity: 'critical' }, config, backendStubs(() => [globalOn]));
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.deepEqual(status.handsOff, globalOn);
    assert.deepEqual(entries(status, 'would-have'), ['Hands-off (global, set by alice: database migration): would have run "Restart container backend".']);
    assert.equal(calls(incident).inspectContainer, 1, 'diagnosis ran');
    assert.equal(calls(incident).restartContainer, undefined, 'no remediation started');
    assert.ok(incidents.pages.some((p) => p.workflowId === incident.workflowId), 'the ladder paged');
    const { currentDetails } = (await incident.query(workflowMetadataQuery)) as { currentDetails: string };
    assert.match(currentDetails, /\*\*Hands-off\*\* \(global, set by alice: database migration\): no remediation starts/, 'the Temporal UI shows it');
    await incident.terminate('test over');
  });

  test("a runbook's own switch holds only that runbook back; another runbook's switch does not", async () => {
    const other: HandsOffSwitch = { ...globalOn, scope: 'redis-down' };
    const incident = await incidents.startIncident({}, config, backendStubs(() => [other]));
    await waitingForRollback(incident);
    assert.equal(calls(incident).restartContainer, 1);
    await incident.terminate('test over');
    const own = await incidents.startIncident({}, config, backendStubs(() => [{ ...globalOn, scope: 'api-down' }]));
    const status = await observe(own);
    assert.equal(calls(own).restartContainer, undefined);
    assert.match(entries(status, 'would-have')[0]!, /^Hands-off \(runbook api-down, set by alice/);
    await own.terminate('test over');
  });

  test('hands-off turned on while a rollback waits for approval stops the approved rollback and records it as "would have"', async () => {
    let switches: HandsOffSwitch[] = [];
    const incident = await incidents.startIncident({}, config, backendStubs(() => switches));
    await waitingForRollback(incident);
    switches = [globalOn];
    await incident.signal(handsOffSignal, globalOn);
    const signalled = await waitingForRollback(incident);
    assert.deepEqual(signalled.handsOff, globalOn, 'the signal shows in the status at once');
    assert.ok(entries(signalled, 'control').includes('Hands-off on (global, set by alice: database migration).'));
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'rollback', by: 'carol' }] });
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.equal(calls(incident).rollbackContainer, undefined);
    assert.deepEqual(entries(status, 'would-have'), ['Hands-off (global, set by alice: database migration): would have run "Roll back backend to backend:1".']);
    await incident.terminate('test over');
  });

  test('when the switch cannot be read, the gate goes by the last signalled state and says so', async () => {
    const stubs = backendStubs();
    stubs.handsOffSwitches = async () => {
      throw new Error('connection refused');
    };
    const incident = await incidents.startIncident({}, config, stubs);
    await waitingForRollback(incident);
    await incident.signal(handsOffSignal, globalOn);
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'rollback', by: 'carol' }] });
    const status = await observe(incident);
    assert.equal(calls(incident).rollbackContainer, undefined);
    assert.ok(status.timeline.some((e) => e.kind === 'note' && /^Could not read the hands-off switch \(connection refused\): going by its last signalled state \(on\)\.$/.test(e.message)), JSON.stringify(status.timeline, null, 1));
    await incident.terminate('test over');
  });

  test('a paused incident holds before its next change until resumed, then carries on', async () => {
    const incident = await incidents.startIncident({}, config, backendStubs());
    await waitingForRollback(incident);
    await incident.executeUpdate(pauseUpdate, { args: [{ by: 'dave', note: 'looking at it' }] });
    await assert.rejects(incident.executeUpdate(pauseUpdate, { args: [{ by: 'dave' }] }), refusedWith(UpdateRefusal.alreadyInThatState));
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'rollback', by: 'carol' }] });
    const paused = await observe(incident);
    assert.equal(paused.currentStep, 'Paused by dave before: run "Roll back backend to backend:1"');
    assert.equal(paused.paused?.by, 'dave');
    assert.match(((await incident.query(workflowMetadataQuery)) as { currentDetails: string }).currentDetails, /\*\*Paused\*\* by dave/);
    assert.equal(calls(incident).rollbackContainer, undefined);
    await incident.executeUpdate(resumeUpdate, { args: [{ by: 'dave' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(calls(incident).rollbackContainer, 1);
    assert.deepEqual(entries(outcome, 'control'), ['dave paused remediation: looking at it; it holds before its next step.', 'dave resumed remediation.']);
  });

  test('an abort cancels the pending approval, escalates, and leaves the incident to humans; later controls are refused', async () => {
    const incident = await incidents.startIncident({ severity: 'critical' }, config, backendStubs());
    await waitingForRollback(incident);
    await assert.rejects(incident.executeUpdate(resumeUpdate, { args: [{ by: 'dave' }] }), refusedWith(UpdateRefusal.alreadyInThatState));
    await assert.rejects(incident.executeUpdate(abortUpdate, { args: [{ by: 'dave' }] as never }), refusedWith(UpdateRefusal.invalidPayload));
    await incident.executeUpdate(abortUpdate, { args: [{ by: 'dave', reason: 'the restart loop hides a data bug' }] });
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.equal(status.aborted?.reason, 'the restart loop hides a data bug');
    assert.deepEqual(status.pendingApprovals, []);
    assert.ok(entries(status, 'approval-cancelled').includes('Approval for "rollback" cancelled: remediation was aborted.'));
    assert.ok(entries(status, 'escalated').some((m) => m.startsWith('Remediation aborted by dave (the restart loop hides a data bug): escalated to')), JSON.stringify(status.timeline, null, 1));
    await assert.rejects(incident.executeUpdate(pauseUpdate, { args: [{ by: 'dave' }] }), refusedWith(UpdateRefusal.remediationOver));
    await incident.executeUpdate(resolveUpdate, { args: [{ by: 'dave' }] });
    assert.equal((await outcomeOf(incident)).resolution, 'resolved-by-human');
    assert.equal(calls(incident).rollbackContainer, undefined);
  });

  test('an approval with a quorum of two waits for a second, distinct approver; the same one twice is refused', async () => {
    const quorum: ConfigInput = { ...config, approvers: { rollback: ['carol', 'dave'] }, approvals: { rollback: { quorum: 2 } } };
    const incident = await incidents.startIncident({}, quorum, backendStubs());
    await waitingForRollback(incident);
    const first = await incident.executeUpdate(approveUpdate, { args: [{ step: 'rollback', by: 'carol' }] });
    assert.deepEqual(first.pendingApprovals.map((p) => [p.step, p.quorum, p.approvedBy]), [['rollback', 2, ['carol']]]);
    await assert.rejects(incident.executeUpdate(approveUpdate, { args: [{ step: 'rollback', by: 'carol' }] }), refusedWith(UpdateRefusal.alreadyInThatState));
    assert.equal(calls(incident).rollbackContainer, undefined);
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'rollback', by: 'dave' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(calls(incident).rollbackContainer, 1);
    assert.deepEqual(entries(outcome, 'approved'), ['carol approved "rollback" (1 of 2).', 'dave approved "rollback" (2 of 2).']);
    assert.match(entries(outcome, 'approval-requested')[0]!, /; 2 of them must approve\)$/);
  });

  test('an approval nobody answers within expiresAfter escalates and, with onExpiry reject, counts as rejected', async () => {
    const expiring: ConfigInput = { ...config, approvals: { rollback: { expiresAfter: '30m', onExpiry: 'reject' } } };
    const incident = await incidents.startIncident({}, expiring, backendStubs());
    const asked = await waitingForRollback(incident);
    assert.ok(asked.pendingApprovals[0]!.expiresAt, 'the status says when it expires');
    await incidents.env.sleep(31 * 60_000);
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.deepEqual(status.pendingApprovals, []);
    assert.deepEqual(entries(status, 'rejected'), ['Nobody answered "rollback" in time: counted as rejected.']);
    assert.ok(entries(status, 'escalated').some((m) => m.startsWith('Approval "rollback" unanswered in time (counted as rejected)')), JSON.stringify(status.timeline, null, 1));
    assert.equal(calls(incident).rollbackContainer, undefined);
    await incident.terminate('test over');
  });

  test('with onExpiry escalate, an unanswered approval escalates once and still takes a late answer', async () => {
    const expiring: ConfigInput = { ...config, approvals: { rollback: { expiresAfter: '30m' } } };
    const incident = await incidents.startIncident({}, expiring, backendStubs());
    await waitingForRollback(incident);
    await incidents.env.sleep(31 * 60_000);
    const status = await waitingForRollback(incident);
    assert.equal(entries(status, 'escalated').filter((m) => m.startsWith('Approval "rollback" unanswered in time:')).length, 1, JSON.stringify(status.timeline, null, 1));
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'rollback', by: 'carol' }] });
    assert.equal((await outcomeOf(incident)).resolution, 'remediated');
  });
});
