import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { actOnIncident } from '../src/incidents/operations';
import { BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE } from '../src/sandbox/images';
import { startDevServer, type DevServer } from './harness/temporal';
import { freePort, isAlive, LOG_DIR } from './harness/util';
import { dropAuditSchema, readAudit } from './support/audit';
import { suiteCleanups } from './support/cleanups';
import { testConfig } from './support/config';
import { alert, everyContactOn, fire, incidentStatus, outcomeOf, waitForStatus } from './support/incidents';
import { startBackend, testDocker } from './support/sandbox';
import { waitFor } from './support/wait';
import { startWorker } from './support/worker';

describe('the Temporal server killed in the middle of an incident', () => {
  const cleanups = suiteCleanups();

  test('comes back on the same state file and the waiting rollback goes on to completion', { timeout: 180_000 }, async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'runbooks-server-crash-'));
    cleanups.push(async () => rmSync(stateDir, { recursive: true, force: true }));
    const serverOptions = {
      dbFile: path.join(stateDir, 'temporal.db'),
      port: await freePort(),
      logFile: path.join(LOG_DIR, 'temporal-server-crash.log'),
    };
    let server: DevServer = await startDevServer(serverOptions);
    cleanups.push(() => server.stop());

    const docker = testDocker();
    const backend = await startBackend(docker, BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE);
    cleanups.push(() => backend.remove());
    const config = testConfig({
      temporal: { address: server.address },
      targets: { backend: { container: backend.name, healthUrl: `http://127.0.0.1:${backend.port}/health`, healthyWithin: '3s' } },
      contacts: everyContactOn('log'),
      approvers: { rollback: ['carol'] },
    });
    cleanups.push(() => dropAuditSchema(config));
    // The worker warns, as it should, while the server is down: those warnings are the point of this test.
    const worker = await startWorker(config, { logLevel: 'error' });
    cleanups.push(() => worker.stop());

    const intake = await fire(worker.client, config, alert('APIDown'));
    await waitForStatus(worker.client, intake.workflowId, 'the rollback approval', (s) => s.pendingApprovals.length > 0);

    process.kill(server.pid, 'SIGKILL');
    await waitFor('the server to be gone', async () => (isAlive(server.pid) ? undefined : true));
    await assert.rejects(incidentStatus(worker.client, intake.workflowId));
    server = await startDevServer(serverOptions);

    // The worker and the client reconnect by themselves; the incident is where it was.
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'the incident after the restart', (s) => s.pendingApprovals.length > 0, 90_000);
    assert.equal(waiting.pendingApprovals[0]!.step, 'rollback');
    await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'rollback', by: 'carol' });
    const outcome = await outcomeOf(worker.client, intake.workflowId);

    assert.equal(outcome.resolution, 'remediated');
    assert.equal((await docker.getContainer(backend.name).inspect()).Config.Image, BACKEND_HEALTHY_IMAGE);
    const audit = await readAudit(config, intake.workflowId);
    assert.deepEqual(audit.events.map((e) => e.seq), outcome.timeline.map((e) => e.seq));
  });
});

