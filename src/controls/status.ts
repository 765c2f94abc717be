/**
 * `runbooks status`: what an operator wants at a glance. Open incidents by phase and severity, the approvals they wait
 * for, the hands-off switches, whether Temporal answers and whether workers poll this deployment's task queue.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Pool } from 'pg';
import type { PendingApproval } from '../incidents/model';
import { getIncident, listIncidents } from '../incidents/operations';
import { readHandsOff } from './handsOff';
import type { HandsOffSwitch } from './model';

export interface DeploymentStatus {
  temporal: { reachable: true; serverVersion?: string };
  /** Pollers of the task queue's workflow tasks seen in the last minutes, by identity. */
  workers: { identity: string; lastSeen?: string }[];
  /** Open incidents, counted by phase and by severity ("none" when no severity applies). */
  incidents: { open: number; byPhase: Record<string, number>; bySeverity: Record<string, number> };
  pendingApprovals: (PendingApproval & { workflowId: string })[];
  /** The switches as stored; `error` when Postgres could not be read. */
  handsOff: { switches: HandsOffSwitch[] } | { error: string };
}

export async function deploymentStatus(client: Client, taskQueue: string, pool: Pool, schema: string): Promise<DeploymentStatus> {
  const system = await client.workflowService.getSystemInfo({});
  const [workers, open, handsOff] = await Promise.all([
    pollersOf(client, taskQueue),
    listIncidents(client, taskQueue, 'open', 10_000),
    readHandsOff(pool, schema).then(
      (switches) => ({ switches }),
      (err: Error) => ({ error: err.message }),
    ),
  ]);
  // Only incidents waiting for approval are asked for their status: one query each.
  const waiting = open.filter((i) => i.status === 'awaiting-approval');
  const views = await Promise.all(waiting.map((i) => getIncident(client, i.workflowId).catch(() => undefined)));
  return {
    temporal: { reachable: true, ...(system.serverVersion ? { serverVersion: system.serverVersion } : {}) },
    workers,
    incidents: { open: open.length, byPhase: countBy(open, (i) => i.status ?? 'unknown'), bySeverity: countBy(open, (i) => i.severity ?? 'none') },
    pendingApprovals: views.flatMap((v) => (v ? v.pendingApprovals.map((p) => ({ ...p, workflowId: v.workflowId })) : [])),
    handsOff,
  };
}

async function pollersOf(client: Client, taskQueue: string): Promise<DeploymentStatus['workers']> {
  const described = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (described.pollers ?? []).map((p) => ({
    identity: p.identity ?? 'unknown',
    ...(p.lastAccessTime?.seconds ? { lastSeen: new Date(Number(p.lastAccessTime.seconds) * 1000).toISOString() } : {}),
  }));
}

function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}
