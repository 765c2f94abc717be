/**
 * The deployment endpoints against a real Temporal, a real worker and a real (busybox) backend container: starting
 * needs the operations scope and records the token's name; a second deployment while one waits for approve-deploy is
 * 409 naming it; the pending step is shown, a non-approver is 403, the approver's rejection ends it as refused; and
 * GET /deployments reads that from the history in Postgres.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { Config } from '../src/config/schema';
import type { DeploymentOutcome, DeploymentRecord, DeploymentStatus } from '../src/deployments/model';
import { buildHttpServer } from '../src/http/server';
import { BACKEND_HEALTHY_IMAGE } from '../src/sandbox/images';
import { dropAuditSchema } from './support/audit';
import { testConfig, tokenHash } from './support/config';
import { terminateAll } from './support/incidents';
import { startBackend, testDocker, type SandboxContainer } from './support/sandbox';
import { eventually } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });
const tokens = { alertmanager: `am-${randomBytes(8).toString('hex')}`, erin: `erin-${randomBytes(8).toString('hex')}`, alice: `alice-${randomBytes(8).toString('hex')}` };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('deployment endpoints against a real Temporal and worker', () => {
  let config: Config;
  let worker: RunningWorker;
  let app: FastifyInstance;
  let backend: SandboxContainer;
  let workflowId: string;

  const post = (url: string, body: unknown, token = tokens.erin) =>
    app.inject({ method: 'POST', url, headers: { ...bearer(token), 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  const current = async () => (await app.inject({ method: 'GET', url: '/deployments/current', headers: bearer(tokens.erin) })).json() as DeploymentStatus;

  before(async () => {
    backend = await startBackend(testDocker(), BACKEND_HEALTHY_IMAGE);
    workflowId = `deploy-${backend.name}`;
    config = testConfig({
      targets: { backend: { container: backend.name, healthUrl: `http://127.0.0.1:${backend.port}/health` } },
      approvers: { 'approve-deploy': ['alice'] },
      deploy: { requireApproval: true },
      tokens: [
        { name: 'alertmanager', sha256: tokenHash(tokens.alertmanager), scopes: ['alerts'] },
        { name: 'erin', sha256: tokenHash(tokens.erin), scopes: ['operations'] },
        { name: 'alice', sha256: tokenHash(tokens.alice), scopes: ['operations'] },
      ],
    });
    worker = await startWorker(config, { logLevel: 'error' });
    app = await buildHttpServer({ config, client: worker.client, logger });
  });

  after(async () => {
    await app?.close();
    if (worker) {
      await terminateAll(worker.client, [workflowId]);
      await worker.stop();
    }
    await backend?.remove();
    if (config) await dropAuditSchema(config);
  });

  test('starting needs the operations scope, and a version that is no image tag is refused naming the field', async () => {
    assert.equal((await app.inject({ method: 'POST', url: '/deployments', payload: { version: '1' } })).statusCode, 401);
    assert.equal((await post('/deployments', { version: '1' }, tokens.alertmanager)).statusCode, 403);
    const bad = await post('/deployments', { version: '../etc; rm -rf /' });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /version: an image tag/);
  });

  test('a deployment waits for approve-deploy; a second one is 409 naming it; a non-approver is 403; a rejection ends it as refused, in the history', async () => {
    // The busybox backend's repository has a `healthy` tag: the image of version "healthy" exists.
    const started = await post('/deployments', { version: 'healthy', reason: 'the test' });
    assert.equal(started.statusCode, 201, started.body);
    assert.equal((started.json() as { workflowId: string }).workflowId, workflowId);
    const waiting = await eventually('the approve-deploy step', async () => {
      const status = await current();
      return status.pendingApproval ? status : undefined;
    });
    assert.equal(waiting.pendingApproval?.kind, 'approve-deploy');
    assert.equal(waiting.record.by, 'erin');

    const again = await post('/deployments', { version: 'broken' }, tokens.alice);
    assert.equal(again.statusCode, 409, again.body);
    assert.match(again.json<{ error: string }>().error, new RegExp(`a deployment is already running on ${backend.name}: ${workflowId} \\(deploy of healthy by erin, awaiting-approval\\)`));

    const notApprover = await post('/deployments/current/approve', { step: 'approve-deploy' });
    assert.equal(notApprover.statusCode, 403, notApprover.body);
    const rejected = await post('/deployments/current/reject', { step: 'approve-deploy', reason: 'change freeze' }, tokens.alice);
    assert.equal(rejected.statusCode, 200, rejected.body);
    const outcome = (await worker.client.workflow.getHandle(workflowId).result()) as DeploymentOutcome;
    assert.equal(outcome.record.result, 'refused');

    const history = await app.inject({ method: 'GET', url: '/deployments?last=5', headers: bearer(tokens.erin) });
    assert.equal(history.statusCode, 200, history.body);
    const [last] = (history.json() as { deployments: DeploymentRecord[] }).deployments;
    assert.deepEqual([last?.by, last?.version, last?.fromImage, last?.toImage, last?.result], ['erin', 'healthy', BACKEND_HEALTHY_IMAGE, BACKEND_HEALTHY_IMAGE, 'refused']);
    assert.equal((await post('/deployments/current/approve', { step: 'approve-deploy' }, tokens.alice)).statusCode, 404, 'nothing runs any more');
  });
});
