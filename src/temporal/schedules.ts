/**
 * Temporal Schedules created from configuration, idempotently: a missing one is created, a changed one updated,
 * one this deployment made that the configuration no longer has is deleted. Safe on every start, next to the
 * search-attribute registration. Schedules are this deployment's when their memo names its task queue.
 */
import { createHash } from 'node:crypto';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleHandle, type ScheduleSpec } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { IncidentInput } from '../incidents/model';
import { catalog } from '../runbooks/catalog';

export interface ManagedSchedule {
  scheduleId: string;
  /** When it fires: calendars or cron strings, in `spec.timezone`. */
  spec: ScheduleSpec;
  /** The run it starts: a runbook with a `schedule` trigger. */
  input: IncidentInput;
  /** How far back a schedule catches up after an outage (Temporal's catch-up window), e.g. '1h' or ms. */
  catchupWindow?: Duration;
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
    const fingerprint = scheduleNote(schedule, taskQueue);
    const options = scheduleOptions(schedule, taskQueue, fingerprint);
    const handle = client.schedule.getHandle(schedule.scheduleId);
    let existing = await stateOf(handle);
    if (!existing) {
      try {
        await client.schedule.create({ scheduleId: schedule.scheduleId, ...options, memo: { managedBy: MANAGED_BY, taskQueue } });
        changes.created.push(schedule.scheduleId);
        continue;
      } catch (err) {
        // Another apply created it between our look and our create: go on as if we had found it.
        if (!(err instanceof ScheduleAlreadyRunning)) throw err;
        existing = await stateOf(handle);
      }
    }
    const note = existing?.note;
    if (note === fingerprint) {
      changes.unchanged.push(schedule.scheduleId);
      continue;
    }
    await handle.update(() => options);
    changes.updated.push(schedule.scheduleId);
  }
  const wanted = new Set(desired.map((s) => s.scheduleId));
  for await (const summary of client.schedule.list()) {
    if (!isManagedBy(summary.memo, taskQueue) || wanted.has(summary.scheduleId)) continue;
    await client.schedule.getHandle(summary.scheduleId).delete();
    changes.deleted.push(summary.scheduleId);
  }
  return changes;
}

/** The schedule's state (its note), or undefined when there is no such schedule. */
async function stateOf(handle: ScheduleHandle): Promise<{ note?: string } | undefined> {
  try {
    return (await handle.describe()).state;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
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

/** The note a schedule carries while it is what the configuration says (`runbooks schedules list` compares it). */
export function scheduleNote(schedule: ManagedSchedule, taskQueue: string): string {
  return `${MANAGED_BY} config ${versionOf(schedule, taskQueue)}`;
}

/** True for a schedule this deployment (its task queue) made, by its memo. */
export function isManagedBy(memo: Record<string, unknown> | undefined, taskQueue: string): boolean {
  return memo?.managedBy === MANAGED_BY && memo.taskQueue === taskQueue;
}

/** A digest of what the schedule does, kept in its note: a config change shows up as a different digest. */
function versionOf(schedule: ManagedSchedule, taskQueue: string): string {
  const canonical = JSON.stringify({ spec: schedule.spec, input: schedule.input, catchupWindow: schedule.catchupWindow, taskQueue });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** How a schedule stands against the configuration: as configured, differs (apply updates it), not applied yet, or no longer configured (apply deletes it). */
export type ScheduleState = 'applied' | 'differs' | 'not-applied' | 'not-configured';

export interface ScheduleView {
  scheduleId: string;
  state: ScheduleState;
  workflowType?: string;
  /** When it fires as Temporal describes it (cron expressions come back as calendars), and the time zone. */
  spec?: { calendars: string[]; timeZone?: string };
  nextRuns: string[];
  lastRun?: { workflowId: string; at: string };
  paused?: boolean;
}

/** The configured schedules (described one by one) and any other of this deployment's (from the list, which lags a little). */
export async function describeSchedules(client: Client, taskQueue: string, desired: ManagedSchedule[]): Promise<ScheduleView[]> {
  const views: ScheduleView[] = [];
  for (const schedule of desired) {
    const described = await describeOne(client, schedule.scheduleId);
    if (!described) {
      views.push({ scheduleId: schedule.scheduleId, state: 'not-applied', nextRuns: [] });
      continue;
    }
    views.push({ ...described.view, state: described.note === scheduleNote(schedule, taskQueue) ? 'applied' : 'differs' });
  }
  const wanted = new Set(desired.map((s) => s.scheduleId));
  for await (const summary of client.schedule.list()) {
    if (!isManagedBy(summary.memo, taskQueue) || wanted.has(summary.scheduleId)) continue;
    const described = await describeOne(client, summary.scheduleId);
    if (described) views.push({ ...described.view, state: 'not-configured' });
  }
  return views;
}

async function describeOne(client: Client, scheduleId: string): Promise<{ view: Omit<ScheduleView, 'state'>; note?: string } | undefined> {
  let described;
  try {
    described = await client.schedule.getHandle(scheduleId).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
  const last = described.info.recentActions.at(-1);
  const view = {
    scheduleId,
    workflowType: described.action.workflowType,
    spec: {
      calendars: (described.spec.calendars ?? []).map((c) => JSON.stringify(c)),
      ...(described.spec.timezone ? { timeZone: described.spec.timezone } : {}),
    },
    nextRuns: described.info.nextActionTimes.map((d) => d.toISOString()),
    ...(last ? { lastRun: { workflowId: last.action.workflow.workflowId, at: last.takenAt.toISOString() } } : {}),
    paused: described.state.paused,
  };
  return { view, note: described.state.note };
}
