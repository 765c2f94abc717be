import { ActivityFailure, allHandlersFinished, condition } from '@temporalio/workflow';
import { keepAuditTrail } from './auditTrail';
import type { IncidentInput, IncidentOutcome, IncidentResolution } from './definitions';
import { runEscalationLadder } from './escalationLadder';
import { Incident, IncidentClosing } from './incident';

/** What a runbook supplies; everything else about an incident is shared. */
export interface Runbook {
  /** Diagnose and remediate; true once the service is verified healthy. */
  respond(incident: Incident): Promise<boolean>;
  /** One more health check when the alert resolves before the runbook finished. */
  verify(incident: Incident): Promise<boolean>;
  /** Prevention notes from the runbook, kept as the incident's follow-up items. */
  prevention: string[];
}

export async function runIncident(input: IncidentInput, runbook: Runbook): Promise<IncidentOutcome> {
  const incident = new Incident(input);
  const { alert, service, severity } = input;
  incident.record('detected', `${alert.alertname} fired for ${service} (${severity}).`, {
    actor: 'alertmanager',
    data: { labels: alert.labels, annotations: alert.annotations, startsAt: alert.startsAt },
  });
  const auditTrail = keepAuditTrail(incident);
  const ladder = runEscalationLadder(incident);

  const remediated = await respond(incident, runbook);
  if (!remediated && !incident.closeRequested) {
    incident.setPhase('needs-human', 'Waiting for a human to resolve');
    incident.record('note', 'Automatic remediation is exhausted: waiting for a human to resolve (the escalation ladder keeps running).');
    await condition(() => incident.closeRequested);
  }
  const resolution: IncidentResolution = remediated ? 'remediated' : incident.resolvedBy ? 'resolved-by-human' : 'alert-resolved';
  if (resolution === 'alert-resolved') await verifyAfterAlertResolved(incident, runbook);
  for (const note of runbook.prevention) incident.followUp(note);

  const resolvedBy = incident.resolvedBy?.by ?? (remediated ? 'runbooks' : 'alertmanager');
  incident.windDown();
  await ladder;
  const message = closingMessage(resolution, resolvedBy);
  await incident.tell(notifiedContacts(incident), `[RESOLVED] ${alert.alertname} on ${service}: ${message} (${incident.workflowId})`);
  incident.close(message, resolvedBy);
  await auditTrail;
  await condition(allHandlersFinished);
  return { resolution, resolvedBy, escalationLevel: incident.escalationLevel, timeline: incident.eventsFrom(0) };
}

/** Runs the runbook; a step that fails for good hands the incident to humans instead of failing the workflow. */
async function respond(incident: Incident, runbook: Runbook): Promise<boolean> {
  try {
    return await runbook.respond(incident);
  } catch (err) {
    if (err instanceof IncidentClosing) return false;
    if (err instanceof ActivityFailure) {
      incident.record('note', `Step failed: ${err.cause?.message ?? err.message}`, { data: { activity: err.activityType } });
      return false;
    }
    throw err;
  }
}

async function verifyAfterAlertResolved(incident: Incident, runbook: Runbook): Promise<void> {
  incident.setPhase('verifying', 'Verify health after the alert resolved');
  const healthy = await runbook.verify(incident).catch((err: unknown) => {
    if (err instanceof ActivityFailure) return false;
    throw err;
  });
  if (healthy) incident.record('finding', 'Health verified after the alert resolved.');
  else incident.followUp('The alert resolved but the health check still fails: look again.');
}

function closingMessage(resolution: IncidentResolution, by: string): string {
  switch (resolution) {
    case 'remediated':
      return 'Remediated and verified healthy.';
    case 'alert-resolved':
      return 'The alert resolved; closed without further remediation.';
    case 'resolved-by-human':
      return `Resolved by ${by}.`;
  }
}

function notifiedContacts(incident: Incident): string[] {
  const { escalateTo, notify } = incident.input.escalation;
  return [...escalateTo.slice(0, incident.escalationLevel + 1), ...notify];
}
