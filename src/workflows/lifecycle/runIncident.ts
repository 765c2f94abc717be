import { ActivityFailure, allHandlersFinished, condition } from '@temporalio/workflow';
import { alertOf, describeTrigger, type IncidentInput, type IncidentOutcome, type IncidentResolution } from '../../incidents/model';
import { keepAuditTrail } from './auditTrail';
import { runEscalationLadder } from './escalationLadder';
import { Incident, IncidentClosing } from './incident';
import { RemediationStopped } from './operatorControls';
import { runbookContext, UndoStack, type RunbookContext, type VerifyContext } from './runbookContext';

/** What a runbook supplies; everything else about an incident is shared. */
export interface Runbook {
  /** Diagnose and remediate; true once the service is verified healthy. */
  respond(rb: RunbookContext): Promise<boolean>;
  /** One more health check when the alert resolves before the runbook finished. */
  verify(rb: VerifyContext): Promise<boolean>;
  /** Prevention notes from the runbook, kept as the incident's follow-up items. */
  prevention: readonly string[];
  /** What the timeline says when `respond` returned true (default: "Remediated and verified healthy."). */
  doneMessage?: string;
}

export async function runIncident(input: IncidentInput, runbook: Runbook): Promise<IncidentOutcome> {
  const incident = new Incident(input);
  recordDetected(incident);
  const auditTrail = keepAuditTrail(incident);
  const ladder = input.escalation ? runEscalationLadder(incident, input.escalation) : Promise.resolve();
  const undo = new UndoStack(incident);
  const rb = runbookContext(incident, undo);

  const remediated = (await respond(incident, rb, runbook)) && !incident.controls.aborted;
  incident.controls.endRemediation();
  if (incident.controls.aborted) await handOverAfterAbort(incident, undo, incident.controls.aborted);
  if (!remediated && !incident.closeRequested) {
    incident.setPhase('needs-human', 'Waiting for a human to resolve');
    incident.record('note', `Automatic remediation is exhausted: waiting for a human to resolve${input.escalation ? ' (the escalation ladder keeps running)' : ''}.`);
    await condition(() => incident.closeRequested);
  }
  await waitForOpenTasks(incident);
  const resolution: IncidentResolution = remediated ? 'remediated' : incident.resolvedBy ? 'resolved-by-human' : 'alert-resolved';
  if (resolution === 'alert-resolved') await verifyAfterAlertResolved(incident, rb, runbook);
  for (const note of runbook.prevention) incident.followUp(note);

  const resolvedBy = incident.resolvedBy?.by ?? (remediated ? 'runbooks' : 'alertmanager');
  incident.windDown();
  if (undo.size > 0) await undo.unwind();
  await ladder;
  const message = resolution === 'remediated' && runbook.doneMessage ? runbook.doneMessage : closingMessage(resolution, resolvedBy);
  await incident.tell(notifiedContacts(incident), `${incident.headline('RESOLVED')}: ${message} (${incident.workflowId})`, 'resolve');
  incident.close(message, resolvedBy);
  await auditTrail;
  await condition(allHandlersFinished);
  return { resolution, resolvedBy, escalationLevel: incident.escalationLevel, timeline: incident.eventsFrom(0) };
}

/** Tasks for humans hold the incident open: until each is done, or a human resolves it with a reason (which closes them). */
async function waitForOpenTasks(incident: Incident): Promise<void> {
  const open = incident.openTasks;
  if (open.length === 0) return;
  incident.setPhase('needs-human', `Waiting for ${open.length} open task(s)`);
  incident.record('note', `Waiting for ${open.length} open task(s) before the incident can resolve: ${open.map((t) => t.id).join(', ')} (runbooks complete-task, or resolve with a reason).`);
  await condition(() => incident.openTasks.length === 0);
}

function recordDetected(incident: Incident): void {
  const { trigger, service, escalation } = incident.input;
  const alert = alertOf(trigger);
  if (alert) {
    incident.record('detected', `${alert.alertname} fired for ${service} (${escalation?.severity ?? 'no severity'}).`, {
      actor: 'alertmanager',
      data: { labels: alert.labels, annotations: alert.annotations, startsAt: alert.startsAt },
    });
    return;
  }
  const actor = trigger.kind === 'operator' ? trigger.by : 'schedule';
  const reason = trigger.kind === 'operator' && trigger.reason ? `: ${trigger.reason}` : '';
  incident.record('detected', `${incident.input.runbook} for ${service}, ${describeTrigger(trigger)}${reason}.`, { actor, data: { trigger } });
}

/** Runs the runbook; a step that fails for good hands the incident to humans instead of failing the workflow. */
async function respond(incident: Incident, rb: RunbookContext, runbook: Runbook): Promise<boolean> {
  try {
    return await runbook.respond(rb);
  } catch (err) {
    if (err instanceof IncidentClosing || err instanceof RemediationStopped) return false;
    if (err instanceof ActivityFailure) {
      incident.record('note', `Step failed: ${err.cause?.message ?? err.message}`, { data: { activity: err.activityType } });
      return false;
    }
    throw err;
  }
}

/** An operator aborted remediation: undo what it changed now (not at close), and page the next level. */
async function handOverAfterAbort(incident: Incident, undo: UndoStack, aborted: { by: string; reason: string }): Promise<void> {
  if (undo.size > 0) await undo.unwind('remediation was aborted');
  await incident.escalate(`Remediation aborted by ${aborted.by} (${aborted.reason})${undo.size > 0 ? '; its undo steps ran' : ''}`);
}

async function verifyAfterAlertResolved(incident: Incident, rb: VerifyContext, runbook: Runbook): Promise<void> {
  incident.setPhase('verifying', 'Verify health after the alert resolved');
  const healthy = await runbook.verify(rb).catch((err: unknown) => {
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
  const escalation = incident.input.escalation;
  if (!escalation) return [];
  return [...escalation.escalateTo.slice(0, incident.escalationLevel + 1), ...escalation.notify];
}
