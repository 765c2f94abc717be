/**
 * The incident contract: what every incident workflow takes, reports and answers to.
 * Shared by workflows, the worker, the HTTP API, the CLI and the tests.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { RunbookName, Severity, StepKind } from '../../config/schema';

export type { RunbookName, Severity, StepKind };

export interface AlertFacts {
  alertname: string;
  fingerprint: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  generatorURL: string;
}

/** The escalation matrix row for this incident's severity, copied at start so a config change never rewrites a running incident. */
export interface EscalationPolicy {
  responseTimeMs: number;
  escalateTo: string[];
  notify: string[];
  /** Set for `low`: the clock runs to the next business day instead. */
  businessHours?: { timeZone: string; startHour: number; days: number[] };
}

/** Non-secret facts about what the runbook acts on; connection secrets stay in the worker's config. */
export interface IncidentTargets {
  backend?: { container: string; healthUrl: string; healthyWithinMs: number };
  redis?: { container: string; healthyWithinMs: number };
}

export interface IncidentInput {
  runbook: RunbookName;
  alert: AlertFacts;
  severity: Severity;
  service: string;
  escalation: EscalationPolicy;
  approvers: Partial<Record<StepKind, string[]>>;
  targets: IncidentTargets;
}

export const incidentPhases = [
  'investigating',
  'remediating',
  'awaiting-approval',
  'verifying',
  'needs-human',
  'resolved',
] as const;
export type IncidentPhase = (typeof incidentPhases)[number];

export type TimelineKind =
  | 'detected'
  | 'notified'
  | 'notification-failed'
  | 'finding'
  | 'action'
  | 'approval-requested'
  | 'approved'
  | 'rejected'
  | 'approval-refused'
  | 'approval-cancelled'
  | 'escalated'
  | 'acknowledged'
  | 'ack-stale'
  | 'alert-refired'
  | 'alert-resolved'
  | 'follow-up'
  | 'resolved'
  | 'note';

export interface TimelineEvent {
  seq: number;
  at: string;
  kind: TimelineKind;
  actor: string;
  message: string;
  data?: Record<string, unknown>;
}

export interface PendingApproval {
  step: string;
  kind: StepKind;
  question: string;
  askedAt: string;
  approvers: string[];
}

export interface IncidentStatusView {
  workflowId: string;
  runbook: RunbookName;
  alertname: string;
  fingerprint: string;
  service: string;
  severity: Severity;
  phase: IncidentPhase;
  currentStep: string;
  escalationLevel: number;
  escalatedTo: string;
  pendingApprovals: PendingApproval[];
  acknowledgedBy?: string;
  alertResolved: boolean;
  followUps: string[];
  timeline: TimelineEvent[];
}

export type IncidentResolution = 'remediated' | 'alert-resolved' | 'resolved-by-human';
export interface IncidentOutcome {
  resolution: IncidentResolution;
  resolvedBy: string;
  escalationLevel: number;
  timeline: TimelineEvent[];
}

// Payloads arrive from the UI, `temporal workflow signal`, our CLI and HTTP API: validate them in the workflow too.
const who = z.string().trim().min(1).max(100);
export const ApprovalDecisionSchema = z.strictObject({ step: z.string().min(1).max(100), by: who, reason: z.string().max(1000).optional() });
export const ActorSchema = z.strictObject({ by: who, note: z.string().max(1000).optional() });
export const AlertUpdateSchema = z.strictObject({ at: z.string().max(64).optional() });
export type ApprovalDecision = z.infer<typeof ApprovalDecisionSchema>;
export type Actor = z.infer<typeof ActorSchema>;
export type AlertUpdate = z.infer<typeof AlertUpdateSchema>;

/** Signals: fire-and-forget, so the Temporal UI and `temporal workflow signal` can drive an incident. */
export const approveSignal = defineSignal<[ApprovalDecision]>('approve');
export const rejectSignal = defineSignal<[ApprovalDecision]>('reject');
export const acknowledgeSignal = defineSignal<[Actor]>('ack');
export const resolveSignal = defineSignal<[Actor]>('resolve');
/** From the webhook: Alertmanager sent the same alert again, or sent it resolved. */
export const alertFiringSignal = defineSignal<[AlertUpdate]>('alertFiring');
export const alertResolvedSignal = defineSignal<[AlertUpdate]>('alertResolved');

/** Updates: the same decisions, but the caller learns at once whether they were accepted. */
export const approveUpdate = defineUpdate<IncidentStatusView, [ApprovalDecision]>('approveStep');
export const rejectUpdate = defineUpdate<IncidentStatusView, [ApprovalDecision]>('rejectStep');
export const acknowledgeUpdate = defineUpdate<IncidentStatusView, [Actor]>('acknowledge');
export const resolveUpdate = defineUpdate<IncidentStatusView, [Actor]>('resolveIncident');

export const statusQuery = defineQuery<IncidentStatusView>('status');

/** ApplicationFailure types an Update can fail with; the HTTP API maps them to status codes. */
export const UpdateRefusal = {
  invalidPayload: 'InvalidPayload',
  noSuchPendingStep: 'NoSuchPendingStep',
  notAnApprover: 'NotAnApprover',
  alreadyClosed: 'IncidentClosed',
} as const;
