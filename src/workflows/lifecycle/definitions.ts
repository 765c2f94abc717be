/**
 * The messages every incident workflow answers to, shared by the workflows and their clients (HTTP API, CLI,
 * tests). One naming rule: a message is named by its verb in camelCase, and a decision that exists both as a
 * Signal (for the Temporal UI and `temporal workflow signal`) and as an Update (for callers that need the answer)
 * has the same name in both forms.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { Abort, HandsOffSwitch, Pause } from '../../controls/model';
import type { IncidentStatusView } from '../../incidents/model';

// Payloads arrive from the UI, `temporal workflow signal`, our CLI and HTTP API: validate them in the workflow too.
const who = z.string().trim().min(1).max(100);
export const ApprovalDecisionSchema = z.strictObject({ step: z.string().min(1).max(100), by: who, reason: z.string().max(1000).optional() });
export const ActorSchema = z.strictObject({ by: who, note: z.string().max(1000).optional() });
/** A resolve; `reason` is needed only while tasks are open, and closes them (the reason is recorded on each). */
export const ResolveSchema = z.strictObject({ by: who, note: z.string().max(1000).optional(), reason: z.string().trim().min(1).max(1000).optional() });
export const CompleteTaskSchema = z.strictObject({ task: z.string().min(1).max(100), by: who, note: z.string().max(1000).optional() });
export type ApprovalDecision = z.infer<typeof ApprovalDecisionSchema>;
export type Actor = z.infer<typeof ActorSchema>;
export type Resolve = z.infer<typeof ResolveSchema>;
export type CompleteTask = z.infer<typeof CompleteTaskSchema>;
/** From the worker: an activity of the incident runs again after a failed or lost attempt (`reason`: that failure). */
export const ActivityRetriedSchema = z.strictObject({
  activityId: z.string().min(1).max(100),
  activityType: z.string().min(1).max(100),
  attempt: z.number().int().min(2),
  reason: z.string().max(1000),
});
export type ActivityRetried = z.infer<typeof ActivityRetriedSchema>;
/**
 * The webhook's note of when it saw the alert and of which notification it was (a firing signal that carries the
 * notification that started the incident is not a re-send). Only compared, never acted on: no validation needed.
 */
interface AlertUpdate {
  at?: string;
  notificationId?: string;
}

/** Signals: fire-and-forget, so the Temporal UI and `temporal workflow signal` can drive an incident. */
export const approveSignal = defineSignal<[ApprovalDecision]>('approve');
export const rejectSignal = defineSignal<[ApprovalDecision]>('reject');
export const acknowledgeSignal = defineSignal<[Actor]>('acknowledge');
export const resolveSignal = defineSignal<[Resolve]>('resolve');
export const completeTaskSignal = defineSignal<[CompleteTask]>('completeTask');
/** From the webhook: Alertmanager sent the same alert again, or sent it resolved. */
export const alertFiringSignal = defineSignal<[AlertUpdate]>('alertFiring');
export const alertResolvedSignal = defineSignal<[AlertUpdate]>('alertResolved');
/** From `PUT /controls` and `runbooks hands-off`: a hands-off switch that concerns this incident changed (validated in the workflow). */
export const handsOffSignal = defineSignal<[HandsOffSwitch]>('handsOff');
/** Pause, resume and abort of the incident's remediation (the escalation ladder keeps running). */
export const pauseSignal = defineSignal<[Pause]>('pause');
export const resumeSignal = defineSignal<[Pause]>('resume');
export const abortSignal = defineSignal<[Abort]>('abort');
/** From the worker: an activity is being retried (src/worker/retryReporter.ts). */
export const activityRetriedSignal = defineSignal<[ActivityRetried]>('activityRetried');

/** Updates: the same decisions, but the caller learns at once whether they were accepted. */
export const approveUpdate = defineUpdate<IncidentStatusView, [ApprovalDecision]>('approve');
export const rejectUpdate = defineUpdate<IncidentStatusView, [ApprovalDecision]>('reject');
export const acknowledgeUpdate = defineUpdate<IncidentStatusView, [Actor]>('acknowledge');
export const resolveUpdate = defineUpdate<IncidentStatusView, [Resolve]>('resolve');
export const completeTaskUpdate = defineUpdate<IncidentStatusView, [CompleteTask]>('completeTask');
export const pauseUpdate = defineUpdate<IncidentStatusView, [Pause]>('pause');
export const resumeUpdate = defineUpdate<IncidentStatusView, [Pause]>('resume');
export const abortUpdate = defineUpdate<IncidentStatusView, [Abort]>('abort');

export const statusQuery = defineQuery<IncidentStatusView>('status');

/** ApplicationFailure types an Update can fail with; the HTTP API and the CLI map them to status and exit codes. */
export const UpdateRefusal = {
  invalidPayload: 'InvalidPayload',
  noSuchPendingStep: 'NoSuchPendingStep',
  notAnApprover: 'NotAnApprover',
  alreadyClosed: 'IncidentClosed',
  noSuchOpenTask: 'NoSuchOpenTask',
  /** A resolve without a reason while tasks are open. */
  tasksOpen: 'TasksOpen',
  /** A pause of a paused incident, a resume of one that is not paused, an abort of one already aborted. */
  alreadyInThatState: 'AlreadyInThatState',
  /** A pause, resume or abort after the runbook's remediation ended (or was aborted). */
  remediationOver: 'RemediationOver',
} as const;
