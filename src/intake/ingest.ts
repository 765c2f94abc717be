import { randomUUID } from 'node:crypto';
import { WorkflowIdReusePolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Config } from '../config/schema';
import type { IncidentInput } from '../incidents/model';
import { alertFiringSignal, alertResolvedSignal } from '../workflows/lifecycle/definitions';
import { signalWithStartSayingIfStarted } from '../temporal/signalWithStart';
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
 * signals it (signal-with-start: atomic under concurrent re-sends, and one round trip either way); a resolved
 * alert signals the open incident or is ignored.
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

  // One round trip whether the incident is new or open; the notification's id tells the workflow which firing
  // signal is the one that started it (not a re-send), and the server says which of the two happened.
  const notificationId = randomUUID();
  const { started } = await signalWithStartSayingIfStarted(client, routed.workflowType, {
    ...incidentStartOptions(withNotificationId(routed, notificationId), config),
    signal: alertFiringSignal,
    signalArgs: [{ at, notificationId }],
  });
  return result(started ? 'started' : 'signalled');
}

function withNotificationId(routed: RoutedAlert, notificationId: string): RoutedAlert {
  const { trigger } = routed.input;
  if (trigger.kind !== 'alert') return routed;
  return { ...routed, input: { ...routed.input, trigger: { ...trigger, notificationId } } };
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
