// Signals, Updates and the alert-resolved path of a generic incident on the time-skipping test server.
// The lifecycle activities `notify` and `recordTimeline` are fakes (unit-level boundaries).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { acknowledgeSignal, acknowledgeUpdate, alertFiringSignal, alertResolvedSignal, approveSignal, approveUpdate, rejectSignal, rejectUpdate, resolveSignal, statusQuery, UpdateRefusal } from '../src/workflows/lifecycle/definitions';
import { type IncidentStatusView } from '../src/incidents/model';
import { timeSkippingIncidents, type Incident } from './support/timeSkipping';

const incidents = timeSkippingIncidents({
  taskQueuePrefix: 'incident-signals',
  runbook: 'generic',
  labels: { alertname: 'QueueBacklog', service: 'etl', severity: 'critical' },
});
const { pages, settle, observe, outcomeOf } = incidents;

const E = temporal.api.enums.v1.EventType;

function notes(status: IncidentStatusView): string[] {
  return status.timeline.filter((e) => e.kind === 'note').map((e) => e.message);
}

/** Runs `call`, which must fail as a rejected Update, and returns the ApplicationFailure the workflow gave. */
async function refusal(call: () => Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await call();
  } catch (err) {
    assert.ok(err instanceof WorkflowUpdateFailedError, `a WorkflowUpdateFailedError expected, got ${(err as Error)?.name}: ${(err as Error)?.message}`);
    assert.ok(err.cause instanceof ApplicationFailure, `an ApplicationFailure as the cause expected, got ${err.cause?.name}`);
    return err.cause;
  }
  assert.fail('the Update was accepted');
}

/** A critical QueueBacklog incident, with alice as the rollback approver. */
function withIncident(body: (handle: Incident) => Promise<void>): Promise<void> {
  return incidents.withIncident({}, { approvers: { rollback: ['alice'] } }, body);
}

describe('incident signals and updates (time-skipping test server)', { timeout: 120_000 }, () => {
  before(() => incidents.start());
  after(() => incidents.stop());

  describe('signals', () => {
    test('malformed signals are recorded as notes, and the incident carries on', async () => {
      await withIncident(async (incident) => {
        const before = await observe(incident);
        assert.equal(before.phase, 'needs-human');
        const notesBefore = notes(before).length;

        await incident.signal(approveSignal, {} as never);
        await incident.signal('approve');
        await incident.signal(rejectSignal, { step: 'rollback' } as never);
        await incident.signal(approveSignal, { step: 'rollback', by: 'alice', unexpected: true } as never);
        await incident.signal(acknowledgeSignal, { by: '   ' });
        await incident.signal(acknowledgeSignal, 'alice' as never);
        await incident.signal(resolveSignal, { by: 42 } as never);
        await incident.signal(resolveSignal, { by: 'bob', note: 'x'.repeat(1001) });

        const status = await observe(incident);
        const added = notes(status).slice(notesBefore);
        assert.equal(added.length, 8, JSON.stringify(added, null, 1));
        assert.match(added[0]!, /^Ignored a malformed approve: .*step/);
        assert.match(added[0]!, /by/);
        assert.match(added[1]!, /^Ignored a malformed approve: /);
        assert.match(added[2]!, /^Ignored a malformed reject: .*by/);
        assert.match(added[3]!, /^Ignored a malformed approve: .*unexpected/);
        assert.match(added[4]!, /^Ignored a malformed acknowledgement: .*by/);
        assert.match(added[5]!, /^Ignored a malformed acknowledgement: /);
        assert.match(added[6]!, /^Ignored a malformed resolve: .*by/);
        assert.match(added[7]!, /^Ignored a malformed resolve: .*note/);

        assert.equal(status.phase, 'needs-human', 'still open');
        assert.equal(status.acknowledgedBy, undefined);
        assert.equal(status.timeline.some((e) => e.kind === 'acknowledged' || e.kind === 'approved' || e.kind === 'rejected'), false);
        assert.equal((await incident.describe()).status.name, 'RUNNING');

        // It still answers well-formed signals afterwards.
        await incident.signal(acknowledgeSignal, { by: 'alice' });
        assert.equal((await observe(incident)).acknowledgedBy, 'alice');
      });
    });

    test('a well-formed approve of a step nobody asked about is recorded as a note', async () => {
      await withIncident(async (incident) => {
        await incident.signal(approveSignal, { step: 'rollback', by: 'alice' });
        await incident.signal(rejectSignal, { step: 'flush-cache', by: 'alice', reason: 'no' });
        const added = notes(await observe(incident));
        assert.ok(added.includes('Ignored approve of "rollback" by alice: no such pending step.'), JSON.stringify(added, null, 1));
        assert.ok(added.includes('Ignored reject of "flush-cache" by alice: no such pending step.'), JSON.stringify(added, null, 1));
      });
    });

    test('alertResolved closes a generic incident with resolution alert-resolved', async () => {
      await withIncident(async (incident) => {
        await observe(incident);
        await incident.signal(alertFiringSignal, {});
        await incident.signal(alertResolvedSignal, { at: new Date().toISOString() });
        const outcome = await outcomeOf(incident);
        assert.equal(outcome.resolution, 'alert-resolved');
        assert.equal(outcome.resolvedBy, 'alertmanager');
        const kinds = outcome.timeline.map((e) => e.kind);
        assert.ok(kinds.includes('alert-refired'), kinds.join(', '));
        assert.ok(kinds.indexOf('alert-resolved') < kinds.indexOf('resolved'), kinds.join(', '));
        assert.ok(outcome.timeline.some((e) => e.kind === 'finding' && e.message === 'Health verified after the alert resolved.'));
        const last = outcome.timeline.at(-1)!;
        assert.equal(last.kind, 'resolved');
        assert.equal(last.actor, 'alertmanager');
        assert.equal(last.message, 'The alert resolved; closed without further remediation.');
        const resolvedNotice = pages.filter((p) => p.workflowId === incident.workflowId).at(-1)!;
        assert.match(resolvedNotice.text, /^\[RESOLVED\] QueueBacklog on etl: The alert resolved/);
        assert.deepEqual(resolvedNotice.contacts, ['oncall', 'management', 'status-page']);
      });
    });
  });

  describe('updates', () => {
    test('the approve Update for a step that is not pending is rejected by the validator with NoSuchPendingStep', async () => {
      await withIncident(async (incident) => {
        const before = await observe(incident);
        const failure = await refusal(() => incident.executeUpdate(approveUpdate, { args: [{ step: 'rollback', by: 'alice' }] }));
        assert.equal(failure.type, UpdateRefusal.noSuchPendingStep);
        assert.equal(failure.message, 'no pending step "rollback"');
        assert.equal(failure.nonRetryable, true);

        const rejectFailure = await refusal(() => incident.executeUpdate(rejectUpdate, { args: [{ step: 'flush-cache', by: 'alice' }] }));
        assert.equal(rejectFailure.type, UpdateRefusal.noSuchPendingStep);

        // Refused by the validator: nothing reached the history or the timeline.
        const events = await settle(incident);
        assert.equal(events.some((e) => e.eventType === E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED), false, 'no Update was accepted');
        const status = await incident.query(statusQuery);
        assert.equal(status.timeline.length, before.timeline.length);
      });
    });

    test('the approve Update with a malformed decision is rejected with InvalidPayload', async () => {
      await withIncident(async (incident) => {
        await observe(incident);
        const failure = await refusal(() => incident.executeUpdate(approveUpdate, { args: [{ step: 'rollback' } as never] }));
        assert.equal(failure.type, UpdateRefusal.invalidPayload);
        assert.match(failure.message, /by/);
      });
    });

    test('acknowledge returns the status with acknowledgedBy', async () => {
      await withIncident(async (incident) => {
        await observe(incident);
        const status = await incident.executeUpdate(acknowledgeUpdate, { args: [{ by: 'alice', note: 'looking' }] });
        assert.equal(status.acknowledgedBy, 'alice');
        assert.equal(status.phase, 'needs-human');
        const acknowledged = status.timeline.filter((e) => e.kind === 'acknowledged');
        assert.equal(acknowledged.length, 1);
        assert.equal(acknowledged[0]!.actor, 'alice');
        // The query agrees with what the Update returned.
        assert.equal((await observe(incident)).acknowledgedBy, 'alice');
      });
    });

    test('acknowledge with a malformed actor is rejected with InvalidPayload and changes nothing', async () => {
      await withIncident(async (incident) => {
        await observe(incident);
        const failure = await refusal(() => incident.executeUpdate(acknowledgeUpdate, { args: [{ by: '' }] }));
        assert.equal(failure.type, UpdateRefusal.invalidPayload);
        const status = await observe(incident);
        assert.equal(status.acknowledgedBy, undefined);
        assert.equal(status.timeline.some((e) => e.kind === 'acknowledged'), false);
      });
    });
  });
});
