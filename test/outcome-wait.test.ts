/**
 * The tests' wait for an incident's outcome (outcomeOf in test/support/incidents.ts) has a time limit: an incident
 * that does not close fails the wait promptly, with the workflow named and where it stands, instead of hanging
 * the test file until the harness's timeout.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../src/config/schema';
import { actOnIncident } from '../src/incidents/operations';
import { testConfig } from './support/config';
import { dropAuditSchema } from './support/audit';
import { alert, everyContactOn, fire, outcomeOf, terminateAll, waitForStatus } from './support/incidents';
import { startWorker, type RunningWorker } from './support/worker';

/** The wait's own limit, plus at most two 5 s looks at the workflow, plus slack for a loaded machine. */
const SHORT_WAIT_MS = 2_000;
const BOUND_MS = SHORT_WAIT_MS + 2 * 5_000 + 3_000;

async function failureOf(promise: Promise<unknown>): Promise<{ message: string; ms: number }> {
  const startedAt = Date.now();
  try {
    await promise;
  } catch (err) {
    return { message: (err as Error).message, ms: Date.now() - startedAt };
  }
  assert.fail('the wait should have failed');
}

describe('waiting for an incident that does not close', () => {
  let config: Config;
  let worker: RunningWorker | undefined;
  let connection: Connection;
  let client: Client;
  const started: string[] = [];

  before(async () => {
    config = testConfig({ contacts: everyContactOn('log') });
    worker = await startWorker(config);
    connection = await Connection.connect({ address: config.temporal.address });
    client = new Client({ connection, namespace: config.temporal.namespace });
  });

  after(async () => {
    await worker?.stop();
    if (client) await terminateAll(client, started);
    await connection?.close();
    if (config) await dropAuditSchema(config);
  });

  /** Fires an alert no runbook takes: the generic incident waits for a human, so it never closes by itself. */
  async function openIncident(alertname: string): Promise<string> {
    const intake = await fire(client, config, alert(alertname));
    started.push(intake.workflowId);
    await waitForStatus(client, intake.workflowId, 'the incident to be detected', (s) => s.timeline.some((e) => e.kind === 'detected'));
    return intake.workflowId;
  }

  test('fails after the time limit, naming the workflow and showing its status and timeline', async () => {
    const workflowId = await openIncident('OutcomeWaitNeverCloses');

    const { message, ms } = await failureOf(outcomeOf(client, workflowId, { timeoutMs: SHORT_WAIT_MS }));

    assert.ok(ms >= SHORT_WAIT_MS - 50 && ms < BOUND_MS, `failed after ${ms} ms`);
    assert.match(message, new RegExp(`^${workflowId} did not complete within ${SHORT_WAIT_MS} ms\\.`));
    assert.match(message, /Execution: RUNNING \(run [0-9a-f-]+, \w+ on task queue test-[0-9a-f]+/);
    assert.match(message, /Phase [a-z-]+, step "[^"]*", escalation level 0, pending approvals: none\./);
    assert.match(message, /Timeline:\n {2}#\d+ \S+ detected by /);
  });

  test('an incident that closes within the limit gives its outcome', async () => {
    const workflowId = await openIncident('OutcomeWaitResolved');
    await actOnIncident(client, workflowId, { kind: 'resolve', by: 'alice' });
    const outcome = await outcomeOf(client, workflowId, { timeoutMs: 20_000 });
    assert.equal(outcome.resolution, 'resolved-by-human');
    assert.equal(outcome.resolvedBy, 'alice');
  });

  test('still fails promptly when nothing answers the status query, and says so', async () => {
    const workflowId = await openIncident('OutcomeWaitNoWorker');
    await worker!.stop();
    worker = undefined;

    const { message, ms } = await failureOf(outcomeOf(client, workflowId, { timeoutMs: SHORT_WAIT_MS }));

    assert.ok(ms < BOUND_MS, `failed after ${ms} ms`);
    assert.match(message, new RegExp(`^${workflowId} did not complete within ${SHORT_WAIT_MS} ms\\.`));
    assert.match(message, /Execution: RUNNING/);
    assert.match(message, /Status query: no answer \(.+\)\./);
  });
});
