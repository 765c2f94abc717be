import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load';
import { actOnIncident } from '../src/incidents/operations';
import { BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE } from '../src/sandbox/images';
import { dropAuditSchema, readAudit } from './support/audit';
import { suiteCleanups } from './support/cleanups';
import { testConfigInput } from './support/config';
import { alert, everyContactOn, fire, outcomeOf, waitForStatus } from './support/incidents';
import { startBackend, testDocker } from './support/sandbox';

const CLI = path.resolve(__dirname, '../bin/runbooks.js');

/** A real `runbooks worker` process, as production runs it. */
function spawnWorker(configFile: string): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'worker', '--config', configFile], {
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return child;
}

function exited(child: ChildProcess): Promise<NodeJS.Signals | number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode ?? child.exitCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
}

describe('a worker killed in the middle of an incident', () => {
  const cleanups = suiteCleanups();

  test('is replaced by a new worker process that finishes the incident from where it stopped', { timeout: 180_000 }, async () => {
    const docker = testDocker();
    const backend = await startBackend(docker, BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE);
    cleanups.push(() => backend.remove());
    const input = testConfigInput({
      targets: { backend: { container: backend.name, healthUrl: `http://127.0.0.1:${backend.port}/health`, healthyWithin: '20s' } },
      contacts: everyContactOn('log'),
      approvers: { rollback: ['carol'] },
    });
    const config = parseConfig(input);
    const configDir = mkdtempSync(path.join(tmpdir(), 'runbooks-crash-'));
    cleanups.push(async () => rmSync(configDir, { recursive: true, force: true }));
    const configFile = path.join(configDir, 'runbooks.yaml');
    writeFileSync(configFile, stringify(input));
    cleanups.push(() => dropAuditSchema(config));
    const connection = await Connection.connect({ address: config.temporal.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, namespace: config.temporal.namespace });

    const first = spawnWorker(configFile);
    cleanups.push(async () => first.kill('SIGKILL'));
    const intake = await fire(client, config, alert('APIDown'));
    // Kill it while an activity is running: the 20 s wait for /health after the restart.
    await waitForStatus(client, intake.workflowId, 'the post-restart health check', (s) => s.currentStep.startsWith('Verify /health after the restart'), 90_000);
    first.kill('SIGKILL');
    assert.equal(await exited(first), 'SIGKILL');

    const second = spawnWorker(configFile);
    cleanups.push(async () => {
      second.kill('SIGTERM');
      await exited(second);
    });
    const waiting = await waitForStatus(client, intake.workflowId, 'the rollback approval on the new worker', (s) => s.pendingApprovals.length > 0, 120_000);
    assert.equal(waiting.pendingApprovals[0]!.step, 'rollback');
    await actOnIncident(client, intake.workflowId, { kind: 'approve', step: 'rollback', by: 'carol' });
    const outcome = await outcomeOf(client, intake.workflowId);

    assert.equal(outcome.resolution, 'remediated');
    assert.equal((await docker.getContainer(backend.name).inspect()).Config.Image, BACKEND_HEALTHY_IMAGE);
    const restarts = outcome.timeline.filter((e) => e.message === `Restarted container ${backend.name}.`);
    assert.equal(restarts.length, 1, 'the restart recorded before the crash is not repeated');
    // The dead worker may also have held the audit write of the moment (recordTimeline): its retry is reported too.
    const retried = outcome.timeline.filter((e) => e.kind === 'activity-retried' && e.data?.activityType === 'waitForHealthy');
    assert.equal(retried.length, 1, `the health check the dead worker held is retried once, and the timeline says so: ${JSON.stringify(outcome.timeline)}`);
    assert.equal(retried[0]!.message, 'waitForHealthy: attempt 2, after activity Heartbeat timeout', 'names the step, the attempt and why');
    const audit = await readAudit(config, intake.workflowId);
    assert.deepEqual(audit.events.map((e) => e.seq), outcome.timeline.map((e) => e.seq), 'every event audited exactly once');
  });
});
