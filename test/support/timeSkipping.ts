// Incidents of any runbook on the time-skipping test server, for fast branch tests of the runbooks and tests of
// the lifecycle (escalation ladder, signals, Updates, undo). Every activity is a typed stub: `notify`, `recordTimeline`
// and `handsOffSwitches` are fakes (`pages` is what the incidents sent, nothing is written anywhere, the hands-off
// switch is off), and a runbook's own activities are whatever the test passes for that incident (an activity without a stub fails for good).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, type Connection, type WorkflowHandle } from '@temporalio/client';
import { SearchAttributeType, type Workflow } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { DefaultLogger, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import type Docker from 'dockerode';
import type { Pool } from 'pg';
import pino from 'pino';
import { createActivities } from '../../src/activities';
import type { Notification, NotifyResult } from '../../src/activities/notify';
import { parseConfig } from '../../src/config/load';
import type { ConfigInput } from '../../src/config/schema';
import { routeAlert } from '../../src/intake/route';
import type { generic } from '../../src/workflows/generic';
import { statusQuery } from '../../src/workflows/lifecycle/definitions';
import { type IncidentOutcome, type IncidentStatusView } from '../../src/incidents/model';
import { incidentSearchAttributes } from '../../src/workflows/searchAttributes';

export type Incident = WorkflowHandle<typeof generic>;

/** Every activity the worker registers, by name, with its real signature. */
export type Activities = ReturnType<typeof createActivities>;
/** Stubs for one incident's activities; each is called with the activity's one argument. */
export type ActivityStubs = Partial<{ [K in keyof Activities]: (arg: Parameters<Activities[K]>[0]) => ReturnType<Activities[K]> }>;

/** The activity names, read off a worker's activity set (creating them connects to nothing). */
const activityNames = Object.keys(
  createActivities({ config: parseConfig({}), logger: pino({ level: 'silent' }), pool: {} as Pool, docker: {} as Docker }),
) as (keyof Activities)[];

/** One page the fake `notify` received. */
export interface Page {
  workflowId: string;
  contacts: string[];
  text: string;
  /** What paging services do with it (trigger, acknowledge, resolve); absent: information only. */
  event?: string;
}

export interface TimeSkippingIncidents {
  /** The running test environment; throws if `start` did not succeed. */
  readonly env: TestWorkflowEnvironment;
  /** Every page sent so far, by every incident of this suite. */
  readonly pages: Page[];
  /** Starts the test server and a worker with the fake activities: call it in `before`. */
  start(): Promise<void>;
  /** Stops the worker and the test server: call it in `after`. */
  stop(): Promise<void>;
  /**
   * Starts an incident for an alert with these labels (over the suite's defaults), routed with this config, its
   * activities answered by `stubs`.
   */
  startIncident(labels?: Record<string, string>, config?: ConfigInput, stubs?: ActivityStubs): Promise<Incident>;
  /** Starts any workflow of the bundle that is not an incident (a procedure such as backfill), its activities answered by `stubs`. */
  startWorkflow<T extends Workflow>(workflowType: string, input: unknown, stubs?: ActivityStubs): Promise<WorkflowHandle<T>>;
  /** Runs `body` on a new incident, and terminates the incident afterwards so it never pages while later tests move the clock. */
  withIncident(labels: Record<string, string>, config: ConfigInput, body: (handle: Incident) => Promise<void>, stubs?: ActivityStubs): Promise<void>;
  /** How often each activity was called for this incident, by name. */
  calls(handle: WorkflowHandle): Record<string, number>;
  /**
   * Waits until the workflow has no workflow task and no activity in flight, so a query shows everything the
   * server's clock has caused so far; fails if a workflow task failed. Returns the history.
   */
  settle(handle: WorkflowHandle): Promise<temporal.api.history.v1.IHistoryEvent[]>;
  /** The status query, once the incident has settled. */
  observe(handle: Incident): Promise<IncidentStatusView>;
  /** The outcome of an incident that should have closed by now. */
  outcomeOf(handle: Incident): Promise<IncidentOutcome>;
}

export interface TimeSkippingOptions {
  /** The task queue is this prefix plus a random suffix. */
  taskQueuePrefix: string;
  /** The labels of every alert (an `alertname` among them); `startIncident` adds its own over these. */
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  /** The runbook every alert of the suite must be routed to (a check on the labels). */
  runbook?: string;
  /** Workflows to bundle instead of the harness's bundle (a test's own workflows, e.g. test/workflows). */
  workflowsPath?: string;
  /** Start this workflow type instead of the routed runbook's (a test-only workflow from `workflowsPath`). */
  workflowType?: string;
}

/**
 * The incidents of one test file on the time-skipping test server. Nothing starts until `start()`; the functions
 * can be destructured (`const { observe } = incidents`).
 */
export function timeSkippingIncidents(options: TimeSkippingOptions): TimeSkippingIncidents {
  const taskQueue = `${options.taskQueuePrefix}-${randomBytes(4).toString('hex')}`;
  const pages: Page[] = [];
  let env: TestWorkflowEnvironment | undefined;
  let worker: Worker | undefined;
  let workerRun: Promise<void> | undefined;

  const stubsByIncident = new Map<string, ActivityStubs>();
  const callsByIncident = new Map<string, Record<string, number>>();

  /** Unit-level fakes of the lifecycle's boundaries: notify records the page, the audit trail goes nowhere. */
  const lifecycleFakes: ActivityStubs = {
    async notify(notification: Notification): Promise<NotifyResult> {
      pages.push({ workflowId: notification.workflowId, contacts: notification.contacts, text: notification.text, ...(notification.event ? { event: notification.event } : {}) });
      return { delivered: [], unknownContacts: [] };
    },
    async recordTimeline(): Promise<void> {},
    // The hands-off switch is off unless a test stubs it for its incident.
    async handsOffSwitches() {
      return [];
    },
  };

  /** Each activity name dispatches to the stub of the incident that called it. */
  const activities = Object.fromEntries(
    activityNames.map((name) => [
      name,
      async (arg: unknown) => {
        const workflowId = Context.current().info.workflowExecution?.workflowId ?? '';
        const calls = callsByIncident.get(workflowId) ?? {};
        calls[name] = (calls[name] ?? 0) + 1;
        callsByIncident.set(workflowId, calls);
        const stub = (stubsByIncident.get(workflowId)?.[name] ?? lifecycleFakes[name]) as ((arg: unknown) => Promise<unknown>) | undefined;
        if (!stub) throw ApplicationFailure.nonRetryable(`the test gave no stub for ${name}`, 'NoStub');
        return stub(arg);
      },
    ]),
  );

  function timeSkipping(): TestWorkflowEnvironment {
    if (!env) throw new Error('the time-skipping test environment did not start (see the error from `before`)');
    return env;
  }

  async function start(): Promise<void> {
    const serverPath = testServerPath();
    const level = (process.env.TEST_LOG_LEVEL?.toUpperCase() ?? 'ERROR') as LogLevel;
    Runtime.install({ logger: new DefaultLogger(level), telemetryOptions: { logging: { filter: { core: level, other: level }, forward: {} } } });
    env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: serverPath } } });
    await registerSearchAttributes(env.connection, env.namespace ?? 'default');
    const bundlePath = process.env.RUNBOOKS_WORKFLOW_BUNDLE;
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      ...(options.workflowsPath
        ? { workflowsPath: options.workflowsPath }
        : bundlePath
          ? { workflowBundle: { codePath: bundlePath } }
          : { workflowsPath: require.resolve('../../src/workflows') }),
      activities,
    });
    workerRun = worker.run();
  }

  async function stop(): Promise<void> {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await workerRun;
    await env?.teardown();
  }

  async function startIncident(labels: Record<string, string> = {}, config: ConfigInput = {}, stubs: ActivityStubs = {}): Promise<Incident> {
    const testEnv = timeSkipping();
    const routed = routeAlert(
      {
        status: 'firing',
        labels: { ...options.labels, ...labels },
        annotations: options.annotations ?? {},
        startsAt: new Date(await testEnv.currentTimeMs()).toISOString(),
        generatorURL: '',
        fingerprint: randomBytes(8).toString('hex'),
      },
      parseConfig(config),
    );
    if (options.runbook) assert.equal(routed.input.runbook, options.runbook, `the alert should take the ${options.runbook} runbook`);
    stubsByIncident.set(routed.workflowId, stubs);
    return testEnv.client.workflow.start<typeof generic>(options.workflowType ?? routed.workflowType, { taskQueue, workflowId: routed.workflowId, args: [routed.input] });
  }

  async function startWorkflow<T extends Workflow>(workflowType: string, input: unknown, stubs: ActivityStubs = {}): Promise<WorkflowHandle<T>> {
    const workflowId = `${workflowType}-${randomBytes(6).toString('hex')}`;
    stubsByIncident.set(workflowId, stubs);
    return timeSkipping().client.workflow.start(workflowType, { taskQueue, workflowId, args: [input] }) as Promise<WorkflowHandle<T>>;
  }

  async function withIncident(
    labels: Record<string, string>,
    config: ConfigInput,
    body: (handle: Incident) => Promise<void>,
    stubs: ActivityStubs = {},
  ): Promise<void> {
    const handle = await startIncident(labels, config, stubs);
    try {
      await body(handle);
    } finally {
      const { status } = await handle.describe();
      if (status.name === 'RUNNING') await handle.terminate('test over');
    }
  }

  async function observe(handle: Incident): Promise<IncidentStatusView> {
    await settle(handle);
    return handle.query(statusQuery);
  }

  /**
   * Not the time-skipping handle's `result()`: that skips time for as long as the workflow stays open (hanging if
   * the incident failed to close) and moves the server's clock far ahead even when it has closed.
   */
  async function outcomeOf(handle: Incident): Promise<IncidentOutcome> {
    const status = await observe(handle);
    const { status: execution } = await handle.describe();
    assert.equal(execution.name, 'COMPLETED', `the incident should have closed; phase ${status.phase}, timeline: ${JSON.stringify(status.timeline, null, 1)}`);
    // A plain client's result(): the time-skipping client's would let the server skip time while it waits.
    const testEnv = timeSkipping();
    const client = new Client({ connection: testEnv.connection, namespace: testEnv.namespace });
    return client.workflow.getHandle<typeof generic>(handle.workflowId).result();
  }

  return {
    get env() {
      return timeSkipping();
    },
    pages,
    start,
    stop,
    startIncident,
    startWorkflow,
    withIncident,
    settle,
    observe,
    outcomeOf,
    calls: (handle) => ({ ...callsByIncident.get(handle.workflowId) }),
  };
}

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

/**
 * The test server knows no custom search attributes: without this, the incident's first upsertSearchAttributes
 * fails every workflow task with "BadSearchAttributes: search attribute RunbookName is not defined".
 * Not the product's ensureSearchAttributes (src/temporal/searchAttributes.ts): the time-skipping test server
 * does not implement OperatorService/ListSearchAttributes (UNIMPLEMENTED), so this adds them all unasked.
 */
async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const searchAttributes: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
  for (const key of incidentSearchAttributes) {
    assert.equal(key.type, SearchAttributeType.KEYWORD, `${key.name}: only keyword attributes are registered here`);
    searchAttributes[key.name] = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  }
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
}

const E = temporal.api.enums.v1.EventType;

/** The last events of a history, named, for a failure message: what is still in flight. */
function lastEvents(events: temporal.api.history.v1.IHistoryEvent[]): string {
  return events
    .slice(-8)
    .map((e) => `${e.eventId} ${String(E[e.eventType ?? 0]).replace('EVENT_TYPE_', '')}${e.activityTaskScheduledEventAttributes ? ` ${e.activityTaskScheduledEventAttributes.activityType?.name}` : ''}`)
    .join(', ');
}

async function settle(handle: WorkflowHandle): Promise<temporal.api.history.v1.IHistoryEvent[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const events = (await handle.fetchHistory()).events ?? [];
    let open = 0;
    for (const event of events) {
      switch (event.eventType) {
        // A child being started or a signal to another workflow being sent is in flight too: its answer wakes the workflow.
        case E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
        case E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        case E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        case E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
          open += 1;
          break;
        case E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        case E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
        case E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        case E.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        case E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
        case E.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
        case E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
        case E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED:
        case E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED:
        case E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED:
          open -= 1;
          break;
        case E.EVENT_TYPE_WORKFLOW_TASK_FAILED:
          throw new Error(`a workflow task of ${handle.workflowId} failed: ${event.workflowTaskFailedEventAttributes?.failure?.message ?? 'unknown'}`);
      }
    }
    if (open === 0) return events;
    if (Date.now() > deadline) throw new Error(`${handle.workflowId} still has ${open} task(s) in flight after 15 s; its last events: ${lastEvents(events)}`);
    await delay(20);
  }
}
