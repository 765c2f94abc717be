// Signals, Updates and the alert-resolved path of a generic incident on the time-skipping test server.
// The lifecycle activities `notify` and `recordTimeline` are fakes (unit-level boundaries).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, SearchAttributeType } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import type { Notification, NotifyResult } from '../src/activities/notify';
import { parseConfig } from '../src/config/load';
import { routeAlert } from '../src/intake/route';
import type { genericIncident } from '../src/workflows/genericIncident';
import {
  acknowledgeSignal,
  acknowledgeUpdate,
  alertFiringSignal,
  alertResolvedSignal,
  approveSignal,
  approveUpdate,
  rejectSignal,
  rejectUpdate,
  resolveSignal,
  statusQuery,
  UpdateRefusal,
  type IncidentOutcome,
  type IncidentStatusView,
} from '../src/workflows/lifecycle/definitions';
import { incidentSearchAttributes } from '../src/workflows/searchAttributes';

type Incident = WorkflowHandle<typeof genericIncident>;
interface Page {
  workflowId: string;
  contacts: string[];
  text: string;
}

const taskQueue = `incident-signals-${randomBytes(4).toString('hex')}`;
const pages: Page[] = [];
let env: TestWorkflowEnvironment | undefined;
let worker: Worker | undefined;
let workerRun: Promise<void> | undefined;

/** Unit-level fakes of the lifecycle's boundaries: notify records the page, the audit trail goes nowhere. */
const activities = {
  async notify(notification: Notification): Promise<NotifyResult> {
    pages.push({ workflowId: notification.workflowId, contacts: notification.contacts, text: notification.text });
    return { delivered: [], unknownContacts: [] };
  },
  async recordTimeline(): Promise<void> {},
};

function testServerPath(): string {
  const path = process.env.TEMPORAL_TEST_SERVER_PATH;
  if (!path) {
    throw new Error(
      'TEMPORAL_TEST_SERVER_PATH is not set: run the tests with `npm test` (test/harness/run.ts finds the time-skipping test server), ' +
        'or set TEMPORAL_TEST_SERVER_PATH=.tools/bin/temporal-test-server',
    );
  }
  return path;
}

function timeSkipping(): TestWorkflowEnvironment {
  if (!env) throw new Error('the time-skipping test environment did not start (see the error from `before`)');
  return env;
}

/** The test server knows no custom search attributes; the incident upserts these from its first workflow task. */
async function registerSearchAttributes(testEnv: TestWorkflowEnvironment): Promise<void> {
  const searchAttributes: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
  for (const key of incidentSearchAttributes) {
    assert.equal(key.type, SearchAttributeType.KEYWORD, `${key.name}: only keyword attributes are registered here`);
    searchAttributes[key.name] = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  }
  await testEnv.connection.operatorService.addSearchAttributes({ namespace: testEnv.namespace ?? 'default', searchAttributes });
}

async function startIncident(labels: Record<string, string> = {}): Promise<Incident> {
  const testEnv = timeSkipping();
  const routed = routeAlert(
    {
      status: 'firing',
      labels: { alertname: 'QueueBacklog', service: 'etl', severity: 'critical', ...labels },
      annotations: {},
      startsAt: new Date(await testEnv.currentTimeMs()).toISOString(),
      generatorURL: '',
      fingerprint: randomBytes(8).toString('hex'),
    },
    parseConfig({ approvers: { rollback: ['alice'] } }),
  );
  assert.equal(routed.workflowType, 'genericIncident');
  return testEnv.client.workflow.start<typeof genericIncident>(routed.workflowType, { taskQueue, workflowId: routed.workflowId, args: [routed.input] });
}

const E = temporal.api.enums.v1.EventType;

/** Waits until no workflow task or activity is in flight; fails at once if a workflow task failed. */
async function settle(handle: Incident): Promise<temporal.api.history.v1.IHistoryEvent[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const events = (await handle.fetchHistory()).events ?? [];
    let open = 0;
    for (const event of events) {
      switch (event.eventType) {
        case E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
        case E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
          open += 1;
          break;
        case E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        case E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
        case E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        case E.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        case E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
        case E.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
          open -= 1;
          break;
        case E.EVENT_TYPE_WORKFLOW_TASK_FAILED:
          throw new Error(`a workflow task of ${handle.workflowId} failed: ${event.workflowTaskFailedEventAttributes?.failure?.message}`);
      }
    }
    if (open === 0) return events;
    if (Date.now() > deadline) throw new Error(`${handle.workflowId} still has ${open} task(s) in flight after 15 s`);
    await delay(20);
  }
}

async function observe(handle: Incident): Promise<IncidentStatusView> {
  await settle(handle);
  return handle.query(statusQuery);
}

/**
 * The outcome of an incident that should have closed by now. Not the time-skipping handle's `result()`: that
 * skips time for as long as the workflow stays open (hanging if the incident failed to close) and moves the
 * server's clock far ahead even when it has closed.
 */
async function outcomeOf(handle: Incident): Promise<IncidentOutcome> {
  const status = await observe(handle);
  const { status: execution } = await handle.describe();
  assert.equal(execution.name, 'COMPLETED', `the incident should have closed; phase ${status.phase}, timeline: ${JSON.stringify(status.timeline, null, 1)}`);
  // A plain client's result(): the time-skipping client's would let the server skip time while it waits.
  const testEnv = timeSkipping();
  const client = new Client({ connection: testEnv.connection, namespace: testEnv.namespace });
  return client.workflow.getHandle<typeof genericIncident>(handle.workflowId).result();
}

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

async function withIncident(body: (handle: Incident) => Promise<void>, labels: Record<string, string> = {}): Promise<void> {
  const handle = await startIncident(labels);
  try {
    await body(handle);
  } finally {
    const { status } = await handle.describe();
    if (status.name === 'RUNNING') await handle.terminate('test over');
  }
}

describe('incident signals and updates (time-skipping test server)', { timeout: 120_000 }, () => {
  before(async () => {
    const serverPath = testServerPath();
    const level = (process.env.TEST_LOG_LEVEL?.toUpperCase() ?? 'ERROR') as LogLevel;
    Runtime.install({ logger: new DefaultLogger(level), telemetryOptions: { logging: { filter: { core: level, other: level }, forward: {} } } });
    env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: serverPath } } });
    await registerSearchAttributes(env);
    const bundlePath = process.env.RUNBOOKS_WORKFLOW_BUNDLE;
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: require.resolve('../src/workflows') }),
      activities,
    });
    workerRun = worker.run();
  });

  after(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await workerRun;
    await env?.teardown();
  });

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
    test('approveStep for a step that is not pending is rejected by the validator with NoSuchPendingStep', async () => {
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

    test('approveStep with a malformed decision is rejected with InvalidPayload', async () => {
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
