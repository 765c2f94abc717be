import { randomBytes } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Config, ConfigInput } from '../../src/config/schema';
import type { Alert } from '../../src/intake/alertmanager';
import { ingestAlert, type IntakeResult } from '../../src/intake/ingest';
import { statusQuery } from '../../src/workflows/lifecycle/definitions';
import { type IncidentOutcome, type IncidentStatusView } from '../../src/incidents/model';
import { waitFor } from './wait';

/** Every contact of the default escalation matrix, reachable on the given channels. */
export function everyContactOn(...channels: string[]): NonNullable<ConfigInput['contacts']> {
  const names = ['oncall', 'devops-lead', 'management', 'status-page', 'team-lead', 'team-member', 'team'];
  return Object.fromEntries(names.map((name) => [name, { channels }]));
}

export function alert(alertname: string, labels: Record<string, string> = {}, status: Alert['status'] = 'firing'): Alert {
  return {
    status,
    labels: { alertname, service: 'audit-app-backend', severity: 'critical', ...labels },
    annotations: { summary: `${alertname} in a test` },
    startsAt: new Date().toISOString(),
    generatorURL: '',
    fingerprint: randomBytes(8).toString('hex'),
  };
}

export function fire(client: Client, config: Config, firing: Alert): Promise<IntakeResult> {
  return ingestAlert(client, config, firing);
}

export function resolveAlert(client: Client, config: Config, firing: Alert): Promise<IntakeResult> {
  return ingestAlert(client, config, { ...firing, status: 'resolved' });
}

export function incidentStatus(client: Client, workflowId: string): Promise<IncidentStatusView> {
  return client.workflow.getHandle(workflowId).query(statusQuery);
}

/** Polls the status query until `predicate` holds. */
export function waitForStatus(
  client: Client,
  workflowId: string,
  what: string,
  predicate: (status: IncidentStatusView) => boolean,
  timeoutMs = 30_000,
): Promise<IncidentStatusView> {
  return waitFor(
    what,
    async () => {
      const status = await incidentStatus(client, workflowId);
      return predicate(status) ? status : undefined;
    },
    timeoutMs,
  );
}

/** How long a test waits for an incident to close, unless it says otherwise. */
export const OUTCOME_TIMEOUT_MS = 60_000;
/** How long each look at a workflow that did not close in time may take (a query with no worker never answers). */
const REPORT_CALL_MS = 5_000;

/**
 * The incident's outcome once it has closed, waiting at most `timeoutMs`. A wait that runs out fails, naming the
 * workflow and showing where it stands (execution status, phase, step, timeline), instead of hanging the test file.
 */
export async function outcomeOf(client: Client, workflowId: string, { timeoutMs = OUTCOME_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<IncidentOutcome> {
  const handle = client.workflow.getHandle(workflowId);
  const timeUp = new AbortController();
  const timer = setTimeout(() => timeUp.abort(), timeoutMs);
  try {
    // The abort also ends result()'s long poll, so a test that failed here leaves no call pending.
    return (await client.withAbortSignal(timeUp.signal, () => handle.result())) as IncidentOutcome;
  } catch (err) {
    if (!timeUp.signal.aborted) throw err;
    throw new Error(`${workflowId} did not complete within ${timeoutMs} ms.\n${await whereIncidentStands(client, workflowId)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** The workflow's execution status and, if its worker answers the `status` query, its phase, step and timeline. */
export async function whereIncidentStands(client: Client, workflowId: string): Promise<string> {
  const handle = client.workflow.getHandle(workflowId);
  const firstLine = (err: unknown): string => {
    const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
    return err instanceof Error && err.cause ? `${message}: ${firstLine(err.cause)}` : message;
  };
  const lines: string[] = [];
  try {
    const execution = await client.withDeadline(Date.now() + REPORT_CALL_MS, () => handle.describe());
    lines.push(`Execution: ${execution.status.name} (run ${execution.runId}, ${execution.type} on task queue ${execution.taskQueue}, started ${execution.startTime.toISOString()}).`);
  } catch (err) {
    lines.push(`Execution: unknown (describe failed: ${firstLine(err)}).`);
  }
  try {
    const status = await client.withDeadline(Date.now() + REPORT_CALL_MS, () => handle.query(statusQuery));
    const pending = status.pendingApprovals.map((p) => `${p.step} (${p.approvers.join(', ')})`).join(', ') || 'none';
    lines.push(`Phase ${status.phase}, step "${status.currentStep}", escalation level ${status.escalationLevel}, pending approvals: ${pending}.`);
    lines.push('Timeline:', ...status.timeline.map((e) => `  #${e.seq} ${e.at} ${e.kind} by ${e.actor}: ${e.message}`));
  } catch (err) {
    lines.push(`Status query: no answer (${firstLine(err)}).`);
  }
  return lines.join('\n');
}

/** Terminates those of the workflows that are still running (test cleanup); one that never started is fine. */
export async function terminateAll(client: Client, workflowIds: Iterable<string>): Promise<void> {
  for (const workflowId of workflowIds) {
    try {
      const handle = client.workflow.getHandle(workflowId);
      const { status } = await handle.describe();
      if (status.name === 'RUNNING') await handle.terminate('test cleanup');
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
}
