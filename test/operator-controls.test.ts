// The hands-off switch end to end: PUT /controls writes it to Postgres and signals the open incidents; a real worker's
// API-down incident against a real container then diagnoses and pages but changes nothing, recording what it would
// have done; the switch outlives the server that set it, and shows in GET /controls and /metrics. Also pause/resume
// over HTTP, and an approval quorum that expires, on the same real incident.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { Config } from '../src/config/schema';
import type { HandsOffSwitch } from '../src/controls/model';
import { buildHttpServer } from '../src/http/server';
import { actOnIncident, getIncident, listIncidents } from '../src/incidents/operations';
import { BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE } from '../src/sandbox/images';
import { dropAuditSchema } from './support/audit';
import { suiteCleanups } from './support/cleanups';
import { testConfig, tokenHash } from './support/config';
import { recordHistoryIfAsked } from './support/histories';
import { alert, fire, outcomeOf, waitForStatus } from './support/incidents';
import { metricValues } from './support/metrics';
import { startBackend, testDocker } from './support/sandbox';
import { eventually, waitFor } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });
const tokens = { ops: 'ops-token-' + randomBytes(8).toString('hex'), reader: 'reader-token-' + randomBytes(8).toString('hex') };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

interface PutReply {
  handsOff: HandsOffSwitch;
  signalled: string[];
  failed: string[];
}

describe('the hands-off switch, end to end (PUT /controls, Postgres, a real worker and container)', () => {
  let docker: Docker;
  const cleanups = suiteCleanups();

  before(() => {
    docker = testDocker();
  });

  async function setUp(image: string, approvals: NonNullable<Parameters<typeof testConfig>[0]>['approvals'] = {}) {
    const backend = await startBackend(docker, image, BACKEND_HEALTHY_IMAGE);
    cleanups.push(() => backend.remove());
    const config = testConfig({
      targets: { backend: { container: backend.name, healthUrl: `http://127.0.0.1:${backend.port}/health`, healthyWithin: '4s' } },
      approvers: { rollback: ['carol', 'dave'] },
      approvals,
      tokens: [
        { name: 'ops-lead', sha256: tokenHash(tokens.ops), scopes: ['operations'] },
        { name: 'reader', sha256: tokenHash(tokens.reader), scopes: ['incidents'] },
      ],
    });
    const worker = await startWorker(config);
    cleanups.push(() => dropAuditSchema(config));
    cleanups.push(() => worker.stop());
    const app = await server(config, worker);
    return { backend, config, worker, app };
  }

  async function server(config: Config, worker: RunningWorker): Promise<FastifyInstance> {
    const app = await buildHttpServer({ config, client: worker.client, logger });
    cleanups.push(() => app.close());
    return app;
  }

  const put = (app: FastifyInstance, body: unknown, token = tokens.ops) =>
    app.inject({ method: 'PUT', url: '/controls', headers: { ...bearer(token), 'content-type': 'application/json' }, payload: JSON.stringify(body) });

  async function image(name: string): Promise<string> {
    return (await docker.getContainer(name).inspect()).Config.Image;
  }

  test('with hands-off on, a new incident diagnoses but neither restarts nor rolls back, says what it would have done, and the switch outlives the server', async () => {
    const { backend, config, worker, app } = await setUp(BACKEND_HEALTHY_IMAGE);
    await backend.container.stop({ t: 1 });

    const refused = await put(app, { handsOff: true }, tokens.reader);
    assert.equal(refused.statusCode, 403, refused.body);
    const invalid = await put(app, { handsOff: true, runbook: 'no-such-runbook' });
    assert.equal(invalid.statusCode, 400, invalid.body);
    assert.match(invalid.body, /runbook/);
    const turnedOn = await put(app, { handsOff: true, reason: 'database migration' });
    assert.equal(turnedOn.statusCode, 200, turnedOn.body);
    assert.deepEqual({ ...(turnedOn.json() as PutReply).handsOff, at: undefined }, { scope: 'global', on: true, by: 'ops-lead', reason: 'database migration', at: undefined });

    const intake = await fire(worker.client, config, alert('APIDown'));
    const status = await waitForStatus(worker.client, intake.workflowId, 'remediation held back', (s) => s.phase === 'needs-human');
    const wouldHave = status.timeline.filter((e) => e.kind === 'would-have').map((e) => e.message);
    assert.deepEqual(wouldHave, [`Hands-off (global, set by ops-lead: database migration): would have run "Restart container ${backend.name}".`]);
    assert.ok(status.timeline.some((e) => e.kind === 'finding' && /is exited/.test(e.message)), 'diagnosis ran');
    assert.equal(status.handsOff?.by, 'ops-lead');
    assert.equal((await docker.getContainer(backend.name).inspect()).State.Running, false, 'the container was not restarted');

    // A new server (its own pool) reads the same switch and its audit rows: it lives in Postgres, not in a process.
    await app.close();
    const restarted = await server(config, worker);
    const controls = await restarted.inject({ method: 'GET', url: '/controls', headers: bearer(tokens.ops) });
    assert.equal(controls.statusCode, 200, controls.body);
    const read = controls.json() as { handsOff: HandsOffSwitch[]; changes: HandsOffSwitch[] };
    assert.deepEqual(read.handsOff.map((s) => [s.scope, s.on, s.by, s.reason]), [['global', true, 'ops-lead', 'database migration']]);
    const metrics = metricValues((await restarted.inject({ method: 'GET', url: '/metrics' })).body);
    assert.equal(metrics('runbooks_hands_off{scope="global"}'), 1);

    const turnedOff = await put(restarted, { handsOff: false, reason: 'migration done' });
    assert.equal(turnedOff.statusCode, 200, turnedOff.body);
    assert.ok((turnedOff.json() as PutReply).signalled.includes(intake.workflowId), turnedOff.body);
    const off = await waitForStatus(worker.client, intake.workflowId, 'hands-off off', (s) => s.handsOff === undefined);
    assert.ok(off.timeline.some((e) => e.kind === 'control' && e.message === 'Hands-off off (global, set by ops-lead: migration done).'));
    const changes = (await restarted.inject({ method: 'GET', url: '/controls', headers: bearer(tokens.ops) })).json() as { changes: HandsOffSwitch[] };
    assert.deepEqual(changes.changes.map((c) => [c.on, c.by, c.reason]), [[false, 'ops-lead', 'migration done'], [true, 'ops-lead', 'database migration']]);
    assert.equal(metricValues((await restarted.inject({ method: 'GET', url: '/metrics' })).body)('runbooks_hands_off{scope="global"}'), 0);

    await actOnIncident(worker.client, intake.workflowId, { kind: 'resolve', by: 'carol', note: 'restarted by hand' });
    assert.equal((await outcomeOf(worker.client, intake.workflowId)).resolution, 'resolved-by-human');
    await recordHistoryIfAsked(intake.workflowId, 'api-down-hands-off');
  });

  test('hands-off turned on for the runbook while a rollback waits for approval reaches the running incident: the approved rollback does not run', async () => {
    const { backend, config, worker, app } = await setUp(BACKEND_BROKEN_IMAGE);
    const intake = await fire(worker.client, config, alert('APIDown'));
    await waitForStatus(worker.client, intake.workflowId, 'a rollback approval', (s) => s.pendingApprovals.length > 0);
    await waitFor('the incident in the visibility store', async () =>
      (await listIncidents(worker.client, config.temporal.taskQueue, 'open')).find((i) => i.workflowId === intake.workflowId),
    );

    // Pause and resume over HTTP, as the token's identity; a second resume is refused.
    const post = (action: string, body: unknown) =>
      app.inject({ method: 'POST', url: `/incidents/${intake.workflowId}/${action}`, headers: { ...bearer(tokens.reader), 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    const paused = await post('pause', { note: 'checking the vendor' });
    assert.equal(paused.statusCode, 200, paused.body);
    assert.equal((paused.json() as { paused?: { by: string } }).paused?.by, 'reader');
    assert.equal((await post('resume', {})).statusCode, 200);
    const again = await post('resume', {});
    assert.equal(again.statusCode, 409, again.body);
    assert.match(again.body, /not paused/);
    assert.equal((await post('abort', {})).statusCode, 400, 'an abort needs a reason');

    const turnedOn = await put(app, { handsOff: true, runbook: 'api-down', reason: 'vendor is deploying' });
    assert.equal(turnedOn.statusCode, 200, turnedOn.body);
    assert.deepEqual((turnedOn.json() as PutReply).signalled, [intake.workflowId]);
    const signalled = await eventually('the switch in the incident', async () => (await getIncident(worker.client, intake.workflowId)).handsOff);
    assert.equal(signalled.scope, 'api-down');

    await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'rollback', by: 'carol' });
    const status = await waitForStatus(worker.client, intake.workflowId, 'the rollback held back', (s) => s.phase === 'needs-human');
    assert.deepEqual(
      status.timeline.filter((e) => e.kind === 'would-have').map((e) => e.message),
      [`Hands-off (runbook api-down, set by ops-lead: vendor is deploying): would have run "Roll back ${backend.name} to ${BACKEND_HEALTHY_IMAGE}".`],
    );
    assert.equal(await image(backend.name), BACKEND_BROKEN_IMAGE, 'nothing rolled back');
    await actOnIncident(worker.client, intake.workflowId, { kind: 'resolve', by: 'carol' });
    await outcomeOf(worker.client, intake.workflowId);
    await recordHistoryIfAsked(intake.workflowId, 'api-down-hands-off-during-approval');
  });

  test('a rollback approval with a quorum of two that only one approver answers expires as rejected, and the incident is escalated to humans', async () => {
    const { backend, config, worker } = await setUp(BACKEND_BROKEN_IMAGE, { rollback: { quorum: 2, expiresAfter: '3s', onExpiry: 'reject' } });
    const intake = await fire(worker.client, config, alert('APIDown'));
    await waitForStatus(worker.client, intake.workflowId, 'a rollback approval', (s) => s.pendingApprovals.length > 0);
    const first = await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'rollback', by: 'carol' });
    assert.deepEqual(first.pendingApprovals[0]?.approvedBy, ['carol']);
    const status = await waitForStatus(worker.client, intake.workflowId, 'the approval expired', (s) => s.phase === 'needs-human');
    assert.ok(status.timeline.some((e) => e.kind === 'rejected' && e.message === 'Nobody answered "rollback" in time: counted as rejected.'), JSON.stringify(status.timeline, null, 1));
    assert.ok(status.timeline.some((e) => e.kind === 'escalated' && e.message.startsWith('Approval "rollback" unanswered in time (counted as rejected)')));
    assert.equal(await image(backend.name), BACKEND_BROKEN_IMAGE, 'nothing rolled back');
    await actOnIncident(worker.client, intake.workflowId, { kind: 'resolve', by: 'carol' });
    await outcomeOf(worker.client, intake.workflowId);
    await recordHistoryIfAsked(intake.workflowId, 'api-down-approval-quorum-expired');
  });
});
