// A test-only runbook for the undo stack: it makes change A (undo at close) and registers undo B (due after 1 h),
// then waits for a human unless the alert's `finish` label says "remediated"; with the `ask` label it first asks for
// a rollback approval (a moment to abort remediation with undo steps registered).
import type { IncidentInput, IncidentOutcome } from '../../src/incidents/model';
import { alertOf } from '../../src/incidents/model';
import { docker, redis } from '../../src/workflows/activityProxies';
import { runIncident } from '../../src/workflows/lifecycle/runIncident';

export async function undoDrill(input: IncidentInput): Promise<IncidentOutcome> {
  return runIncident(input, {
    prevention: [],
    verify: async () => true,
    respond: async (rb) => {
      rb.onClose(docker.rollbackContainer, { target: 'backend', image: 'before-A' }, { title: 'put A back', summary: 'undo A' });
      await rb.act(docker.restartContainer, { target: 'backend' }, { title: 'Change A', summary: 'change A', record: () => 'Changed A.' });
      rb.onClose(redis.flushRedisDb, { target: 'redis' }, { title: 'put B back', summary: 'undo B', after: '1h', record: (r) => `Put B back (${r.keysDropped}).` });
      const labels = alertOf(input.trigger)?.labels;
      if (labels?.ask && (await rb.approval('rollback', 'Keep the changes?'))) return true;
      return labels?.finish === 'remediated';
    },
  });
}
