/** Runbook steps on containers, shared by every runbook that restarts or rolls back a target. */
import type { ContainerFacts, RollbackResult } from '../../activities/docker';
import type { TargetFacts } from '../../incidents/model';
import type { TargetName } from '../../runbooks/catalog';
import { docker } from '../activityProxies';
import type { RunbookContext } from '../lifecycle/runbookContext';

/** `docker inspect`: state, exit code, OOM, restarts, image and the image to roll back to. Read-only. */
export function inspectContainer(rb: RunbookContext, target: TargetName, facts: TargetFacts): Promise<ContainerFacts> {
  return rb.step(docker.inspectContainer, { target }, {
    title: `Diagnose: inspect ${facts.container}`,
    summary: `docker inspect ${facts.container}`,
    record: describeContainer,
  });
}

/** `docker logs --tail=N`, bounded in size. Read-only. */
export function containerLogs(rb: RunbookContext, target: TargetName, facts: TargetFacts, tailLines = 100): Promise<string> {
  return rb.step(docker.containerLogs, { target, tailLines }, {
    title: `Diagnose: last ${tailLines} log lines`,
    summary: `docker logs --tail=${tailLines} ${facts.container}`,
    record: (logs) => ({ message: `Last log lines of ${facts.container} (${logs.length} characters).`, data: { logs } }),
  });
}

/** `docker restart`: a remediation, so refused once the incident is winding down. */
export async function restartContainer(rb: RunbookContext, target: TargetName, facts: TargetFacts): Promise<void> {
  await rb.act(docker.restartContainer, { target }, {
    title: `Restart container ${facts.container}`,
    summary: `docker restart ${facts.container}`,
    record: () => `Restarted container ${facts.container}.`,
  });
}

/** Replaces the container by one on `image`, keeping the old one stopped for the review. Resumes after a crash. */
export function rollBackContainer(rb: RunbookContext, target: TargetName, facts: TargetFacts, image: string): Promise<RollbackResult> {
  return rb.act(docker.rollbackContainer, { target, image }, {
    title: `Roll back ${facts.container} to ${image}`,
    summary: `Roll back ${facts.container} to ${image}`,
    record: (r) => `Rolled ${facts.container} back from ${r.replacedImage} to ${r.image}${r.keptAs ? `; old container kept as ${r.keptAs}` : ''}.`,
  });
}

function describeContainer(c: ContainerFacts): string {
  if (!c.exists) return `Container ${c.name} does not exist.`;
  const state = c.running ? 'running' : `${c.status}, exit code ${c.exitCode}`;
  return `Container ${c.name} is ${state}${c.oomKilled ? ', OOM-killed' : ''}; ${c.restartCount} restart(s); image ${c.image}.`;
}
