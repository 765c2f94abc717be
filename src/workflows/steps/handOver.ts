/**
 * Handing an incident over to another runbook: the alert a human would fire, routed by the config at intake
 * (`handOvers` of the catalog entry), started as a child incident — so Temporal links the two both ways — and
 * abandoned, so it lives on after this incident closes. Each timeline names the other.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, startChild, workflowInfo } from '@temporalio/workflow';
import type { IncidentInput } from '../../incidents/model';
import type { RunbookContext } from '../lifecycle/runbookContext';
import { initialSearchAttributes } from '../searchAttributes';

export interface HandOverAlert {
  alertname: string;
  labels: Record<string, string>;
  summary: string;
}

/** The child incident's workflow ID, or undefined when the config routes no hand-over for that alert. */
export async function handOver(rb: RunbookContext, input: IncidentInput, alert: HandOverAlert): Promise<string | undefined> {
  const setup = input.handOvers?.[alert.alertname];
  if (!setup) return undefined;
  const { workflowType, ...childSetup } = setup;
  const parent = workflowInfo().workflowId;
  // One hand-over per incident and alert: a replayed or retried step finds the child already there.
  const fingerprint = `from-${parent}`;
  const workflowId = `${alert.alertname}-${fingerprint}`;
  const child: IncidentInput = {
    ...childSetup,
    service: input.service,
    trigger: {
      kind: 'alert',
      alert: {
        alertname: alert.alertname,
        fingerprint,
        labels: { ...alert.labels, alertname: alert.alertname, service: input.service, handed_over_by: parent },
        annotations: { summary: `${alert.summary} (handed over by ${parent})` },
        startsAt: new Date().toISOString(),
        generatorURL: '',
      },
    },
  };
  try {
    await startChild(workflowType, {
      workflowId,
      args: [child],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: initialSearchAttributes(child),
      staticSummary: `${alert.alertname} on ${input.service}, handed over by ${parent} — runbook ${child.runbook}`,
    });
    rb.note(`Handed over to the ${child.runbook} runbook: ${workflowId} (${alert.alertname}).`, { handedOverTo: workflowId, runbook: child.runbook });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    rb.note(`Already handed over: ${workflowId}.`, { handedOverTo: workflowId });
  }
  return workflowId;
}
