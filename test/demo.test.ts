// `runbooks demo` as a user runs it, against the audit-app sandbox on the harness's Docker engine: the API and Redis
// scenarios. (demo-database.test.ts has the database and latency ones, and `runbooks dev --sandbox`.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { dockerClient } from '../src/activities';
import { removeAuditApp } from '../src/sandbox/auditApp';
import { cliWorkspace, exitWithin } from './support/cli';
import { testConfigInput } from './support/config';
import { requireEnv } from './support/env';
import { freeAuditAppPorts, sandboxPlaceArgs } from './support/sandbox';
import { waitFor } from './support/wait';

describe('runbooks demo: the API and Redis scenarios on the audit-app sandbox', { timeout: 280_000 }, () => {
  const workspace = cliWorkspace('demo-test');
  const prefix = `demo-${randomBytes(3).toString('hex')}-`;
  let docker: Docker;
  let place: string[];
  let configFile: string;
  const demo = (...args: string[]) => ['--config', configFile, 'demo', ...place, '--timeout', '150', ...args];
  const containers = async () => (await docker.listContainers({ all: true, filters: { name: [`^/${prefix}`] } })).map((c) => c.Names[0]!.slice(1)).sort();

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    const ports = await freeAuditAppPorts();
    place = sandboxPlaceArgs(prefix, ports);
    configFile = workspace.writeConfig(testConfigInput());
  });

  after(async () => {
    await removeAuditApp(docker, prefix);
    workspace.remove();
  });

  test('--print-config prints the targets, approvers and demo policy of a scenario, and the snippet passes config check', async () => {
    const snippet = await workspace.run(['demo', '--print-config', '--scenario', 'db-connections', ...place]);
    assert.equal(snippet.code, 0, snippet.stderr);
    const file = path.join(workspace.scratch, 'demo-snippet.yaml');
    writeFileSync(file, snippet.stdout);
    const checked = await workspace.run(['config', 'check', file]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, new RegExp(`targets\\s+4 \\(backend \\(${prefix}backend\\), redis \\(${prefix}redis\\), postgres \\(${prefix}postgres\\), etl \\(${prefix}etl\\)\\)`));
    assert.match(checked.stdout, /approvers\s+restore-database: demo; terminate-sessions: demo/);
    assert.match(snippet.stdout, /idleInTransactionMinutes: 0\.02/);
  });

  test('api-down: brings the sandbox up, stops the backend, fires APIDown through its own webhook, follows the restart to resolution, and removes the sandbox it started', async () => {
    const result = await workspace.run(demo('--scenario', 'api-down'), { timeoutMs: 200_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /^scenario api-down: the backend container is stopped; a restart fixes it$/m);
    assert.match(result.stdout, new RegExp(`broke it: stopped ${prefix}backend`));
    const fired = /fired APIDown at http:\/\/127\.0\.0\.1:\d+\/alerts → incident (APIDown-[0-9a-f]{16})/.exec(result.stdout);
    assert.ok(fired, result.stdout);
    assert.match(result.stdout, /detected\s+alertmanager\s+APIDown fired for audit-app \(critical\)\./);
    assert.match(result.stdout, new RegExp(`action\\s+runbooks\\s+Restarted container ${prefix}backend\\.`));
    assert.match(result.stdout, /resolved\s+runbooks\s+Remediated and verified healthy\./);
    assert.match(result.stdout, new RegExp(`${fired[1]} resolved\\.`));
    assert.match(result.stdout, /removed the sandbox: /);
    assert.deepEqual(await containers(), [], 'the sandbox it started is gone');
  });

  test('bad-deploy: waits for the rollback approval, refuses a non-approver, and the printed approve command rolls back to the previous image', async () => {
    const run = workspace.spawn(demo('--scenario', 'bad-deploy', '--keep'));
    try {
      const printed = await waitFor(
        'the approve command',
        async () => /npx runbooks approve (APIDown-[0-9a-f]{16}) --step (\S+) --by demo\n/.exec(run.stdout) ?? (run.child.exitCode !== null ? null : undefined),
        150_000,
      );
      assert.ok(printed, `demo exited early:\n${run.stdout}\n${run.stderr}`);
      const [, workflowId, step] = printed;
      const refused = await workspace.run(['--config', configFile, 'approve', workflowId!, '--step', step!, '--by', 'mallory']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /mallory is not an approver for rollback/);
      const approved = await workspace.run(['--config', configFile, 'approve', workflowId!, '--step', step!, '--by', 'demo', '--reason', 'test']);
      assert.equal(approved.code, 0, approved.stderr);

      assert.equal(await exitWithin(run, 120_000), 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, new RegExp(`broke it: deployed runbooks-audit-app-backend:1\\.0\\.1-bad to ${prefix}backend: its /health answers 500`));
      assert.match(run.stdout, /approval-refused\s+mallory\s+/);
      assert.match(run.stdout, new RegExp(`action\\s+runbooks\\s+Rolled ${prefix}backend back from runbooks-audit-app-backend:1\\.0\\.1-bad to runbooks-audit-app-backend:1\\.0\\.0`));
      assert.match(run.stdout, /resolved\s+runbooks\s+Remediated and verified healthy\./);
      assert.match(run.stdout, /left the sandbox running/);
      // The rollback dropped what the bad image baked in: the backend runs 1.0.0 without FAULT_HEALTH_STATUS.
      const backend = await docker.getContainer(`${prefix}backend`).inspect();
      assert.equal(backend.Config.Image, 'runbooks-audit-app-backend:1.0.0');
      assert.ok(!backend.Config.Env.some((e) => e.startsWith('FAULT_HEALTH_STATUS=')), backend.Config.Env.join(' '));
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  });

  test('backfill: the worker process is SIGKILLed half-way and a new one finishes the backfill from the chunk it was in', async () => {
    const result = await workspace.run(demo('--scenario', 'backfill', '--keep'), { timeoutMs: 200_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const workers = [...result.stdout.matchAll(/started a worker process \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    assert.equal(workers.length, 2, result.stdout);
    const killed = new RegExp(`SIGKILLed the worker \\(pid ${workers[0]}\\) in the middle of (\\w+ \\d{4}), after record (\\d+)`).exec(result.stdout);
    assert.ok(killed, result.stdout);
    const finished = /^12 of 12 chunk\(s\), 480 record\(s\) written in ([\d.]+) s/m.exec(result.stdout);
    assert.ok(finished, result.stdout);
    console.log(`# backfill demo: 480 records (12 chunks of 40, delay 50 ms) in ${finished[1]} s with a worker SIGKILLed at ${killed[1]} record ${killed[2]}`);
    assert.match(result.stdout, /Done: 12 of 12 chunk\(s\), 480 record\(s\) written\./);
  });

  test('redis-down --approve: reuses the running sandbox, and leaves it running after the restart fixed Redis', async () => {
    const result = await workspace.run(demo('--scenario', 'redis-down', '--approve'), { timeoutMs: 200_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /the sandbox is up \(/);
    assert.match(result.stdout, new RegExp(`action\\s+runbooks\\s+Restarted container ${prefix}redis\\.`));
    assert.match(result.stdout, /left the sandbox running/);
    assert.ok((await containers()).includes(`${prefix}redis`));
  });
});
