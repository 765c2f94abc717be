// `runbooks hands-off`, `runbooks status`, `runbooks pause|resume|abort` and `runbooks dry-run` as users run them
// (child processes), against real Temporal, Postgres, a worker and (dry-run) a real stopped container.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../src/config/load';
import type { DryRunPlan } from '../src/controls/dryRun';
import type { DeploymentStatus } from '../src/controls/status';
import { BACKEND_HEALTHY_IMAGE } from '../src/sandbox/images';
import { getIncident, listIncidents } from '../src/incidents/operations';
import { dropAuditSchema } from './support/audit';
import { cliWorkspace } from './support/cli';
import { testConfigInput } from './support/config';
import { alert, fire, terminateAll, waitForStatus } from './support/incidents';
import { startBackend, testDocker } from './support/sandbox';
import { waitFor } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

const workspace = cliWorkspace('cli-controls-test');
after(() => workspace.remove());

describe('runbooks hands-off, status, pause, resume and abort', () => {
  const input = testConfigInput({});
  const config = parseConfig(input);
  let configFile: string;
  let worker: RunningWorker;
  let workflowId: string;
  const cli = (...args: string[]) => workspace.run(['--config', configFile, ...args]);

  before(async () => {
    configFile = workspace.writeConfig(input);
    worker = await startWorker(config);
    workflowId = (await fire(worker.client, config, alert('CliControlsAlert', { severity: 'warning', service: 'cli-controls' }))).workflowId;
    await waitForStatus(worker.client, workflowId, 'the generic runbook waiting for a human', (s) => s.phase === 'needs-human');
    await waitFor('the incident in the visibility store', async () => (await listIncidents(worker.client, config.temporal.taskQueue, 'open')).find((i) => i.workflowId === workflowId));
  });
  after(async () => {
    if (worker) {
      await terminateAll(worker.client, [workflowId]);
      await worker.stop();
      await dropAuditSchema(config);
    }
  });

  test('hands-off on is stored, told to the open incident, and shown by status; off turns it back', async () => {
    const on = await cli('hands-off', 'on', '--reason', 'storage migration', '--by', 'alice');
    assert.equal(on.code, 0, on.stderr);
    assert.equal(on.stdout, 'global hands-off on (by alice: storage migration); 1 open incident(s) told\n');
    const view = await waitForStatus(worker.client, workflowId, 'the switch in the incident', (s) => s.handsOff !== undefined);
    assert.equal(view.handsOff?.reason, 'storage migration');
    const shown = await cli('show', workflowId);
    assert.match(shown.stdout, /^ {2}hands-off {5}on \(global, by alice: storage migration\): no remediation starts$/m);

    const status = await cli('status', '--json');
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout) as DeploymentStatus;
    assert.ok('switches' in parsed.handsOff);
    assert.deepEqual(parsed.handsOff.switches.map((s) => [s.scope, s.on, s.by]), [['global', true, 'alice']]);
    assert.equal(parsed.incidents.open, 1);
    assert.deepEqual(parsed.incidents.byPhase, { 'needs-human': 1 });
    assert.deepEqual(parsed.incidents.bySeverity, { medium: 1 });
    assert.ok(parsed.workers.length >= 1, 'the test worker polls');
    const text = await cli('status');
    assert.match(text.stdout, /^Hands-off: on for global \(by alice at .*: storage migration\)$/m);

    const off = await cli('hands-off', 'off', '--runbook', 'generic', '--by', 'alice');
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /^hands-off for generic off \(by alice\); 1 open incident\(s\) told\n$/);
    assert.ok((await getIncident(worker.client, workflowId)).handsOff, 'the global switch still holds');
    assert.equal((await cli('hands-off', 'off', '--by', 'alice')).code, 0);
    await waitForStatus(worker.client, workflowId, 'hands-off off', (s) => s.handsOff === undefined);
  });

  test('a bad state or runbook is a usage error naming the argument', async () => {
    const bad = await cli('hands-off', 'maybe');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /<state>: 'on' or 'off'/);
    const noRunbook = await cli('hands-off', 'on', '--runbook', 'nope');
    assert.equal(noRunbook.code, 2);
    assert.match(noRunbook.stderr, /--runbook: one of api-down/);
  });

  test('pause, resume and abort of an incident whose remediation is over are refused, saying so', async () => {
    const pause = await cli('pause', workflowId, '--by', 'alice');
    assert.equal(pause.code, 1);
    assert.match(pause.stderr, /remediation is over.*\(remediation-over\)/);
    const abort = await cli('abort', workflowId, '--by', 'alice', '--reason', 'wrong runbook');
    assert.equal(abort.code, 1);
    assert.match(abort.stderr, /\(remediation-over\)/);
    const noReason = await cli('abort', workflowId, '--by', 'alice');
    assert.equal(noReason.code, 2, 'a reason is required');
    assert.match(noReason.stderr, /--reason/);
  });
});

describe('runbooks dry-run', () => {
  test('an APIDown dry run diagnoses the real stopped container, stops at the restart it would run, and pages nobody', async () => {
    const docker = testDocker();
    const backend = await startBackend(docker, BACKEND_HEALTHY_IMAGE);
    try {
      await backend.container.stop({ t: 1 });
      const input = testConfigInput({ targets: { backend: { container: backend.name, healthUrl: `http://127.0.0.1:${backend.port}/health`, healthyWithin: '4s' } } });
      const configFile = workspace.writeConfig(input);
      const result = await workspace.run(['--config', configFile, 'dry-run', '--alertname', 'APIDown', '--label', 'severity=critical', '--label', 'service=backend', '--json'], { timeoutMs: 180_000 });
      assert.equal(result.code, 0, result.stderr);
      const plan = JSON.parse(result.stdout) as DryRunPlan;
      assert.equal(plan.runbook, 'api-down');
      assert.equal(plan.phase, 'needs-human');
      assert.ok(plan.timeline.some((e) => e.kind === 'finding' && /is exited/.test(e.message)), 'the diagnosis ran for real');
      assert.deepEqual(
        plan.timeline.filter((e) => e.kind === 'would-have').map((e) => e.message),
        [`Hands-off (global, set by dry-run: nothing is changed in a dry run): would have run "Restart container ${backend.name}".`],
      );
      assert.ok(plan.pages.some((p) => p.contacts.includes('oncall')), JSON.stringify(plan.pages));
      assert.equal((await docker.getContainer(backend.name).inspect()).State.Running, false, 'nothing was restarted');
      const text = await workspace.run(['--config', configFile, 'dry-run', '--alertname', 'APIDown'], { timeoutMs: 180_000 });
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^Dry run of api-down \(dry-run-APIDown-/);
      assert.match(text.stdout, /It stops at its first change or approval/);
      const none = await workspace.run(['--config', configFile, 'dry-run']);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /--alertname/);
    } finally {
      await backend.remove();
    }
  });
});
