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

export function outcomeOf(client: Client, workflowId: string): Promise<IncidentOutcome> {
  return client.workflow.getHandle(workflowId).result() as Promise<IncidentOutcome>;
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
