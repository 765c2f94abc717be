/**
 * Deployments and rollbacks of the real audit-app sandbox, run by real `runbooks worker` processes: a good version
 * (built for real: the running image committed with its version file) goes out through `runbooks deploy --wait` with
 * its migration and is recorded; a version whose /health fails and one whose migration fails are rolled back
 * automatically, each opening an incident; a second deployment while one runs is refused; a worker SIGKILLed
 * mid-deploy and mid-rollback is replaced and the procedure ends on exactly one running backend container of the
 * expected image. The Docker engine and the database are asked, not the workflow.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import { PREVIOUS_IMAGE_LABEL } from '../src/activities/docker';
import type { Config, ConfigInput } from '../src/config/schema';
import { parseConfig } from '../src/config/load';
import type { DeploymentOutcome, DeploymentRecord } from '../src/deployments/model';
import { getDeployment } from '../src/deployments/operations';
import { DeploymentRefused, startDeploy } from '../src/intake/deploy';
import { auditAppTargets, backendImage, BackendEnv, ensureAuditAppImages, SANDBOX_DEPLOY, type StartedAuditApp } from '../src/sandbox/auditApp';
import { dropAuditSchema } from './support/audit';
import { cliWorkspace, type CliProcess, type CliWorkspace } from './support/cli';
import { suiteCleanups } from './support/cleanups';
import { testConfigInput } from './support/config';
import { everyContactOn } from './support/incidents';
import { recordHistoryIfAsked } from './support/histories';
import { startTestAuditApp, testDocker } from './support/sandbox';
import { waitFor } from './support/wait';

const UNHEALTHY = '1.9.0-unhealthy';
const BAD_MIGRATION = '1.9.1-badmigration';

describe('deployments of the sandbox backend, by real worker processes', () => {
  const cleanups = suiteCleanups();
  let docker: Docker;
  let app: StartedAuditApp;
  let config: Config;
  let configFile: string;
  let ws: CliWorkspace;
  let client: Client;
  let worker: CliProcess | undefined;
  const incidents: string[] = [];

  const startWorker = () => {
    worker = ws.spawn(['worker', '--config', configFile], { ...process.env, LOG_LEVEL: 'warn' });
    const mine = worker;
    cleanups.push(async () => {
      mine.child.kill('SIGKILL');
      await mine.exited;
    });
  };

  before(async () => {
    docker = testDocker();
    // Versions the deploys build (by commit) are made afresh: a tag left by an earlier run holds an older server.
    for (const version of ['2.1.0', '2.2.0']) await docker.getImage(backendImage(version)).remove({ force: true }).catch(() => undefined);
    const started = Date.now();
    const built = await ensureAuditAppImages(docker, {
      backends: [
        { version: '1.0.0' },
        { version: UNHEALTHY, env: { [BackendEnv.faultHealthStatus]: '500' } },
        { version: BAD_MIGRATION, env: { [BackendEnv.faultMigration]: 'fail' } },
      ],
    });
    console.error(`# bad backend images ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${built.map((b) => `${b.image} ${b.seconds.toFixed(1)} s`).join(', ') || 'all there'}`);
    app = await startTestAuditApp(docker, `deploy-${process.pid}-`);
    cleanups.push(async () => {
      const ours = await docker.listContainers({ all: true, filters: { name: [`^/${app.prefix}`] } });
      await Promise.all(ours.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    });
    const input: ConfigInput = testConfigInput({
      ...auditAppTargets(app, process.env.DOCKER_HOST),
      contacts: everyContactOn('log'),
      approvers: { 'downgrade-database': ['dana'] },
      deploy: { ...SANDBOX_DEPLOY, watch: '6s' },
    });
    input.targets!.backend!.healthyWithin = '20s';
    config = parseConfig(input);
    cleanups.push(() => dropAuditSchema(config));
    ws = cliWorkspace('deploy');
    cleanups.push(async () => ws.remove());
    configFile = ws.writeConfig(input);
    const connection = await Connection.connect({ address: config.temporal.address });
    cleanups.push(() => connection.close());
    client = new Client({ connection, namespace: config.temporal.namespace });
    cleanups.push(async () => {
      for (const id of incidents) await client.workflow.getHandle(id).terminate('test over').catch(() => undefined);
    });
    startWorker();
  });

  /** SIGKILLs the worker process, wherever it is, and starts a new one. */
  async function replaceWorker(): Promise<void> {
    worker!.child.kill('SIGKILL');
    await worker!.exited;
    startWorker();
  }
  /** The backend containers of this sandbox the engine runs, by image. */
  async function runningBackends(): Promise<string[]> {
    const all = await docker.listContainers({ filters: { name: [`^/${app.containers.backend}`] } });
    return all.filter((c) => c.Names.some((n) => n === `/${app.containers.backend}` || n.startsWith(`/${app.containers.backend}-replaced-`))).map((c) => c.Image);
  }
  async function schemaRevision(): Promise<number> {
    const db = new PgClient({ connectionString: app.urls.database });
    await db.connect();
    try {
      return (await db.query<{ revision: number | null }>('SELECT max(revision) AS revision FROM schema_migrations')).rows[0]?.revision ?? 0;
    } finally {
      await db.end();
    }
  }
  async function healthVersion(): Promise<string | undefined> {
    const response = await fetch(app.urls.health, { signal: AbortSignal.timeout(3_000) });
    return ((await response.json()) as { version?: string }).version;
  }
  async function history(): Promise<DeploymentRecord[]> {
    const listed = await ws.run(['deployments', '--json', '--config', configFile]);
    assert.equal(listed.code, 0, listed.stderr);
    return JSON.parse(listed.stdout) as DeploymentRecord[];
  }
  async function finished(workflowId: string, runId: string): Promise<DeploymentOutcome> {
    return client.workflow.getHandle(workflowId, runId).result() as Promise<DeploymentOutcome>;
  }
  async function assertIncidentOpened(outcome: DeploymentOutcome): Promise<void> {
    assert.ok(outcome.incident, 'an incident is opened');
    incidents.push(outcome.incident);
    const { type, status } = await client.workflow.getHandle(outcome.incident).describe();
    assert.equal(type, 'generic');
    assert.equal(status.name, 'RUNNING');
  }

  test('a good version is built, migrated, switched to, verified, watched and recorded by `runbooks deploy --wait`', { timeout: 180_000 }, async () => {
    const deployed = await ws.run(['deploy', '2.1.0', '--wait', '--by', 'erin', '--config', configFile], { timeoutMs: 150_000 });
    assert.equal(deployed.code, 0, deployed.stdout + deployed.stderr);
    assert.match(deployed.stdout, /deploy\s+2\.1\.0\s+succeeded\s+by erin/);
    assert.deepEqual(await runningBackends(), [backendImage('2.1.0')]);
    const info = await docker.getContainer(app.containers.backend).inspect();
    assert.equal(info.Config.Labels?.[PREVIOUS_IMAGE_LABEL], backendImage('1.0.0'));
    assert.equal(await healthVersion(), '2.1.0');
    assert.equal(await schemaRevision(), 1, 'the migration ran');
    const [last] = await history();
    assert.deepEqual(
      [last?.kind, last?.by, last?.fromImage, last?.toImage, last?.fromRevision, last?.toRevision, last?.result],
      ['deploy', 'erin', backendImage('1.0.0'), backendImage('2.1.0'), 0, 1, 'succeeded'],
    );
    assert.ok((last?.durationMs ?? 0) > 0);
    const [workflowId, runId] = last!.id.split('@') as [string, string];
    await recordHistoryIfAsked(workflowId, 'deploy-good-version', { runId });
  });

  test('a version whose /health fails goes back to the previous image by itself and opens an incident', { timeout: 180_000 }, async () => {
    const handle = await startDeploy(client, config, { version: UNHEALTHY, by: 'erin' });
    const outcome = await finished(handle.workflowId, handle.firstExecutionRunId);
    assert.equal(outcome.record.result, 'rolled-back', outcome.record.reason);
    assert.match(outcome.record.reason ?? '', /\/health did not answer 200/);
    assert.deepEqual(await runningBackends(), [backendImage('2.1.0')], 'one backend runs, the previous version');
    const restored = await docker.getContainer(app.containers.backend).inspect();
    assert.equal(restored.Config.Labels?.[PREVIOUS_IMAGE_LABEL], backendImage('1.0.0'), 'with its own previous image again');
    assert.equal(await healthVersion(), '2.1.0');
    await assertIncidentOpened(outcome);
    assert.equal((await history())[0]?.result, 'rolled-back');
    await recordHistoryIfAsked(handle.workflowId, 'deploy-unhealthy-rolled-back', { runId: handle.firstExecutionRunId });
  });

  test('a version whose migration fails never replaces the running backend, leaves the schema as it was and opens an incident', { timeout: 180_000 }, async () => {
    const handle = await startDeploy(client, config, { version: BAD_MIGRATION, by: 'erin' });
    const outcome = await finished(handle.workflowId, handle.firstExecutionRunId);
    assert.equal(outcome.record.result, 'rolled-back');
    assert.match(outcome.record.reason ?? '', /the migrations failed \(exit 1\).*year_after_2100/);
    assert.deepEqual(await runningBackends(), [backendImage('2.1.0')]);
    assert.equal(await schemaRevision(), 1, 'the failed migration rolled back in its transaction');
    await assertIncidentOpened(outcome);
  });

  test('a deploy whose worker is SIGKILLed while it watches is finished by a new worker; a second deploy meanwhile is refused', { timeout: 180_000 }, async () => {
    const handle = await startDeploy(client, config, { version: '2.2.0', by: 'erin' });
    await assert.rejects(startDeploy(client, config, { version: '2.2.1', by: 'mallory' }), (err: unknown) => {
      assert.ok(err instanceof DeploymentRefused);
      assert.equal(err.reason, 'running');
      assert.match(err.message, /a deployment is already running on .*backend: deploy-.* \(deploy of 2\.2\.0 by erin/);
      return true;
    });
    await waitFor('the deploy to watch', async () => ((await getDeployment(client, handle.workflowId)).phase === 'watching' ? true : undefined), 120_000);
    await replaceWorker();
    const outcome = await finished(handle.workflowId, handle.firstExecutionRunId);
    assert.equal(outcome.record.result, 'succeeded', outcome.record.reason);
    assert.deepEqual(await runningBackends(), [backendImage('2.2.0')], 'exactly one backend, the new version');
    assert.equal(await healthVersion(), '2.2.0');
  });

  test('`runbooks rollback --to` a version downgrades the schema once `runbooks deployment approve`d and ends on one container of it, through two worker SIGKILLs', { timeout: 240_000 }, async () => {
    const started = await ws.run(['rollback', '--to', '1.0.0', '--by', 'erin', '--config', configFile]);
    assert.equal(started.code, 0, started.stderr);
    const workflowId = /^started (\S+)$/m.exec(started.stdout)?.[1];
    assert.equal(workflowId, `deploy-${app.containers.backend}`);
    const handle = { workflowId, firstExecutionRunId: (await client.workflow.getHandle(workflowId).describe()).runId };
    await waitFor('the downgrade approval', async () => ((await getDeployment(client, handle.workflowId)).pendingApproval?.kind === 'downgrade-database' ? true : undefined), 120_000);
    const shown = await ws.run(['deployment', 'status', '--config', configFile]);
    assert.match(shown.stdout, /rollback awaiting-approval .*\n\s+waiting for downgrade-database: Downgrade the schema from revision 1 to 0/);
    await replaceWorker();
    const refused = await ws.run(['deployment', 'approve', '--step', 'downgrade-database', '--by', 'erin', '--config', configFile]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /erin is not an approver of downgrade-database \(approvers\.downgrade-database\)/);
    const approved = await ws.run(['deployment', 'approve', '--step', 'downgrade-database', '--by', 'dana', '--config', configFile]);
    assert.equal(approved.code, 0, approved.stderr);
    // Killed again while the downgrade or the switch runs (wherever it is): the next worker finishes that step.
    await waitFor('the rollback to act', async () => (['migrating', 'switching', 'verifying', 'done'].includes((await getDeployment(client, handle.workflowId)).phase) ? true : undefined), 60_000);
    await replaceWorker();
    const outcome = await finished(handle.workflowId, handle.firstExecutionRunId);
    assert.equal(outcome.record.result, 'succeeded', outcome.record.reason);
    assert.deepEqual(await runningBackends(), [backendImage('1.0.0')], 'exactly one backend, the version rolled back to');
    assert.equal(await healthVersion(), '1.0.0');
    assert.equal(await schemaRevision(), 0);
    const [last] = await history();
    assert.deepEqual([last?.kind, last?.fromImage, last?.toImage, last?.toRevision, last?.result], ['rollback', backendImage('2.2.0'), backendImage('1.0.0'), 0, 'succeeded']);
    await recordHistoryIfAsked(handle.workflowId, 'rollback-approved-downgrade', { runId: handle.firstExecutionRunId });
  });
});
