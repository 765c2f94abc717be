/**
 * Runbook "Deployment Procedures" — "Standard Deployment", as a saga on `targets.backend`: every step is recorded,
 * resumes after a worker crash, and registers its compensation before it runs. Any failure undoes what was done, last
 * first — the previous image back, the schema downgrade only with approval — and opens an incident. The history
 * (who, version, from, to, result, duration) is in Postgres. One deployment per target at a time (intake's fixed
 * workflow ID), an optional `approve-deploy` gate.
 */
import { ActivityFailure, CancellationScope, isCancellation, workflowInfo } from '@temporalio/workflow';
import { versionOf, type DeployInput, type DeploymentOutcome } from '../deployments/model';
import { deployment, docker, http } from './activityProxies';
import { DeploymentFailure, DeploymentRun, failureMessage, lastLine, Saga } from './deploy/procedure';

export async function deploy(input: DeployInput): Promise<DeploymentOutcome> {
  const { version, by } = input.request;
  const run = new DeploymentRun('deploy', input, { by, version });
  const saga = new Saga(run);
  const id = workflowInfo().workflowId;
  try {
    const current = await docker.inspectContainer({ target: 'backend' });
    if (!current.exists || !current.image) throw new DeploymentFailure(`${input.container} does not exist: nothing to deploy onto`);
    Object.assign(run.record, { fromImage: current.image, fromVersion: versionOf(current.image) });
    await run.save();

    // 1.–2. Pull latest code, build new images: an existing tag, or `deploy.build`.
    run.enter('preparing', `Deploying ${version} to ${input.container} (now ${current.image}), requested by ${by}.`);
    const { image, built } = await deployment.prepareImage({ version });
    Object.assign(run.record, { toImage: image, toVersion: version });
    run.note('runbooks', built ? `Built ${image}.` : `Image ${image} is there.`);

    if (input.requireApproval && !(await run.approval('approve-deploy', `Deploy ${image} to ${input.container} (now ${current.image})?`))) {
      return outcome(await run.finish('refused', 'approve-deploy was not given'));
    }

    // 3. Run database migrations, in a one-off container of the new image.
    if (input.migrations) {
      run.enter('migrating', `Migrating the schema with ${image}.`);
      const before = await deployment.runMigration({ image, step: 'current', runKey: `${id}/current` });
      run.record.fromRevision = before.revision;
      saga.add(`the schema back to revision ${before.revision}`, () => downgradeSchema(run, image, before.revision));
      const up = await deployment.runMigration({ image, step: 'up', runKey: `${id}/up` });
      if (up.exitCode !== 0) throw new DeploymentFailure(`the migrations failed (exit ${up.exitCode}): ${lastLine(up.output)}`);
      run.record.toRevision = up.revision;
      run.note('runbooks', `Schema at revision ${up.revision} (was ${before.revision}).`);
    }

    // 4. Deploy: the backend recreated on the new image, the previous one kept in its runbooks.previous-image label.
    saga.add(`${input.container} back on ${current.image}`, async () => {
      const previousImage = current.previousImage ? { previousImage: current.previousImage } : {};
      await deployment.replaceContainer({ target: 'backend', image: current.image!, mode: 'rollback', ...previousImage });
      const back = await http.waitForHealthy({ target: 'backend', withinMs: input.healthyWithinMs });
      run.note('runbooks', `${input.container} is back on ${current.image}; /health ${back.healthy ? 'answers 200' : `still fails (${back.status ?? back.error})`}.`);
    });
    run.enter('switching', `Recreating ${input.container} on ${image}.`);
    await deployment.replaceContainer({ target: 'backend', image, mode: 'deploy' });

    // 5. Verify health.
    run.enter('verifying', `Waiting for /health (up to ${Math.round(input.healthyWithinMs / 1000)} s).`);
    const health = await http.waitForHealthy({ target: 'backend', withinMs: input.healthyWithinMs });
    if (!health.healthy) throw new DeploymentFailure(`/health did not answer 200 within ${Math.round(input.healthyWithinMs / 1000)} s (last: ${health.status ?? health.error})`);

    // 6. Monitor logs for errors (and the error rate) for the watch window.
    run.enter('watching', `Watching ${input.container} for ${Math.round(input.watchMs / 1000)} s.`);
    const watch = await deployment.watchDeployment({ windowMs: input.watchMs });
    if (watch.failure) throw new DeploymentFailure(watch.failure);
    run.note('runbooks', `Watched ${watch.healthChecks} health check(s), ${watch.errorLines} error line(s), ${watch.requests} request(s) with ${watch.serverErrors} 5xx.`);
    return outcome(await run.finish('succeeded'));
  } catch (err) {
    if (!(err instanceof DeploymentFailure || err instanceof ActivityFailure || isCancellation(err))) throw err;
    const reason = isCancellation(err) ? 'the deployment was cancelled' : failureMessage(err);
    // A cancelled deployment is undone too: the compensations run where its cancellation does not reach.
    return CancellationScope.nonCancellable(async () => {
      run.note('runbooks', `Deployment failed: ${reason}`);
      const undone = await saga.compensate();
      await run.openIncident(reason);
      return outcome(await run.finish(undone ? 'rolled-back' : 'failed', reason));
    });
  }
}

/** The compensation of the migrations: only when the schema moved, and only with `downgrade-database`. */
async function downgradeSchema(run: DeploymentRun, image: string, revision: number | undefined): Promise<void> {
  if (revision === undefined) return run.note('runbooks', 'The revision before the migrations is unknown: the schema is left as it is.');
  const id = workflowInfo().workflowId;
  const now = await deployment.runMigration({ image, step: 'current', runKey: `${id}/compensate-current` });
  if (now.revision === undefined || now.revision <= revision) return run.note('runbooks', `The schema is at revision ${now.revision ?? '?'}: nothing to downgrade.`);
  if (!(await run.approval('downgrade-database', `Downgrade the schema from revision ${now.revision} to ${revision}?`))) {
    return run.note('runbooks', `The schema is left at revision ${now.revision} (runbooks rollback can downgrade it later).`);
  }
  const down = await deployment.runMigration({ image, step: 'down', revision, runKey: `${id}/compensate-down` });
  if (down.exitCode !== 0) throw new DeploymentFailure(`the downgrade failed (exit ${down.exitCode}): ${lastLine(down.output)}`);
  run.note('runbooks', `Schema downgraded to revision ${down.revision}.`);
}

function outcome({ record, incident }: DeploymentOutcome): DeploymentOutcome {
  return { record, ...(incident ? { incident } : {}) };
}
