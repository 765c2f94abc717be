/** Runbook steps more than one runbook takes, so each is written, named and recorded the same way once. */
import { docker } from './activityProxies';
import type { Incident } from './lifecycle/incident';

/** `docker restart <container>`: a remediation, so refused once the incident is winding down. */
export async function restartContainer(incident: Incident, container: string): Promise<void> {
  await incident.act(`Restart container ${container}`, () =>
    docker.restartContainer.executeWithOptions({ summary: `docker restart ${container}` }, [container]),
  );
  incident.record('action', `Restarted container ${container}.`);
}
