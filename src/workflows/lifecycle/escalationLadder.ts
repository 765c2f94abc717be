import { condition } from '@temporalio/workflow';
import { alertOf, type EscalationPolicy } from '../../incidents/model';
import { nextBusinessDayStart } from './businessDays';
import type { Incident } from './incident';

/**
 * Pages level 0 at once, then climbs one level each time the severity's response time runs out without an
 * acknowledgement. An acknowledgement restarts the clock; if the incident is still open when it runs out
 * again, the acknowledgement is stale and the ladder climbs. Low severity waits for the next business day.
 * Ends when the incident starts closing.
 */
export async function runEscalationLadder(incident: Incident, escalation: EscalationPolicy): Promise<void> {
  const annotations = alertOf(incident.input.trigger)?.annotations ?? {};
  const summary = annotations.summary ?? annotations.description ?? '';
  await incident.tell(
    [incident.escalatedTo!, ...escalation.notify],
    `${incident.headline()}${summary ? `: ${summary}` : ''} — ${incident.escalatedTo} is paged (${incident.workflowId})`,
  );
  let clockStartedAt = Date.now();
  let acknowledgementsSeen = incident.acknowledgements;
  for (;;) {
    const deadline = escalation.businessHours
      ? nextBusinessDayStart(clockStartedAt, escalation.businessHours)
      : clockStartedAt + escalation.responseTimeMs;
    const interrupted = await condition(
      () => incident.closeRequested || incident.acknowledgements !== acknowledgementsSeen,
      Math.max(deadline - Date.now(), 1),
      { summary: `Escalate past ${incident.escalatedTo} unless acknowledged` },
    );
    if (incident.closeRequested) return;
    clockStartedAt = Date.now();
    if (interrupted) {
      acknowledgementsSeen = incident.acknowledgements;
      continue;
    }
    if (incident.acknowledgedBy) incident.ackWentStale();
    await incident.escalate('Not acknowledged in time');
  }
}
