/**
 * Runbook "Monitoring Checklist" — **Monthly**, started by a Temporal Schedule (`runbooks schedules apply`): the
 * human items, each a task a person signs off (`runbooks complete-task <id> --task T --note N`, the `completeTask`
 * Update), escalated when not all are signed off within `signOffDays` (with a severity on the schedule, up its
 * ladder). The run stays open until each is signed off, or a human resolves it with a reason (which closes the
 * rest); the report lists who signed off what.
 *   - Review and update runbook
 *   - Conduct incident response drill
 *   - Review capacity planning
 *   - Update documentation
 *   - Rotate credentials, review access (the issue's items beside the runbook's)
 */
import { condition } from '@temporalio/workflow';
import type { IncidentInput, IncidentOutcome } from '../incidents/model';
import { policyOf } from '../runbooks/catalog';
import { runChecklist } from './checklist/checklist';

const MONTHLY_TASKS = [
  { id: 'review-runbook', title: 'Review and update the runbook' },
  { id: 'incident-drill', title: 'Conduct an incident response drill' },
  { id: 'capacity-planning', title: 'Review capacity planning' },
  { id: 'update-documentation', title: 'Update documentation' },
  { id: 'rotate-credentials', title: 'Rotate credentials' },
  { id: 'review-access', title: 'Review access' },
] as const;

const DAY_MS = 86_400_000;

export async function monthlyChecklist(input: IncidentInput): Promise<IncidentOutcome> {
  const policy = policyOf('monthly-checklist', input.policy);
  return runChecklist(input, async (rb, checklist) => {
    for (const task of MONTHLY_TASKS) rb.task(task.id, task.title, { dueInMs: policy.signOffDays * DAY_MS });
    await condition(() => rb.tasks().every((t) => t.state !== 'open'));
    for (const task of rb.tasks()) {
      const evidence = { task: task.id, by: task.by ?? null, at: task.at ?? null, note: task.note ?? null, overdue: task.overdue };
      if (task.state === 'done') checklist.recordSignOff(task.title, 'signed-off', `Signed off by ${task.by}${task.note ? `: ${task.note}` : ''}${task.overdue ? ' (late)' : ''}.`, evidence);
      else checklist.recordSignOff(task.title, 'skipped', `Closed without sign-off by ${task.by}: ${task.note}.`, evidence);
    }
  });
}
