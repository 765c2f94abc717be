/**
 * Temporal Schedules created from configuration, idempotently: a missing one is created, a changed one updated,
 * one this deployment made that the configuration no longer has is deleted. Safe on every start, next to the
 * search-attribute registration. Schedules are this deployment's when their memo names its task queue.
 */
import { createHash } from 'node:crypto';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleSpec } from '@temporalio/client';
import type { IncidentInput } from '../incidents/model';
import { catalog } from '../runbooks/catalog';

export interface ManagedSchedule {
  scheduleId: string;
  /** When it fires: calendars or cron strings, in `spec.timezone`. */
  spec: ScheduleSpec;
  /** The run it starts: a runbook with a `schedule` trigger. */
  input: IncidentInput;
  /** How far back a schedule catches up after an outage (Temporal's catch-up window), e.g. '1h'. */
  catchupWindow?: string;
}

interface ScheduleChanges {
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
}

const MANAGED_BY = 'runbooks';

export async function ensureSchedules(client: Client, taskQueue: string, desired: ManagedSchedule[]): Promise<ScheduleChanges> {
  const changes: ScheduleChanges = { created: [], updated: [], deleted: [], unchanged: [] };
  for (const schedule of desired) {
    const fingerprint = `${MANAGED_BY} config ${versionOf(schedule, taskQueue)}`;
    const options = scheduleOptions(schedule, taskQueue, fingerprint);
    const handle = client.schedule.getHandle(schedule.scheduleId);
    let note: string | undefined;
    try {
      note = (await handle.describe()).state.note;
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      await client.schedule.create({ scheduleId: schedule.scheduleId, ...options, memo: { managedBy: MANAGED_BY, taskQueue } });
      changes.created.push(schedule.scheduleId);
      continue;
    }
    if (note === fingerprint) {
      changes.unchanged.push(schedule.scheduleId);
      continue;
    }
    await handle.update(() => options);
    changes.updated.push(schedule.scheduleId);
  }
  const wanted = new Set(desired.map((s) => s.scheduleId));
  for await (const summary of client.schedule.list()) {
    const memo = summary.memo as { managedBy?: string; taskQueue?: string } | undefined;
    if (memo?.managedBy !== MANAGED_BY || memo.taskQueue !== taskQueue || wanted.has(summary.scheduleId)) continue;
    await client.schedule.getHandle(summary.scheduleId).delete();
    changes.deleted.push(summary.scheduleId);
  }
  return changes;
}

function scheduleOptions(schedule: ManagedSchedule, taskQueue: string, note: string) {
  return {
    spec: schedule.spec,
    action: {
      type: 'startWorkflow' as const,
      workflowType: catalog[schedule.input.runbook].workflowType,
      workflowId: schedule.scheduleId,
      taskQueue,
      args: [schedule.input],
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: schedule.catchupWindow ?? '1h' },
    state: { note, paused: false },
  };
}

/** A digest of what the schedule does, kept in its note: a config change shows up as a different digest. */
function versionOf(schedule: ManagedSchedule, taskQueue: string): string {
  const canonical = JSON.stringify({ spec: schedule.spec, input: schedule.input, catchupWindow: schedule.catchupWindow, taskQueue });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
