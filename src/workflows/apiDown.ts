/**
 * Runbook §1 "API Service Down".
 * Diagnosis: `docker ps`, `docker logs --tail=100`, the health check.
 * Resolution: restart the service; if the restart does not help, roll back (here: to the image in the container's
 * `runbooks.previous-image` label, once a human approves).
 * Prevention: review logs for the crash cause, check resource limits, verify database connectivity.
 */
import { patched } from '@temporalio/workflow';
import type { IncidentInput, IncidentOutcome, TargetFacts } from '../incidents/model';
import type { RunbookContext } from './lifecycle/runbookContext';
import { runIncident } from './lifecycle/runIncident';
import { containerLogs, inspectContainer, restartContainer, rollBackContainer } from './steps/docker';
import { probeHealth, waitForHealth } from './steps/http';

export async function apiDown(input: IncidentInput): Promise<IncidentOutcome> {
  const backend = input.targets.backend;
  return runIncident(input, {
    prevention: ['Review logs for the crash cause.', 'Check resource limits (CPU/memory).', 'Verify database connectivity.'],
    verify: async (rb) => backend !== undefined && (await probeHealth(rb, backend)).healthy,
    respond: async (rb) => {
      if (!backend) {
        rb.note('No backend target is configured (targets.backend): nothing to act on.');
        return false;
      }
      // Diagnosis: three reads, independent of each other, so at once (incidents started before this change read them
      // one after another, and replay so).
      const [container] = patched('api-down-diagnosis-at-once')
        ? await Promise.all([inspectContainer(rb, 'backend', backend), containerLogs(rb, 'backend', backend), probeHealth(rb, backend)])
        : [await inspectContainer(rb, 'backend', backend), await containerLogs(rb, 'backend', backend), await probeHealth(rb, backend)];

      // Resolution: restart the service…
      await restartContainer(rb, 'backend', backend);
      if (await waitForHealth(rb, backend, 'after the restart')) return true;

      // …if the restart doesn't help, roll back.
      return rollBack(rb, backend, container.image, container.previousImage);
    },
  });
}

async function rollBack(rb: RunbookContext, backend: TargetFacts, image: string | undefined, previous: string | undefined): Promise<boolean> {
  if (!previous) {
    rb.finding(`The previous image of ${backend.container} is unknown (no runbooks.previous-image label): cannot roll back.`);
    await rb.escalate('Restart did not help and no rollback is possible');
    return false;
  }
  if (!(await rb.approval('rollback', `Restart did not help. Roll ${backend.container} back from ${image} to ${previous}?`))) {
    rb.note('Rollback rejected: leaving the container as it is.');
    return false;
  }
  await rollBackContainer(rb, 'backend', backend, previous);
  return waitForHealth(rb, backend, 'after the rollback');
}
