// `runbooks bundle --out FILE`, as the Dockerfile runs it, and a `runbooks worker` process started on that file, as the
// image starts it (RUNBOOKS_WORKFLOW_BUNDLE), with its metrics address from the environment as docker-compose.yml sets it.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load';
import { dropAuditSchema } from './support/audit';
import { suiteCleanups } from './support/cleanups';
import { testConfigInput } from './support/config';
import { waitFor } from './support/wait';
import { freePorts } from './harness/util';

const execFileP = promisify(execFile);
const CLI = path.resolve(__dirname, '../bin/runbooks.js');

function exited(child: ChildProcess): Promise<NodeJS.Signals | number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode ?? child.exitCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
}

describe('runbooks bundle', () => {
  const cleanups = suiteCleanups();
  const dir = mkdtempSync(path.join(tmpdir(), 'runbooks-bundle-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));

  test('without --out is refused as bad usage', async () => {
    const failure = (await execFileP(process.execPath, [CLI, 'bundle'], { env: process.env }).catch((err: unknown) => err)) as { code?: number; stderr?: string };
    assert.equal(failure.code, 2);
    assert.match(failure.stderr ?? '', /--out/);
  });

  test('writes a workflow bundle that a runbooks worker process starts on and polls with, serving its metrics where WORKER_METRICS_ADDRESS says', { timeout: 180_000 }, async () => {
    const bundle = path.join(dir, 'nested', 'workflow-bundle.js');
    const { stdout } = await execFileP(process.execPath, [CLI, 'bundle', '--out', bundle], { env: { ...process.env, LOG_LEVEL: 'warn' } });
    assert.match(stdout, /^workflow bundle: .*workflow-bundle\.js \(\d+\.\d MB\)$/m);
    assert.ok(statSync(bundle).size > 100_000, 'the bundle holds the workflows and their dependencies');

    const input = testConfigInput();
    const config = parseConfig(input);
    const configFile = path.join(dir, 'runbooks.yaml');
    writeFileSync(configFile, stringify(input));
    cleanups.push(() => dropAuditSchema(config));
    const [metricsPort] = (await freePorts(1)) as [number];
    const worker = spawn(process.execPath, [CLI, 'worker', '--config', configFile], {
      env: { ...process.env, LOG_LEVEL: 'warn', RUNBOOKS_WORKFLOW_BUNDLE: bundle, WORKER_METRICS_ADDRESS: `127.0.0.1:${metricsPort}` },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    cleanups.push(async () => {
      worker.kill('SIGKILL');
      await exited(worker);
    });

    const connection = await Connection.connect({ address: config.temporal.address });
    cleanups.push(() => connection.close());
    // The task queue is this test's own: any workflow poller on it is this worker, running the bundle.
    const pollers = await waitFor('the worker to poll its workflow task queue', async () => {
      const { pollers: found } = await connection.workflowService.describeTaskQueue({
        namespace: config.temporal.namespace,
        taskQueue: { name: config.temporal.taskQueue },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      });
      return found.length > 0 ? found : undefined;
    }, 120_000);
    assert.ok(pollers.length > 0);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^temporal_num_pollers\{/m, 'the SDK metrics are served at WORKER_METRICS_ADDRESS');

    worker.kill('SIGTERM');
    assert.equal(await exited(worker), 0, 'a clean exit on SIGTERM');
  });
});
