import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { workflowMetadataQuery } from '@temporalio/workflow';
import type Docker from 'dockerode';
import { actOnIncident, IncidentOperationError } from '../src/incidents/operations';
import { approveSignal } from '../src/workflows/lifecycle/definitions';
import { EscalationLevel, IncidentStatus } from '../src/workflows/searchAttributes';
import { BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE } from '../src/sandbox/images';
import { dropAuditSchema, readAudit } from './support/audit';
import { suiteCleanups } from './support/cleanups';
import { testConfig } from './support/config';
import { recordHistoryIfAsked } from './support/histories';
import { alert, everyContactOn, fire, outcomeOf, resolveAlert, waitForStatus } from './support/incidents';
import { startReceiver } from './support/receiver';
import { startBackend, testDocker, type SandboxContainer } from './support/sandbox';
import { waitFor } from './support/wait';
import { startWorker } from './support/worker';

async function healthStatus(port: number): Promise<number | string> {
  return fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) }).then(
    (r) => r.status,
    (err: Error) => err.message,
  );
}

/** What the Temporal UI shows comes from these: the workflow's summary, its current details, activity summaries, search attributes. */
async function assertTemporalUiSays(client: Client, workflowId: string, container: string): Promise<void> {
  const handle = client.workflow.getHandle(workflowId);
  const description = await handle.describe();
  assert.equal(await description.staticSummary(), 'APIDown on audit-app-backend (critical) — runbook api-down');
  assert.equal(description.typedSearchAttributes.get(IncidentStatus), 'awaiting-approval');
  assert.equal(description.typedSearchAttributes.get(EscalationLevel), '0');
  const metadata = (await handle.query(workflowMetadataQuery)) as { currentDetails: string; definition: { signalDefinitions: { name: string; description?: string }[] } };
  assert.match(metadata.currentDetails, /\*\*awaiting-approval\*\*/);
  assert.match(metadata.currentDetails, /Waiting for approval: `rollback` \(carol\)/);
  const approve = metadata.definition.signalDefinitions.find((d) => d.name === 'approve');
  assert.match(approve?.description ?? '', /"step": "rollback"/);
  const history = await handle.fetchHistory();
  const summaries = await Promise.all(
    (history.events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes && e.userMetadata?.summary)
      .map((e) => defaultPayloadConverter.fromPayload<string>(e.userMetadata!.summary!)),
  );
  assert.ok(summaries.includes(`docker restart ${container}`), summaries.join(' | '));
}

describe('API Service Down runbook, against a real container', () => {
  let docker: Docker;
  const cleanups = suiteCleanups();

  before(() => {
    docker = testDocker();
  });

  async function setUp(image: string, previousImage?: string) {
    const backend = await startBackend(docker, image, previousImage);
    cleanups.push(() => backend.remove());
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const config = testConfig({
      targets: { backend: { container: backend.name, healthUrl: `http://127.0.0.1:${backend.port}/health`, healthyWithin: '4s' } },
      channels: { hook: { type: 'webhook', url: receiver.url } },
      contacts: everyContactOn('hook'),
      approvers: { rollback: ['carol'] },
      http: { temporalUiUrl: 'http://temporal-ui.example:8080/' },
    });
    const worker = await startWorker(config);
    cleanups.push(() => dropAuditSchema(config));
    cleanups.push(() => worker.stop());
    await waitFor('the sandbox backend to listen', async () => ((await healthStatus(backend.port)) === 'fetch failed' ? undefined : true));
    return { backend, receiver, config, worker };
  }

  async function currentImage(backend: SandboxContainer): Promise<string> {
    return (await docker.getContainer(backend.name).inspect()).Config.Image;
  }

  test('a stopped backend is restarted, verified healthy and the incident resolved, with audit rows and notifications', async () => {
    const { backend, receiver, config, worker } = await setUp(BACKEND_HEALTHY_IMAGE);
    await backend.container.stop({ t: 1 });
    assert.equal(await healthStatus(backend.port), 'fetch failed');

    const firing = alert('APIDown');
    const intake = await fire(worker.client, config, firing);
    assert.equal(intake.action, 'started');
    const outcome = await outcomeOf(worker.client, intake.workflowId);

    assert.equal(outcome.resolution, 'remediated');
    assert.equal(await healthStatus(backend.port), 200);
    const kinds = outcome.timeline.map((e) => e.kind);
    assert.deepEqual(kinds.slice(0, 1), ['detected']);
    const messages = outcome.timeline.map((e) => e.message);
    assert.ok(messages.some((m) => /is exited, exit code/.test(m)), 'diagnosis names the exited container');
    assert.ok(messages.includes(`Restarted container ${backend.name}.`));
    assert.ok(messages.some((m) => m.startsWith('/health answers 200 after the restart')));
    assert.deepEqual(outcome.timeline.filter((e) => e.kind === 'follow-up').map((e) => e.message), [
      'Review logs for the crash cause.',
      'Check resource limits (CPU/memory).',
      'Verify database connectivity.',
    ]);
    assert.equal(kinds.at(-1), 'resolved');
    assert.ok(!kinds.includes('approval-requested'), 'a restart that works needs no approval');

    const audit = await readAudit(config, intake.workflowId);
    assert.equal(audit.incidents.length, 1);
    assert.equal(audit.incidents[0]!.phase, 'resolved');
    assert.ok(audit.incidents[0]!.closed_at);
    assert.deepEqual(audit.events.map((e) => [e.seq, e.kind]), outcome.timeline.map((e) => [e.seq, e.kind]));

    const texts = receiver.received.map((n) => n.body.text);
    assert.ok(texts.some((t) => t.startsWith('[CRITICAL] APIDown on audit-app-backend')), `paged: ${texts.join(' | ')}`);
    assert.ok(texts.some((t) => t.startsWith('[RESOLVED] APIDown')));
    assert.ok(receiver.received.every((n) => n.body.workflowId === intake.workflowId && n.headers['idempotency-key']));
    const link = `http://temporal-ui.example:8080/namespaces/default/workflows/${intake.workflowId}`;
    assert.ok(receiver.received.every((n) => n.body.link === link && n.body.text.endsWith(link)), 'each notification links to the incident');
    await recordHistoryIfAsked(intake.workflowId, 'api-down-restart');
  });

  test('when a restart does not help, rollback waits for a configured approver, refuses others, then rolls back to the labelled image', async () => {
    const { backend, config, worker } = await setUp(BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE);
    const intake = await fire(worker.client, config, alert('APIDown'));
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'a rollback approval', (s) => s.pendingApprovals.length > 0);
    assert.equal(waiting.phase, 'awaiting-approval');
    assert.deepEqual(waiting.pendingApprovals.map((p) => [p.step, p.kind, p.approvers]), [['rollback', 'rollback', ['carol']]]);
    await assertTemporalUiSays(worker.client, intake.workflowId, backend.name);

    await assert.rejects(
      actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'rollback', by: 'mallory' }),
      (err: unknown) => err instanceof IncidentOperationError && err.reason === 'not-an-approver',
    );
    await worker.client.workflow.getHandle(intake.workflowId).signal(approveSignal, { step: 'rollback', by: 'eve' });
    await waitForStatus(worker.client, intake.workflowId, 'two refusals', (s) => s.timeline.filter((e) => e.kind === 'approval-refused').length === 2);
    assert.equal(await currentImage(backend), BACKEND_BROKEN_IMAGE, 'nothing rolled back before approval');

    const reply = await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'rollback', by: 'carol' });
    assert.deepEqual(reply.pendingApprovals, [], 'the reply already shows the step decided');
    assert.notEqual(reply.phase, 'awaiting-approval');
    const outcome = await outcomeOf(worker.client, intake.workflowId);

    assert.equal(outcome.resolution, 'remediated');
    assert.equal(await currentImage(backend), BACKEND_HEALTHY_IMAGE);
    assert.equal(await healthStatus(backend.port), 200);
    const refused = outcome.timeline.filter((e) => e.kind === 'approval-refused').map((e) => e.actor);
    assert.deepEqual(refused, ['mallory', 'eve']);
    const approved = outcome.timeline.find((e) => e.kind === 'approved');
    assert.equal(approved?.actor, 'carol');
    assert.ok(outcome.timeline.some((e) => e.kind === 'action' && e.message.startsWith(`Rolled ${backend.name} back from ${BACKEND_BROKEN_IMAGE} to ${BACKEND_HEALTHY_IMAGE}`)));
    const kept = await docker.listContainers({ all: true, filters: { name: [`^/${backend.name}-replaced-`] } });
    assert.equal(kept.length, 1, 'the broken container is kept for the review');
    await recordHistoryIfAsked(intake.workflowId, 'api-down-approved-rollback');
  });

  test('a resolved alert while the rollback waits for approval cancels it: no rollback ever runs', async () => {
    const { backend, config, worker } = await setUp(BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE);
    const firing = alert('APIDown');
    const intake = await fire(worker.client, config, firing);
    await waitForStatus(worker.client, intake.workflowId, 'a rollback approval', (s) => s.pendingApprovals.length > 0);

    assert.equal((await resolveAlert(worker.client, config, firing)).action, 'signalled');
    const outcome = await outcomeOf(worker.client, intake.workflowId);

    assert.equal(outcome.resolution, 'alert-resolved');
    assert.ok(outcome.timeline.some((e) => e.kind === 'approval-cancelled'));
    assert.ok(!outcome.timeline.some((e) => e.kind === 'action' && e.message.startsWith('Rolled')));
    assert.equal(await currentImage(backend), BACKEND_BROKEN_IMAGE);
    const kept = await docker.listContainers({ all: true, filters: { name: [`^/${backend.name}-replaced-`] } });
    assert.equal(kept.length, 0);
    await recordHistoryIfAsked(intake.workflowId, 'api-down-alert-resolved-during-approval');
    await assert.rejects(
      actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'rollback', by: 'carol' }),
      (err: unknown) => err instanceof IncidentOperationError && err.reason === 'closed',
    );
  });
});
