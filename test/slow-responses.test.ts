// The high-response-times runbook against the sandbox audit-app: a route made slow for real raises p95 in the
// backend's /metrics while traffic flows; the runbook measures it, asks before restarting the backend, and verifies
// recovery from the same histogram.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { dockerClient } from '../src/activities';
import { actOnIncident } from '../src/incidents/operations';
import { auditAppTargets, breakAuditApp, removeAuditApp, startAuditApp, startTraffic, type AuditApp, type Traffic } from '../src/sandbox/auditApp';
import { TEST_LABEL } from './harness/dockerd';
import { freePorts } from './harness/util';
import { dropAuditSchema } from './support/audit';
import { testConfig } from './support/config';
import { requireEnv } from './support/env';
import { recordHistoryIfAsked } from './support/histories';
import { alert, fire, outcomeOf, waitForStatus } from './support/incidents';
import { startWorker, type RunningWorker } from './support/worker';

describe('High Response Times runbook, against the sandbox audit-app', { timeout: 280_000 }, () => {
  let docker: Docker;
  let app: AuditApp;
  let worker: RunningWorker;
  let config: ReturnType<typeof testConfig>;
  let traffic: Traffic | undefined;
  const prefix = `slow-${randomBytes(3).toString('hex')}-`;

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    const [backend, admin, postgres, redis] = await freePorts(4);
    app = await startAuditApp(docker, { prefix, ports: { backend: backend!, admin: admin!, postgres: postgres!, redis: redis! }, labels: { [TEST_LABEL]: 'true' } });
    config = testConfig({
      ...auditAppTargets(app),
      approvers: { 'scale-backend': ['erin'], 'create-index': ['erin'] },
      // A 1 s threshold over 3 s windows instead of 2 s over 15 s, so the test takes seconds.
      policies: { 'slow-responses': { p95ThresholdMs: 1_000, sampleWindowSeconds: 3, recoverWithinSeconds: 30, minSeqScans: 1_000_000 } },
    });
    worker = await startWorker(config);
  });

  after(async () => {
    await traffic?.stop();
    await worker?.stop();
    await dropAuditSchema(config);
    await removeAuditApp(docker, prefix);
  });

  test('a slow route raises p95; the runbook reports it, restarts the backend once approved, and verifies p95 back under the threshold', async () => {
    await breakAuditApp(docker, app, 'slow-route', { route: '/api/v1/documents', ms: 1_500 });
    traffic = startTraffic(app);

    const intake = await fire(worker.client, config, alert('HighResponseTime', { service: 'audit-app', severity: 'high' }));
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'the scale-backend approval', (s) => s.pendingApprovals.length > 0, 90_000);
    assert.equal(waiting.pendingApprovals[0]!.kind, 'scale-backend');
    const measured = waiting.timeline.find((e) => e.message.startsWith('p95 over 3 s:'));
    assert.ok(measured, JSON.stringify(waiting.timeline.map((e) => e.message), null, 1));
    const p95 = Number(/\/api\/v1\/documents (\d+) ms/.exec(measured.message)?.[1]);
    assert.ok(p95 >= 1_500, `p95 of the slow route: ${measured.message}`);

    await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'scale-backend', by: 'erin' });
    const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 120_000 });
    assert.equal(outcome.resolution, 'remediated', JSON.stringify(outcome.timeline.map((e) => e.message), null, 1));
    assert.ok(outcome.timeline.some((e) => e.message === `Restarted container ${app.containers.backend}.`));
    const verified = outcome.timeline.find((e) => /^p95 is \d+ ms, under 1000 ms/.test(e.message));
    assert.ok(verified, 'recovery verified from /metrics');
    assert.ok((await traffic.stop()) > 10, 'traffic flowed');
    traffic = undefined;
    await recordHistoryIfAsked(intake.workflowId, 'slow-responses-restart');
  });
});
