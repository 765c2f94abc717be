/** Runbook steps on the application database, shared by the runbooks that check or wait for it. */
import type { DatabaseCheck } from '../../activities/postgres';
import type { TargetFacts } from '../../incidents/model';
import { postgres } from '../activityProxies';
import type { RunbookContext, VerifyContext } from '../lifecycle/runbookContext';

/** `SELECT 1` (the runbook's `pg_isready`). Read-only. */
export function checkDatabase(rb: VerifyContext, facts: TargetFacts, title = 'Diagnose: SELECT 1'): Promise<DatabaseCheck> {
  return rb.step(postgres.checkDatabase, { target: 'postgres' }, {
    title,
    summary: `SELECT 1 on ${facts.container}`,
    record: (c) => (c.reachable ? `The database answers SELECT 1 in ${c.latencyMs} ms.` : `The database does not answer: ${c.error}.`),
  });
}

/** Waits (up to the target's `healthyWithin`) for `SELECT 1` to answer; `when` says after what. */
export async function waitForDatabase(rb: RunbookContext | VerifyContext, facts: TargetFacts, when: string): Promise<boolean> {
  const result = await rb.step(postgres.waitForDatabase, { target: 'postgres', withinMs: facts.healthyWithinMs }, {
    title: `Verify: SELECT 1 ${when}`,
    summary: `Wait for SELECT 1 on ${facts.container}`,
    record: (r) =>
      r.reachable
        ? `The database answers SELECT 1 ${when} (${r.attempts} attempt(s)).`
        : `The database still does not answer ${when} after ${Math.round(facts.healthyWithinMs / 1000)} s: ${r.error}.`,
  });
  return result.reachable;
}
