import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Config } from '../config/schema';
import type { IncidentInput, Severity } from '../incidents/model';
import { catalog, type RunbookName } from '../runbooks/catalog';
import { initialSearchAttributes } from '../workflows/searchAttributes';
import { escalationPolicy, runbookInput } from './route';

interface OperatorRun {
  runbook: RunbookName;
  /** Deterministic per target where two runs must not overlap (a deployment, a backfill): Temporal refuses a second open one. */
  workflowId: string;
  by: string;
  reason?: string;
  service: string;
  /** When a severity applies, the escalation ladder runs as for an alert. */
  severity?: Severity;
}

/** Starts a runbook on an operator's word (a deployment, a rollback, a backfill), with the same config an alert's run gets. */
export function operatorInput(run: OperatorRun, config: Config): IncidentInput {
  return {
    ...runbookInput(run.runbook, config),
    trigger: { kind: 'operator', by: run.by, ...(run.reason ? { reason: run.reason } : {}) },
    service: run.service,
    ...(run.severity ? { escalation: escalationPolicy(run.severity, config) } : {}),
  };
}

export async function startOperatorRun(client: Client, config: Config, run: OperatorRun): Promise<WorkflowHandle> {
  const input = operatorInput(run, config);
  return client.workflow.start(catalog[run.runbook].workflowType, {
    workflowId: run.workflowId,
    taskQueue: config.temporal.taskQueue,
    args: [input],
    staticSummary: `${run.runbook} on ${run.service}, started by ${run.by}`,
    typedSearchAttributes: initialSearchAttributes(input),
  });
}
