// The deploy and rollback workflows' branches on the time-skipping test server, their activities typed stubs: a good
// deploy recorded; a health failure and a failed migration compensated in reverse (the previous image back, the schema
// downgraded only with approval) with an incident opened; the approve-deploy gate; a rollback's approved downgrade.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import type { MigrationRun, MigrationStep } from '../src/activities/deploy';
import { parseConfig } from '../src/config/load';
import type { DeploymentOutcome, DeploymentRecord } from '../src/deployments/model';
import { deploymentSetup } from '../src/intake/deploy';
import type { deploy } from '../src/workflows/deploy';
import { deploymentStatusQuery, deploymentUpdates } from '../src/workflows/deploy/messages';
import { timeSkippingIncidents, type ActivityStubs } from './support/timeSkipping';
import { waitFor } from './support/wait';

const suite = timeSkippingIncidents({ taskQueuePrefix: 'deploy-branches', labels: { alertname: 'Unused' } });
const config = (overrides: Record<string, unknown> = {}) =>
  parseConfig({
    targets: { backend: { container: 'backend', healthUrl: 'http://127.0.0.1:1/health', healthyWithin: '30s' } },
    approvers: { 'approve-deploy': ['alice'], 'downgrade-database': ['dana'] },
    deploy: { migrate: { up: ['m', 'up'], down: ['m', 'down', '{revision}'], current: ['m', 'current'] }, watch: '1m', approveWithin: '30m', ...overrides },
  });

type Deploy = WorkflowHandle<typeof deploy>;

/** A world of stubs: the backend's image, the schema revision, what happened, in order. */
function world({ healthy = true, migrationFails = false, watchFailure }: { healthy?: boolean; migrationFails?: boolean; watchFailure?: string } = {}) {
  const state = { image: 'app:1.0.0', revision: 0, steps: [] as string[], records: [] as DeploymentRecord[] };
  const migration = (step: MigrationStep, revision?: number): MigrationRun => {
    state.steps.push(`migrate ${step}${revision === undefined ? '' : ` ${revision}`}`);
    if (step === 'up' && migrationFails) return { step, exitCode: 1, revision: state.revision, output: 'ERROR migrate: up 2 failed (rolled back)' };
    if (step === 'up') state.revision = 1;
    if (step === 'down') state.revision = revision!;
    return { step, exitCode: 0, revision: state.revision, output: `schema revision ${state.revision}` };
  };
  const stubs: ActivityStubs = {
    inspectContainer: async () => ({ name: 'backend', exists: true, running: true, image: state.image }),
    prepareImage: async ({ version }) => ({ image: `app:${version}`, version, built: false }),
    runMigration: async ({ step, revision }) => migration(step, revision),
    replaceContainer: async ({ image, mode }) => {
      state.steps.push(`${mode} ${image}`);
      const replacedImage = state.image;
      state.image = image;
      return { image, replacedImage, alreadyDone: false };
    },
    waitForHealthy: async () => {
      const ok = healthy || state.image === 'app:1.0.0';
      return { healthy: ok, status: ok ? 200 : 500, elapsedMs: 1, attempts: 1 };
    },
    watchDeployment: async ({ windowMs }) => ({ windowMs, healthChecks: 3, unhealthy: 0, errorLines: 0, examples: [], requests: 10, serverErrors: 0, errorRate: 0, ...(watchFailure ? { failure: watchFailure } : {}) }),
    rollbackPlan: async () => ({ currentImage: state.image, image: 'app:1.0.0', version: '1.0.0', revision: 0 }),
    recordDeployment: async ({ record }) => void state.records.push(record),
  };
  return { state, stubs };
}

describe('deploy and rollback, on the time-skipping test server', () => {
  before(() => suite.start());
  after(() => suite.stop());

  const startDeploy = (version: string, stubs: ActivityStubs, overrides: Record<string, unknown> = {}) =>
    suite.startWorkflow<typeof deploy>('deploy', { ...deploymentSetup(config(overrides)), request: { version, by: 'erin' } }, stubs);

  async function incidentOf(outcome: DeploymentOutcome) {
    assert.ok(outcome.incident, 'an incident is opened');
    const child = suite.env.client.workflow.getHandle(outcome.incident);
    // Settled before it is terminated: a task in flight for a terminated workflow stalls the test server's clock.
    await suite.settle(child);
    const { type, status } = await child.describe();
    await child.terminate('test over').catch(() => undefined);
    return { type, status: status.name };
  }

  test('a good deploy migrates, switches keeping the previous image, verifies, watches and records who, from, to and the result', async () => {
    const { state, stubs } = world();
    const handle = await startDeploy('1.1.0', stubs);
    const outcome = await handle.result();
    assert.deepEqual(state.steps, ['migrate current', 'migrate up', 'deploy app:1.1.0']);
    assert.equal(outcome.incident, undefined);
    const { record } = outcome;
    assert.equal(record.result, 'succeeded');
    assert.equal(record.by, 'erin');
    assert.deepEqual([record.fromImage, record.fromVersion, record.toImage, record.toVersion, record.fromRevision, record.toRevision], ['app:1.0.0', '1.0.0', 'app:1.1.0', '1.1.0', 0, 1]);
    assert.equal(typeof record.durationMs, 'number');
    assert.equal(state.records.at(-1)?.result, 'succeeded', 'the last write to the history is the result');
    assert.match(record.id, new RegExp(`^${handle.workflowId}@`));
  });

  test('a version whose /health fails is put back on the previous image, the schema downgraded once approved, and an incident opened', async () => {
    const { state, stubs } = world({ healthy: false });
    const handle: Deploy = await startDeploy('1.1.0-bad', stubs);
    await suite.settle(handle);
    const waiting = await handle.query(deploymentStatusQuery);
    assert.equal(waiting.pendingApproval?.kind, 'downgrade-database');
    assert.deepEqual(state.steps, ['migrate current', 'migrate up', 'deploy app:1.1.0-bad', 'rollback app:1.0.0', 'migrate current'], 'the image goes back first, then the schema waits');
    await assert.rejects(handle.executeUpdate(deploymentUpdates.approve, { args: [{ step: 'downgrade-database', by: 'alice' }] }), (err: unknown) => {
      assert.ok(err instanceof WorkflowUpdateFailedError);
      assert.equal((err.cause as ApplicationFailure).type, 'NotAnApprover');
      return true;
    });
    await handle.executeUpdate(deploymentUpdates.approve, { args: [{ step: 'downgrade-database', by: 'dana' }] });
    const outcome = await handle.result();
    assert.equal(state.steps.at(-1), 'migrate down 0');
    assert.equal(state.image, 'app:1.0.0');
    assert.equal(outcome.record.result, 'rolled-back');
    assert.match(outcome.record.reason ?? '', /\/health did not answer 200/);
    assert.deepEqual(await incidentOf(outcome), { type: 'generic', status: 'RUNNING' });
  });

  test('a failed migration leaves the running container alone, needs no downgrade (its transaction rolled back) and opens an incident', async () => {
    const { state, stubs } = world({ migrationFails: true });
    const outcome = await (await startDeploy('1.2.0-badmigration', stubs)).result();
    assert.deepEqual(state.steps, ['migrate current', 'migrate up', 'migrate current']);
    assert.equal(state.image, 'app:1.0.0');
    assert.equal(outcome.record.result, 'rolled-back');
    assert.match(outcome.record.reason ?? '', /the migrations failed \(exit 1\): ERROR migrate: up 2 failed/);
    assert.equal((await incidentOf(outcome)).status, 'RUNNING');
  });

  test('errors while watched roll back; a downgrade nobody approves within approveWithin leaves the schema and says so', async () => {
    const { state, stubs } = world({ watchFailure: '3 error line(s) in the log while watched' });
    const handle = await startDeploy('1.1.1', stubs);
    await suite.settle(handle);
    assert.equal((await handle.query(deploymentStatusQuery)).pendingApproval?.kind, 'downgrade-database');
    await suite.env.sleep('31m');
    await suite.settle(handle);
    const outcome = await handle.result();
    assert.equal(state.image, 'app:1.0.0');
    assert.equal(state.revision, 1);
    const log = (await handle.query(deploymentStatusQuery)).log.map((l) => l.message);
    assert.ok(log.some((m) => /No downgrade-database within 30 min: taken as a no/.test(m)), log.join('\n'));
    assert.ok(log.some((m) => /schema is left at revision 1/.test(m)), log.join('\n'));
    assert.equal(outcome.record.result, 'rolled-back');
    await incidentOf(outcome);
  });

  test('a deployment cancelled while it watches is undone all the same: the previous image back, recorded, an incident opened', async () => {
    const { state, stubs } = world();
    let watching = false;
    const handle = await startDeploy('1.1.2', {
      ...stubs,
      watchDeployment: async ({ windowMs }) => {
        watching = true;
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        return { windowMs, healthChecks: 1, unhealthy: 0, errorLines: 0, examples: [], requests: 0, serverErrors: 0, errorRate: 0 };
      },
    });
    await waitFor('the watch', async () => (watching ? true : undefined));
    await handle.cancel();
    await suite.settle(handle);
    await handle.executeUpdate(deploymentUpdates.reject, { args: [{ step: 'downgrade-database', by: 'dana' }] });
    const outcome = await handle.result();
    assert.equal(state.image, 'app:1.0.0');
    assert.deepEqual([outcome.record.result, outcome.record.reason], ['rolled-back', 'the deployment was cancelled']);
    await incidentOf(outcome);
  });

  test('with requireApproval nothing goes out until approve-deploy; a rejection is recorded as refused and changes nothing', async () => {
    const { state, stubs } = world();
    const handle = await startDeploy('1.1.0', stubs, { requireApproval: true });
    await suite.settle(handle);
    assert.equal((await handle.query(deploymentStatusQuery)).pendingApproval?.kind, 'approve-deploy');
    await handle.executeUpdate(deploymentUpdates.reject, { args: [{ step: 'approve-deploy', by: 'alice', reason: 'freeze' }] });
    const outcome = await handle.result();
    assert.equal(outcome.record.result, 'refused');
    assert.deepEqual(state.steps, []);
  });

  test('a rollback downgrades the schema once approved, with the image being replaced, then switches and verifies', async () => {
    const { state, stubs } = world();
    state.image = 'app:1.1.0';
    state.revision = 1;
    const handle = await suite.startWorkflow('rollback', { ...deploymentSetup(config()), request: { by: 'erin' } }, stubs);
    await suite.settle(handle);
    await handle.executeUpdate(deploymentUpdates.approve, { args: [{ step: 'downgrade-database', by: 'dana' }] });
    const outcome = (await handle.result()) as DeploymentOutcome;
    assert.deepEqual(state.steps, ['migrate current', 'migrate down 0', 'rollback app:1.0.0']);
    assert.equal(outcome.record.result, 'succeeded');
    assert.deepEqual([outcome.record.kind, outcome.record.fromImage, outcome.record.toImage, outcome.record.toRevision], ['rollback', 'app:1.1.0', 'app:1.0.0', 0]);
  });
});
