import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load';
import type { ConfigInput } from '../src/config/schema';
import type { IncidentOutcome, IncidentStatusView } from '../src/incidents/model';
import { actOnIncident } from '../src/incidents/operations';
import { BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE } from '../src/sandbox/images';
import { dropAuditSchema, readAudit } from './support/audit';
import { suiteCleanups } from './support/cleanups';
import { testConfigInput } from './support/config';
import { alert, everyContactOn, fire, outcomeOf, waitForStatus } from './support/incidents';
import { startBackend, testDocker } from './support/sandbox';
import { freePorts } from './harness/util';

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

interface Scene {
  docker: ReturnType<typeof testDocker>;
  backend: Awaited<ReturnType<typeof startBackend>>;
  config: ReturnType<typeof parseConfig>;
  configFile: string;
  client: Client;
}

/** A broken sandbox backend, a config file for worker processes (with `temporal` overrides) and a client. */
async function scene(cleanups: ReturnType<typeof suiteCleanups>, temporal: Partial<NonNullable<ConfigInput['temporal']>> = {}): Promise<Scene> {
  const docker = testDocker();
  const backend = await startBackend(docker, BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE);
  cleanups.push(() => backend.remove());
  const input = testConfigInput({
    targets: { backend: { container: backend.name, healthUrl: `http://127.0.0.1:${backend.port}/health`, healthyWithin: '20s' } },
    contacts: everyContactOn('log'),
    approvers: { rollback: ['carol'] },
  });
  input.temporal = { ...input.temporal, ...temporal };
  const config = parseConfig(input);
  const configDir = mkdtempSync(path.join(tmpdir(), 'runbooks-crash-'));
  cleanups.push(async () => rmSync(configDir, { recursive: true, force: true }));
  const configFile = path.join(configDir, 'runbooks.yaml');
  writeFileSync(configFile, stringify(input));
  cleanups.push(() => dropAuditSchema(config));
  const connection = await Connection.connect({ address: config.temporal.address });
  cleanups.push(() => connection.close());
  return { docker, backend, config, configFile, client: new Client({ connection, namespace: config.temporal.namespace }) };
}

/** A second worker finishes the incident: the rollback is approved, and the outcome comes back. */
async function finishOnASecondWorker(cleanups: ReturnType<typeof suiteCleanups>, { client, configFile }: Scene, workflowId: string): Promise<IncidentOutcome> {
  const second = spawnWorker(configFile);
  cleanups.push(async () => {
    second.kill('SIGTERM');
    await exited(second);
  });
  const waiting = await waitForStatus(client, workflowId, 'the rollback approval on the new worker', (s) => s.pendingApprovals.length > 0, 120_000);
  assert.equal(waiting.pendingApprovals[0]!.step, 'rollback');
  await actOnIncident(client, workflowId, { kind: 'approve', step: 'rollback', by: 'carol' });
  return outcomeOf(client, workflowId);
}

const untilHealthCheck = (s: IncidentStatusView) => s.currentStep.startsWith('Verify /health after the restart');

describe('a worker killed in the middle of an incident', () => {
  const cleanups = suiteCleanups();

  test('is replaced by a new worker process that finishes the incident from where it stopped', { timeout: 180_000 }, async () => {
    const at = await scene(cleanups);
    const { docker, backend, config, configFile, client } = at;
    const first = spawnWorker(configFile);
    cleanups.push(async () => first.kill('SIGKILL'));
    const intake = await fire(client, config, alert('APIDown'));
    // Kill it while an activity is running: the 20 s wait for /health after the restart.
    await waitForStatus(client, intake.workflowId, 'the post-restart health check', untilHealthCheck, 90_000);
    first.kill('SIGKILL');
    assert.equal(await exited(first), 'SIGKILL');

    const outcome = await finishOnASecondWorker(cleanups, at, intake.workflowId);

    assert.equal(outcome.resolution, 'remediated');
    assert.equal((await docker.getContainer(backend.name).inspect()).Config.Image, BACKEND_HEALTHY_IMAGE);
    const restarts = outcome.timeline.filter((e) => e.message === `Restarted container ${backend.name}.`);
    assert.equal(restarts.length, 1, 'the restart recorded before the crash is not repeated');
    // The dead worker may also have held an audit write (bookkeeping, whose retries stay off the timeline).
    const retried = outcome.timeline.filter((e) => e.kind === 'activity-retried');
    assert.equal(retried.length, 1, `the health check the dead worker held is retried once, and the timeline says so: ${JSON.stringify(outcome.timeline)}`);
    assert.equal(retried[0]!.message, 'waitForHealthy: attempt 2, after activity Heartbeat timeout', 'names the step, the attempt and why');
    const audit = await readAudit(config, intake.workflowId);
    assert.deepEqual(audit.events.map((e) => e.seq), outcome.timeline.map((e) => e.seq), 'every event audited exactly once');
  });
});

describe('a worker stopped with SIGTERM in the middle of an incident', () => {
  const cleanups = suiteCleanups();

  test('serves the SDK metrics for Prometheus, finishes the step it runs before it exits (nothing retried), and a new worker goes on', { timeout: 180_000 }, async () => {
    const [metricsPort] = (await freePorts(1)) as [number];
    const at = await scene(cleanups, { shutdownGraceTime: '60s', workerMetricsAddress: `127.0.0.1:${metricsPort}` });
    const { config, configFile, client } = at;
    const first = spawnWorker(configFile);
    cleanups.push(async () => first.kill('SIGKILL'));
    const intake = await fire(client, config, alert('APIDown'));
    await waitForStatus(client, intake.workflowId, 'the post-restart health check', untilHealthCheck, 90_000);

    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^temporal_\w*activity_execution_latency\w*\{/m, 'the SDK reports activity latencies');
    assert.match(metrics, /^temporal_num_pollers\{/m, 'and its pollers');

    // The health check waits up to 20 s for a backend that stays broken; the worker lets it run out, then exits.
    first.kill('SIGTERM');
    assert.equal(await exited(first), 0, 'a clean exit');
    const outcome = await finishOnASecondWorker(cleanups, at, intake.workflowId);

    assert.equal(outcome.resolution, 'remediated');
    const retried = outcome.timeline.filter((e) => e.kind === 'activity-retried');
    assert.deepEqual(retried, [], 'the stopped worker finished its step: nothing was retried');
    assert.ok(
      outcome.timeline.some((e) => e.message.startsWith('/health still failing after the restart after 20 s')),
      `the health check's own result is on the timeline: ${JSON.stringify(outcome.timeline.map((e) => e.message))}`,
    );
  });
});
