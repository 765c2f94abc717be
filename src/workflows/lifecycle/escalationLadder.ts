import { condition, patched } from '@temporalio/workflow';
import { alertOf, type EscalationPolicy } from '../../incidents/model';
import { nextBusinessDayStart } from './businessDays';
import type { Incident } from './incident';

/**
 * Pages level 0 at once, then climbs one level each time the severity's response time runs out without an
 * acknowledgement. An acknowledgement restarts the clock (and is passed on to paging services); if the incident is
 * still open when it runs out again, the acknowledgement is stale and the ladder climbs. A page that reaches nobody
 * (every channel kept failing) climbs at once. Low severity waits for the next business day.
 * Ends when the incident starts closing.
 */
export async function runEscalationLadder(incident: Incident, escalation: EscalationPolicy): Promise<void> {
  const annotations = alertOf(incident.input.trigger)?.annotations ?? {};
  const summary = annotations.summary ?? annotations.description ?? '';
  const unreached = await incident.tell(
    [incident.escalatedTo!, ...escalation.notify],
    `${incident.headline()}${summary ? `: ${summary}` : ''} — ${incident.escalatedTo} is paged (${incident.workflowId})`,
    'trigger',
  );
  if (unreached.includes(incident.escalatedTo!)) await incident.escalatePastUnreachable(incident.escalatedTo!);
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
      if (incident.acknowledgedBy && patched('tell-paging-services-of-acknowledgement')) await tellAcknowledged(incident, escalation);
      continue;
    }
    if (incident.acknowledgedBy) incident.ackWentStale();
    await incident.escalate('Not acknowledged in time');
  }
}

/** Everyone told of the page so far hears of the acknowledgement; PagerDuty and Opsgenie acknowledge the alert. */
async function tellAcknowledged(incident: Incident, escalation: EscalationPolicy): Promise<void> {
  const told = [...escalation.escalateTo.slice(0, incident.escalationLevel + 1), ...escalation.notify];
  await incident.tell(told, `${incident.headline()}: acknowledged by ${incident.acknowledgedBy} (${incident.workflowId})`, 'acknowledge');
}
