/**
 * Runbook "Deployment Procedures" — "Rollback Procedure": the backend back to the previous image (its
 * runbooks.previous-image label) or a named version from the deployment history; the database downgraded only with
 * approval (`downgrade-database`); /health verified; recorded. Every step is an idempotent activity: a worker killed
 * at any point, a new one finishes it, and the backend ends on one container of the target version.
 */
import { ActivityFailure, workflowInfo } from '@temporalio/workflow';
import { versionOf, type DeploymentOutcome, type RollbackInput } from '../deployments/model';
import { deployment, http } from './activityProxies';
import { DeploymentFailure, DeploymentRun, failureMessage, lastLine } from './deploy/procedure';

export async function rollback(input: RollbackInput): Promise<DeploymentOutcome> {
  const { toVersion, by } = input.request;
  const run = new DeploymentRun('rollback', input, { by, ...(toVersion ? { version: toVersion } : {}) });
  const id = workflowInfo().workflowId;
  try {
    const plan = await deployment.rollbackPlan({ ...(toVersion ? { toVersion } : {}) });
    Object.assign(run.record, { fromImage: plan.currentImage, fromVersion: versionOf(plan.currentImage), toImage: plan.image, toVersion: plan.version });
    run.enter('preparing', `Rolling ${input.container} back from ${plan.currentImage} to ${plan.image}, requested by ${by}.`);
    await run.save();

    // 3. Rollback database if needed — before the switch, with the image being replaced: only it knows how to revert
    // the migrations it brought.
    if (input.migrations && plan.revision !== undefined) {
      const now = await deployment.runMigration({ image: plan.currentImage, step: 'current', runKey: `${id}/current` });
      run.record.fromRevision = now.revision;
      run.record.toRevision = now.revision;
      if (now.revision !== undefined && now.revision > plan.revision) {
        if (await run.approval('downgrade-database', `Downgrade the schema from revision ${now.revision} to ${plan.revision} (the revision ${plan.image} ran on)?`)) {
          run.enter('migrating', `Downgrading the schema to revision ${plan.revision}.`);
          const down = await deployment.runMigration({ image: plan.currentImage, step: 'down', revision: plan.revision, runKey: `${id}/down` });
          if (down.exitCode !== 0) throw new DeploymentFailure(`the downgrade failed (exit ${down.exitCode}): ${lastLine(down.output)}`);
          run.record.toRevision = down.revision;
        } else {
          run.note('runbooks', `The schema stays at revision ${now.revision}.`);
        }
      }
    }

    // 1.–2. Stop the current deployment and deploy the previous version: one replacement, the old container kept stopped.
    run.enter('switching', `Recreating ${input.container} on ${plan.image}.`);
    await deployment.replaceContainer({ target: 'backend', image: plan.image, mode: 'rollback' });

    // 4. Verify.
    run.enter('verifying', `Waiting for /health (up to ${Math.round(input.healthyWithinMs / 1000)} s).`);
    const health = await http.waitForHealthy({ target: 'backend', withinMs: input.healthyWithinMs });
    if (!health.healthy) throw new DeploymentFailure(`/health did not answer 200 within ${Math.round(input.healthyWithinMs / 1000)} s after the rollback (last: ${health.status ?? health.error})`);
    const { record } = await run.finish('succeeded');
    return { record };
  } catch (err) {
    if (!(err instanceof DeploymentFailure || err instanceof ActivityFailure)) throw err;
    const reason = failureMessage(err);
    await run.openIncident(reason);
    const { record, incident } = await run.finish('failed', reason);
    return { record, ...(incident ? { incident } : {}) };
  }
}
