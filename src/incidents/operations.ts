/** What operators do to incidents, shared by the HTTP API and the CLI. */
import {
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import { z } from 'zod';
import { runbookNames } from '../runbooks/catalog';
import {
  abortUpdate,
  acknowledgeUpdate,
  approveUpdate,
  completeTaskUpdate,
  pauseUpdate,
  rejectUpdate,
  resolveUpdate,
  resumeUpdate,
  statusQuery,
  UpdateRefusal,
} from '../workflows/lifecycle/definitions';
import { incidentPhases, type IncidentStatusView } from '../incidents/model';
import { asRefusal } from '../temporal/errors';
import * as attributes from '../workflows/searchAttributes';

export const incidentStatusFilters = ['open', 'closed', 'all', ...incidentPhases] as const;
export const IncidentStatusFilterSchema = z.enum(incidentStatusFilters).default('open');
export type IncidentStatusFilter = z.infer<typeof IncidentStatusFilterSchema>;

export interface IncidentSummary {
  workflowId: string;
  runId: string;
  runbook?: string;
  alertname?: string;
  severity?: string;
  service?: string;
  status?: string;
  escalationLevel?: number;
  executionStatus: string;
  startTime: string;
  closeTime?: string;
}

/** Why an operation was refused, in words an HTTP status or an exit code can carry. */
export type RefusalReason = 'not-found' | 'not-an-approver' | 'no-such-step' | 'no-such-task' | 'tasks-open' | 'closed' | 'invalid' | 'already' | 'remediation-over';

export class IncidentOperationError extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
    this.name = 'IncidentOperationError';
  }
}

/** The task queue of `runbooks demo`'s own worker: the deployment's task queue plus `-demo`. */
export function demoTaskQueue(taskQueue: string): string {
  return `${taskQueue}-demo`;
}

/**
 * Incidents of this deployment (its task queue, and its demo's) with the given status. Values are from fixed
 * lists or config (the task queue is validated to letters, digits, _ . : -).
 */
export function visibilityQuery(status: IncidentStatusFilter, taskQueue: string): string {
  const runbooks = runbookNames.map((n) => `'${n}'`).join(', ');
  const taskQueues = [taskQueue, demoTaskQueue(taskQueue)].map((q) => `'${q}'`).join(', ');
  const incidents = `${attributes.RunbookName.name} IN (${runbooks}) AND TaskQueue IN (${taskQueues})`;
  switch (status) {
    case 'all':
      return incidents;
    case 'open':
      return `${incidents} AND ExecutionStatus = 'Running'`;
    case 'closed':
      return `${incidents} AND ExecutionStatus != 'Running'`;
    default:
      return `${incidents} AND ${attributes.IncidentStatus.name} = '${status}'`;
  }
}

export async function listIncidents(client: Client, taskQueue: string, status: IncidentStatusFilter, limit = 200): Promise<IncidentSummary[]> {
  const found: IncidentSummary[] = [];
  for await (const execution of client.workflow.list({ query: visibilityQuery(status, taskQueue) })) {
    found.push(summarize(execution));
    if (found.length >= limit) break;
  }
  return found;
}

export async function getIncident(client: Client, workflowId: string): Promise<IncidentStatusView> {
  try {
    return await client.workflow.getHandle(workflowId).query(statusQuery);
  } catch (err) {
    throw translate(err, workflowId);
  }
}

export type IncidentAction =
  | { kind: 'approve' | 'reject'; step: string; by: string; reason?: string }
  | { kind: 'acknowledge'; by: string; note?: string }
  | { kind: 'resolve'; by: string; note?: string; reason?: string }
  | { kind: 'complete-task'; task: string; by: string; note?: string }
  | { kind: 'pause' | 'resume'; by: string; note?: string }
  | { kind: 'abort'; by: string; reason: string };

/** Runs an action as a Temporal Update, so the caller learns at once whether it was accepted. */
export async function actOnIncident(client: Client, workflowId: string, action: IncidentAction): Promise<IncidentStatusView> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    switch (action.kind) {
      case 'approve':
      case 'reject': {
        const update = action.kind === 'approve' ? approveUpdate : rejectUpdate;
        const decision = { step: action.step, by: action.by, ...(action.reason ? { reason: action.reason } : {}) };
        return await handle.executeUpdate(update, { args: [decision] });
      }
      case 'acknowledge':
        return await handle.executeUpdate(acknowledgeUpdate, { args: [{ by: action.by, ...(action.note ? { note: action.note } : {}) }] });
      case 'resolve':
        return await handle.executeUpdate(resolveUpdate, {
          args: [{ by: action.by, ...(action.note ? { note: action.note } : {}), ...(action.reason ? { reason: action.reason } : {}) }],
        });
      case 'complete-task':
        return await handle.executeUpdate(completeTaskUpdate, { args: [{ task: action.task, by: action.by, ...(action.note ? { note: action.note } : {}) }] });
      case 'pause':
      case 'resume':
        return await handle.executeUpdate(action.kind === 'pause' ? pauseUpdate : resumeUpdate, { args: [{ by: action.by, ...(action.note ? { note: action.note } : {}) }] });
      case 'abort':
        return await handle.executeUpdate(abortUpdate, { args: [{ by: action.by, reason: action.reason }] });
    }
  } catch (err) {
    if (err instanceof WorkflowNotFoundError && (await exists(client, workflowId))) {
      throw new IncidentOperationError('closed', `incident ${workflowId} is closed`);
    }
    throw translate(err, workflowId);
  }
}

/** Updates to a finished workflow fail as "not found"; visibility still knows the closed incident. */
async function exists(client: Client, workflowId: string): Promise<boolean> {
  return client.workflow.getHandle(workflowId).describe().then(
    () => true,
    () => false,
  );
}

function translate(err: unknown, workflowId: string): unknown {
  return asRefusal(err, refusalReasons, (reason, message) => new IncidentOperationError(reason, message), `no incident ${workflowId}`);
}

const refusalReasons: Record<string, RefusalReason> = {
  [UpdateRefusal.notAnApprover]: 'not-an-approver',
  [UpdateRefusal.noSuchPendingStep]: 'no-such-step',
  [UpdateRefusal.alreadyClosed]: 'closed',
  [UpdateRefusal.invalidPayload]: 'invalid',
  [UpdateRefusal.noSuchOpenTask]: 'no-such-task',
  [UpdateRefusal.tasksOpen]: 'tasks-open',
  [UpdateRefusal.alreadyInThatState]: 'already',
  [UpdateRefusal.remediationOver]: 'remediation-over',
};

function summarize(execution: WorkflowExecutionInfo): IncidentSummary {
  const sa = execution.typedSearchAttributes;
  const level = sa.get(attributes.EscalationLevel);
  return {
    workflowId: execution.workflowId,
    runId: execution.runId,
    runbook: sa.get(attributes.RunbookName),
    alertname: sa.get(attributes.AlertName),
    severity: sa.get(attributes.Severity),
    service: sa.get(attributes.Service),
    status: sa.get(attributes.IncidentStatus),
    escalationLevel: level === undefined ? undefined : Number(level),
    executionStatus: execution.status.name,
    startTime: execution.startTime.toISOString(),
    closeTime: execution.closeTime?.toISOString(),
  };
}
