/**
 * The Temporal Schedules the config asks for (`schedules`), as `ensureSchedules` takes them: each starts its runbook
 * with a `schedule` trigger and the same config-derived input an alert's run gets (approvers, targets, policy,
 * hand-overs). Created, updated and deleted by `runbooks schedules apply`.
 */
import type { CalendarSpec } from '@temporalio/client';
import type { Config, ScheduleConfig } from '../config/schema';
import type { IncidentInput } from '../incidents/model';
import type { ManagedSchedule } from '../temporal/schedules';
import { escalationPolicy, runbookInput } from './route';

/** Unique per deployment (task queue) in a namespace, so two deployments never overwrite each other's. */
export function scheduleIdOf(config: Config, name: string): string {
  return `${config.temporal.taskQueue}-${name}`;
}

export function configuredSchedules(config: Config): ManagedSchedule[] {
  return Object.entries(config.schedules).map(([name, schedule]) => {
    const scheduleId = scheduleIdOf(config, name);
    const input: IncidentInput = {
      ...runbookInput(schedule.runbook, config),
      trigger: { kind: 'schedule', scheduleId },
      service: schedule.service,
      ...(schedule.severity ? { escalation: escalationPolicy(schedule.severity, config) } : {}),
    };
    return { scheduleId, spec: specOf(schedule), input, catchupWindow: schedule.catchupWindow };
  });
}

function specOf(schedule: ScheduleConfig) {
  const timezone = schedule.timeZone;
  if (schedule.cron !== undefined) return { cronExpressions: [schedule.cron].flat(), timezone };
  return { calendars: [schedule.calendar ?? []].flat() as CalendarSpec[], timezone };
}
