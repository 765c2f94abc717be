// The undo stack (RunbookContext.onClose) on the time-skipping test server, driven by a test-only runbook
// (test/workflows/undoDrill.ts) whose activities are stubs that log what ran.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import type { ConfigInput } from '../src/config/schema';
import { abortUpdate, alertResolvedSignal, resolveUpdate } from '../src/workflows/lifecycle/definitions';
import { timeSkippingIncidents, type ActivityStubs } from './support/timeSkipping';

const HOUR = 3_600_000;
const incidents = timeSkippingIncidents({
  taskQueuePrefix: 'undo',
  labels: { alertname: 'UndoDrill', service: 'drill' },
  workflowsPath: require.resolve('./workflows'),
  workflowType: 'undoDrill',
});
const { observe, outcomeOf } = incidents;
const config: ConfigInput = { approvers: { rollback: ['carol'] } };

function loggingStubs(log: string[], overrides: ActivityStubs = {}): ActivityStubs {
  return {
    restartContainer: async () => void log.push('change A'),
    rollbackContainer: async ({ image }) => {
      log.push('undo A');
      return { image, replacedImage: 'A', alreadyDone: false };
    },
    flushRedisDb: async () => {
      log.push('undo B');
      return { keysDropped: 7 };
    },
    ...overrides,
  };
}

const undoEvents = (timeline: { kind: string; message: string }[]) => timeline.filter((e) => e.kind === 'undo').map((e) => e.message);

describe('undo steps registered with onClose (time-skipping server)', { timeout: 180_000 }, () => {
  before(() => incidents.start());
  after(() => incidents.stop());

  test('run when the incident winds down, last registered first, each once and on the timeline', async () => {
    const log: string[] = [];
    const incident = await incidents.startIncident({ finish: 'remediated' }, config, loggingStubs(log));
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.deepEqual(log, ['change A', 'undo B', 'undo A']);
    assert.deepEqual(undoEvents(outcome.timeline), ['Put B back (7). (the incident is closing)', 'Undone: put A back. (the incident is closing)']);
    assert.ok(outcome.timeline.findIndex((e) => e.kind === 'undo') < outcome.timeline.findIndex((e) => e.kind === 'resolved'));
  });

  test('a timed undo runs on a durable timer when its time is up, while the incident is still open, and not again at close', async () => {
    const log: string[] = [];
    const incident = await incidents.startIncident({}, config, loggingStubs(log));
    assert.equal((await observe(incident)).phase, 'needs-human');
    assert.deepEqual(log, ['change A']);
    await incidents.env.sleep(HOUR + 1_000);
    const open = await observe(incident);
    assert.deepEqual(log, ['change A', 'undo B']);
    assert.deepEqual(undoEvents(open.timeline), ['Put B back (7). (its time is up)']);
    assert.equal(open.phase, 'needs-human', 'still open');

    await incident.executeUpdate(resolveUpdate, { args: [{ by: 'carol' }] });
    const outcome = await outcomeOf(incident);
    assert.deepEqual(log, ['change A', 'undo B', 'undo A']);
    assert.deepEqual(undoEvents(outcome.timeline), ['Put B back (7). (its time is up)', 'Undone: put A back. (the incident is closing)']);
  });

  test('undo steps run after the alert resolved, although nothing else may change then', async () => {
    const log: string[] = [];
    const incident = await incidents.startIncident({}, config, loggingStubs(log));
    await observe(incident);
    await incident.signal(alertResolvedSignal, {});
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'alert-resolved');
    assert.deepEqual(log, ['change A', 'undo B', 'undo A']);
  });

  test('an undo that fails for good is recorded and becomes a follow-up; the others still run', async () => {
    const log: string[] = [];
    const incident = await incidents.startIncident(
      { finish: 'remediated' },
      config,
      loggingStubs(log, {
        flushRedisDb: async () => {
          throw ApplicationFailure.nonRetryable('redis is gone', 'TargetNotConfigured');
        },
      }),
    );
    const outcome = await outcomeOf(incident);
    assert.deepEqual(log, ['change A', 'undo A']);
    assert.ok(outcome.timeline.some((e) => e.kind === 'note' && e.message === 'Undo failed: put B back: redis is gone'));
    assert.ok(outcome.timeline.some((e) => e.kind === 'follow-up' && e.message === 'Undo by hand: put B back.'));
  });

  test('an aborted remediation runs its undo steps at once, last first, and hands the incident to a human', async () => {
    const log: string[] = [];
    const incident = await incidents.startIncident({ ask: 'yes' }, config, loggingStubs(log));
    assert.deepEqual((await observe(incident)).pendingApprovals.map((p) => p.step), ['rollback']);
    await incident.executeUpdate(abortUpdate, { args: [{ by: 'dave', reason: 'wrong target' }] });
    const aborted = await observe(incident);
    assert.equal(aborted.phase, 'needs-human');
    assert.deepEqual(log, ['change A', 'undo B', 'undo A']);
    assert.deepEqual(undoEvents(aborted.timeline), ['Put B back (7). (remediation was aborted)', 'Undone: put A back. (remediation was aborted)']);
    const escalated = aborted.timeline.filter((e) => e.kind === 'escalated').map((e) => e.message);
    assert.equal(escalated.length, 1);
    assert.match(escalated[0]!, /^Remediation aborted by dave \(wrong target\); its undo steps ran: escalated to /);
    await incident.executeUpdate(resolveUpdate, { args: [{ by: 'dave' }] });
    await outcomeOf(incident);
    assert.deepEqual(log, ['change A', 'undo B', 'undo A'], 'each undo ran once');
  });
});
