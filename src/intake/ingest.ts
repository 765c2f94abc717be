import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import type { Config } from '../config/schema';
import type { IncidentInput } from '../incidents/model';
import { alertFiringSignal, alertResolvedSignal } from '../workflows/lifecycle/definitions';
import { initialSearchAttributes } from '../workflows/searchAttributes';
import type { Alert } from './alertmanager';
import { routeAlert, type RoutedAlert } from './route';

type IntakeAction = 'started' | 'signalled' | 'ignored';

export interface IntakeResult {
  fingerprint: string;
  alertname: string;
  workflowId: string;
  action: IntakeAction;
}

/**
 * One alert in, one incident per fingerprint: a firing alert starts an incident or, if one is open,
 * signals it; a resolved alert signals the open incident or is ignored. Safe under concurrent re-sends:
 * Temporal allows one open workflow per ID, and the losers of the race signal the winner.
 */
export async function ingestAlert(client: Client, config: Config, alert: Alert): Promise<IntakeResult> {
  const routed = routeAlert(alert, config);
  const result = (action: IntakeAction): IntakeResult => ({
    fingerprint: alert.fingerprint,
    alertname: alert.labels.alertname!,
    workflowId: routed.workflowId,
    action,
  });
  const handle = client.workflow.getHandle(routed.workflowId);
  const at = new Date().toISOString();

  if (alert.status === 'resolved') {
    try {
      await handle.signal(alertResolvedSignal, { at });
      return result('signalled');
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return result('ignored');
      throw err;
    }
  }

  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await client.workflow.start(routed.workflowType, incidentStartOptions(routed, config));
      return result('started');
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    try {
      await handle.signal(alertFiringSignal, { at });
      return result('signalled');
    } catch (err) {
      // The open incident closed between our start and our signal: start a new one.
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  throw new IntakeContention(routed.workflowId);
}

/** How an alert's incident is started: its id, queue, input, summary and search attributes. */
export function incidentStartOptions(routed: RoutedAlert, config: Config) {
  return {
    workflowId: routed.workflowId,
    taskQueue: config.temporal.taskQueue,
    args: [routed.input] as [IncidentInput],
    // A closed incident may be reopened by a new firing; an open one is never duplicated.
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    staticSummary: routed.summary,
    typedSearchAttributes: initialSearchAttributes(routed.input),
  };
}

/** The incident kept opening and closing under us; the caller should answer "retry later". */
export class IntakeContention extends Error {
  constructor(readonly workflowId: string) {
    super(`could not start or signal ${workflowId} after 3 attempts`);
    this.name = 'IntakeContention';
  }
}
