/** Runbook steps on HTTP health endpoints, shared by every runbook that verifies a service. */
import type { HealthProbe } from '../../activities/http';
import type { TargetFacts } from '../../incidents/model';
import { http } from '../activityProxies';
import type { RunbookContext, VerifyContext } from '../lifecycle/runbookContext';

/** One GET of the backend's /health. Read-only. */
export function probeHealth(rb: VerifyContext, facts: TargetFacts): Promise<HealthProbe> {
  return rb.step(http.probeHealth, { target: 'backend' }, {
    title: 'Diagnose: health probe',
    summary: `GET /health of ${facts.container}`,
    record: (p) => `Health probe: ${p.status ? `HTTP ${p.status}` : p.error} in ${p.elapsedMs} ms.`,
  });
}

/** Waits (up to the target's `healthyWithin`) for /health to answer 200; `when` says after what, for the timeline. */
export async function waitForHealth(rb: RunbookContext | VerifyContext, facts: TargetFacts, when: string): Promise<boolean> {
  const result = await rb.step(http.waitForHealthy, { target: 'backend', withinMs: facts.healthyWithinMs }, {
    title: `Verify /health ${when}`,
    summary: `Wait for 200 from /health of ${facts.container}`,
    record: (r) =>
      r.healthy
        ? `/health answers 200 ${when} (${r.attempts} probe(s)).`
        : `/health still failing ${when} after ${Math.round(facts.healthyWithinMs / 1000)} s: ${r.status ? `HTTP ${r.status}` : r.error}.`,
  });
  return result.healthy;
}
