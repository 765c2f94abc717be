/** Any alert without a runbook still becomes an incident: recorded, notified and escalated until a human resolves it. */
import type { IncidentInput, IncidentOutcome } from './lifecycle/definitions';
import { runIncident } from './lifecycle/runIncident';

export async function genericIncident(input: IncidentInput): Promise<IncidentOutcome> {
  return runIncident(input, {
    prevention: [],
    verify: async () => true,
    respond: async (incident) => {
      incident.record('note', `No runbook automates ${input.alert.alertname}: notifying and escalating only.`);
      return false;
    },
  });
}
