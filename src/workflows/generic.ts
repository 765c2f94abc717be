/** Any alert without a runbook still becomes an incident: recorded, notified and escalated until a human resolves it. */
import { describeTrigger, type IncidentInput, type IncidentOutcome } from '../incidents/model';
import { runIncident } from './lifecycle/runIncident';

export async function generic(input: IncidentInput): Promise<IncidentOutcome> {
  return runIncident(input, {
    prevention: [],
    verify: async () => true,
    respond: async (rb) => {
      rb.note(`No runbook automates ${describeTrigger(input.trigger)}: notifying and escalating only.`);
      return false;
    },
  });
}
