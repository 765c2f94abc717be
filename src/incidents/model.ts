/**
 * What an incident is, as plain types: its input, timeline and status. Shared by the workflows, the activities,
 * intake, the HTTP API and the CLI, so none of them imports another's code for a type. Pure: safe in workflows.
 */
import type { HandsOffSwitch } from '../controls/model';
import type { BackfillInput } from '../backfills/model';
import type { ApprovalKind, PolicyValue, ProcedureName, RunbookName, TargetName } from '../runbooks/catalog';

/** Severities of the escalation matrix, most urgent first. */
export const severities = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof severities)[number];

export interface AlertFacts {
  alertname: string;
  fingerprint: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  generatorURL: string;
}

/** What started the run: an alert, an operator (a deployment, a rollback, a backfill), or a Temporal Schedule. */
export type Trigger =
  /** `notificationId`: the webhook's id of the notification that started it, which also arrives as its first firing signal. */
  | { kind: 'alert'; alert: AlertFacts; notificationId?: string }
  | { kind: 'operator'; by: string; reason?: string }
  | { kind: 'schedule'; scheduleId: string };
export type TriggerKind = Trigger['kind'];

export interface BusinessHours {
  timeZone: string;
  /** Local hour the business day starts. */
  startHour: number;
  /** ISO weekdays: 1 = Monday … 7 = Sunday. */
  days: number[];
}

/** The escalation matrix row for this incident's severity, copied at start so a config change never rewrites a running incident. */
export interface EscalationPolicy {
  severity: Severity;
  responseTimeMs: number;
  escalateTo: string[];
  notify: string[];
  /** Set for `low`: the clock runs to the next business day instead. */
  businessHours?: BusinessHours;
}

/** Non-secret facts about a target, for the timeline and the UI; the worker resolves how to reach it by name. */
export interface TargetFacts {
  container: string;
  /** How long it may take to answer again after a restart. */
  healthyWithinMs: number;
}
export type IncidentTargets = Partial<Record<TargetName, TargetFacts>>;

export interface IncidentInput {
  runbook: RunbookName;
  trigger: Trigger;
  service: string;
  /** Absent for runs no severity applies to (an operator's deployment, a checklist): no escalation ladder runs. */
  escalation?: EscalationPolicy;
  approvers: Partial<Record<ApprovalKind, string[]>>;
  /** Quorum and expiry per kind of approval (config `approvals`); absent: one approver, no time limit. */
  approvals?: Partial<Record<ApprovalKind, ApprovalPolicy>>;
  /** Only the targets the runbook's catalog entry names. */
  targets: IncidentTargets;
  /** The runbook's catalog policy with the config's overrides. */
  policy: Record<string, PolicyValue>;
  /**
   * What the procedures its catalog entry names need from the config, resolved at intake (a workflow cannot read
   * the config); absent for a procedure the config cannot run (no `targets.etl` for a backfill).
   */
  procedures?: ProcedureSetups;
  /** The `security` config section, for runbooks whose catalog entry reads it (`settings`). */
  security?: SecuritySetup;
  /** By alertname: how the runbook that alert routes to would start, for a hand-over (its catalog entry's `handOvers`). */
  handOvers?: Record<string, HandOverSetup>;
}

/** A child incident's input, but for what the hand-over itself says (the alert, the service). */
export type HandOverSetup = Omit<IncidentInput, 'trigger' | 'service' | 'handOvers'> & { workflowType: string };

/** What the security runbook needs from the config: where it blocks, what it never blocks, whom it tells. */
export interface SecuritySetup {
  /** The deny-list, in words (`Redis set blocklist:ips`); the worker knows how to reach it. */
  denyList: string;
  allowList: string[];
  ownAddresses: string[];
  contacts: string[];
}

/**
 * A task for a human on the incident (rotate credentials…): listed in `status`, done by `completeTask`; the incident
 * does not resolve while one is open, unless a human resolves it with a reason (which closes the open ones).
 */
export interface HumanTask {
  id: string;
  title: string;
  addedAt: string;
  /** When it is late: the incident escalates once then. */
  dueAt?: string;
  state: 'open' | 'done' | 'closed';
  overdue: boolean;
  /** Who completed it (or closed it by resolving the incident), when, and their note (or reason). */
  by?: string;
  at?: string;
  note?: string;
}

/** How a runbook starts each procedure: its workflow ID and its input, all but what the runbook decides. */
interface ProcedureSetup {
  /** The backfill's input without its `request` (the range and who asked), which the runbook supplies. */
  backfill: { workflowId: string; input: Omit<BackfillInput, 'request' | 'progress'> };
}
/** Only procedures a runbook may start have a setup (a deployment is an operator's). */
export type ProcedureSetups = { [P in keyof ProcedureSetup & ProcedureName]?: ProcedureSetup[P] };

export const incidentPhases = ['investigating', 'remediating', 'awaiting-approval', 'verifying', 'needs-human', 'resolved'] as const;
export type IncidentPhase = (typeof incidentPhases)[number];

export type TimelineKind =
  | 'detected'
  | 'notified'
  | 'notification-failed'
  | 'finding'
  | 'action'
  | 'undo'
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
  | 'activity-retried'
  | 'follow-up'
  | 'task-added'
  | 'task-done'
  | 'task-overdue'
  | 'resolved'
  | 'note'
  /** A remediation step or approval that the hands-off switch held back: what would have happened. */
  | 'would-have'
  /** Operator controls: the hands-off switch changed, remediation paused, resumed or aborted. */
  | 'control';

export interface TimelineEvent {
  seq: number;
  at: string;
  kind: TimelineKind;
  actor: string;
  message: string;
  data?: Record<string, unknown>;
}

export interface ApprovalPolicy {
  quorum: number;
  /** Unanswered this long (ms), the approval escalates; absent: no time limit. */
  expiresAfter?: number;
  onExpiry: 'reject' | 'escalate';
}

export interface PendingApproval {
  step: string;
  kind: ApprovalKind;
  question: string;
  askedAt: string;
  approvers: string[];
  /** Distinct approvals needed (absent: one), and who has approved so far. */
  quorum?: number;
  approvedBy?: string[];
  /** When it escalates unanswered (absent: never). */
  expiresAt?: string;
}

/** An undo step registered with `onClose`: when it is due (timed ones), and whether it ran. */
export interface UndoView {
  title: string;
  state: 'pending' | 'running' | 'done' | 'failed';
  /** When its durable timer runs it, if the incident has not wound down first; absent: at close. */
  dueAt?: string;
}

export interface IncidentStatusView {
  workflowId: string;
  runbook: RunbookName;
  trigger: Trigger;
  service: string;
  severity?: Severity;
  phase: IncidentPhase;
  currentStep: string;
  escalationLevel: number;
  /** Who the ladder has paged last; absent when no severity applies. */
  escalatedTo?: string;
  pendingApprovals: PendingApproval[];
  acknowledgedBy?: string;
  alertResolved: boolean;
  followUps: string[];
  /** Tasks for humans, open and done; empty for most runbooks. */
  tasks: HumanTask[];
  /** Undo steps registered so far (absent in views of incidents started before undo steps were shown). */
  undos?: UndoView[];
  /** The hands-off switch that holds this incident's remediation back, as last read or signalled; absent when none is on. */
  handsOff?: HandsOffSwitch;
  /** Who paused the remediation and when; absent when it runs. */
  paused?: { by: string; at: string; note?: string };
  /** Who aborted the remediation, when and why; absent unless aborted. */
  aborted?: { by: string; at: string; reason: string };
  timeline: TimelineEvent[];
}

export type IncidentResolution = 'remediated' | 'alert-resolved' | 'resolved-by-human';
export interface IncidentOutcome {
  resolution: IncidentResolution;
  resolvedBy: string;
  escalationLevel: number;
  timeline: TimelineEvent[];
}

/** The alert behind an incident, if an alert started it. */
export function alertOf(trigger: Trigger): AlertFacts | undefined {
  return trigger.kind === 'alert' ? trigger.alert : undefined;
}

/** A few words on what started the run, for the timeline and notifications. */
export function describeTrigger(trigger: Trigger): string {
  switch (trigger.kind) {
    case 'alert':
      return trigger.alert.alertname;
    case 'operator':
      return `started by ${trigger.by}`;
    case 'schedule':
      return `schedule ${trigger.scheduleId}`;
  }
}
