/**
 * Runbook §1 "API Service Down": diagnose the backend container, restart it, verify /health, and if that
 * does not help, roll back to the previous image once a human approves.
 */
import type { ContainerFacts } from '../activities/docker';
import { docker, http } from './activityProxies';
import type { IncidentInput, IncidentOutcome } from './lifecycle/definitions';
import type { Incident } from './lifecycle/incident';
import { runIncident } from './lifecycle/runIncident';
import { restartContainer } from './steps';

type Backend = NonNullable<IncidentInput['targets']['backend']>;

export async function apiDownIncident(input: IncidentInput): Promise<IncidentOutcome> {
  const backend = input.targets.backend;
  return runIncident(input, {
    prevention: ['Review logs for the crash cause.', 'Check resource limits (CPU/memory).', 'Verify database connectivity.'],
    verify: async () => backend !== undefined && (await http.probeHealth(backend.healthUrl)).healthy,
    respond: async (incident) => {
      if (!backend) {
        incident.record('note', 'No backend target is configured (targets.backend): nothing to act on.');
        return false;
      }
      const container = await diagnose(incident, backend);

      await restartContainer(incident, backend.container);
      if (await verifyHealthy(incident, backend, 'after the restart')) return true;

      return rollBack(incident, backend, container);
    },
  });
}

async function diagnose(incident: Incident, backend: Backend): Promise<ContainerFacts> {
  const container = await incident.step(`Diagnose: inspect ${backend.container}`, () =>
    docker.inspectContainer.executeWithOptions({ summary: `docker inspect ${backend.container}` }, [backend.container]),
  );
  incident.record('finding', describeContainer(container), { data: { ...container } });

  const logs = await incident.step('Diagnose: last 100 log lines', () =>
    docker.containerLogs.executeWithOptions({ summary: `docker logs --tail=100 ${backend.container}` }, [backend.container]),
  );
  incident.record('finding', `Last log lines of ${backend.container} (${logs.length} characters).`, { data: { logs } });

  const probe = await incident.step('Diagnose: health probe', () =>
    http.probeHealth.executeWithOptions({ summary: `GET ${backend.healthUrl}` }, [backend.healthUrl]),
  );
  incident.record('finding', `Health probe: ${probe.status ? `HTTP ${probe.status}` : probe.error} in ${probe.elapsedMs} ms.`, {
    data: { ...probe },
  });
  return container;
}

async function verifyHealthy(incident: Incident, backend: Backend, when: string): Promise<boolean> {
  const result = await incident.step(`Verify /health ${when}`, () =>
    http.waitForHealthy.executeWithOptions({ summary: `Wait for 200 from ${backend.healthUrl}` }, [
      backend.healthUrl,
      backend.healthyWithinMs,
    ]),
  );
  const outcome = result.healthy
    ? `/health answers 200 ${when} (${result.attempts} probe(s)).`
    : `/health still failing ${when} after ${Math.round(backend.healthyWithinMs / 1000)} s: ${result.status ? `HTTP ${result.status}` : result.error}.`;
  incident.record('finding', outcome, { data: { ...result } });
  return result.healthy;
}

async function rollBack(incident: Incident, backend: Backend, container: ContainerFacts): Promise<boolean> {
  const previous = container.previousImage;
  if (!previous) {
    incident.record('finding', `The previous image of ${backend.container} is unknown (no runbooks.previous-image label): cannot roll back.`);
    await incident.escalate('Restart did not help and no rollback is possible');
    return false;
  }
  const approved = await incident.approval('rollback', `Restart did not help. Roll ${backend.container} back from ${container.image} to ${previous}?`);
  if (!approved) {
    incident.record('note', 'Rollback rejected: leaving the container as it is.');
    return false;
  }
  const rollback = await incident.act(`Roll back ${backend.container} to ${previous}`, () =>
    docker.rollbackContainer.executeWithOptions({ summary: `Roll back ${backend.container} to ${previous}` }, [backend.container, previous]),
  );
  incident.record('action', `Rolled ${backend.container} back from ${rollback.replacedImage} to ${rollback.image}${rollback.keptAs ? `; old container kept as ${rollback.keptAs}` : ''}.`, {
    data: { ...rollback },
  });
  return verifyHealthy(incident, backend, 'after the rollback');
}

function describeContainer(c: ContainerFacts): string {
  if (!c.exists) return `Container ${c.name} does not exist.`;
  const state = c.running ? 'running' : `${c.status}, exit code ${c.exitCode}`;
  return `Container ${c.name} is ${state}${c.oomKilled ? ', OOM-killed' : ''}; ${c.restartCount} restart(s); image ${c.image}.`;
}
