/**
 * Tells an incident when one of its activities runs again after a failed or lost attempt, so the timeline says
 * "the step retried, and why" — the workflow itself only ever sees an activity's last outcome.
 */
import type { Client } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { AuditActivities } from '../activities/audit';
import { activityRetriedSignal, type ActivityRetried } from '../workflows/lifecycle/definitions';

/** Bounds what a retry waits for its report: the report helps a human, the step matters more. */
const REPORT_TIMEOUT_MS = 3_000;
const REASON_MAX_CHARS = 300;

/**
 * The incident's own bookkeeping is not a step of the runbook: its retries stay off the timeline (the audit write
 * also runs after the incident closed, when nothing more can be recorded).
 */
const BOOKKEEPING: ReadonlySet<string> = new Set<keyof AuditActivities>(['recordTimeline']);

/** Whether a retry of this activity type goes on the incident's timeline. */
export function reportsRetriesOf(activityType: string): boolean {
  return !BOOKKEEPING.has(activityType);
}

export function retryReporter(client: Client, logger: Logger): () => { inbound: ActivityInboundCallsInterceptor } {
  return () => ({ inbound: new ReportRetries(client, logger) });
}

class ReportRetries implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
  ) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const { attempt, isLocal, workflowExecution, activityId, activityType } = Context.current().info;
    if (attempt > 1 && !isLocal && workflowExecution && reportsRetriesOf(activityType)) {
      // Reported before the attempt runs, so the signal lands in history before the activity's result does.
      await this.client
        .withDeadline(Date.now() + REPORT_TIMEOUT_MS, () => this.report(workflowExecution, { activityId, activityType, attempt }))
        .catch((err: unknown) =>
        this.logger.warn({ err, workflowId: workflowExecution.workflowId, activityType, attempt }, 'could not report an activity retry to its incident'),
      );
    }
    return next(input);
  }

  private async report(execution: { workflowId: string; runId: string }, retry: Omit<ActivityRetried, 'reason'>): Promise<void> {
    const handle = this.client.workflow.getHandle(execution.workflowId, execution.runId);
    const { raw } = await handle.describe();
    const pending = raw.pendingActivities?.find((a) => a.activityId === retry.activityId);
    const failure = pending?.lastFailure;
    const reason = (failure?.cause?.message ? `${failure.message}: ${failure.cause.message}` : failure?.message) || 'its worker was lost (timed out)';
    await handle.signal(activityRetriedSignal, { ...retry, reason: collapseWhitespace(reason).slice(0, REASON_MAX_CHARS) });
  }
}

function collapseWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
