/**
 * The state every incident shares, whatever its runbook: timeline, phase and current step, approvals,
 * acknowledgement, resolution, and how they show in the Temporal UI (search attributes, current details).
 * Runbooks never see this class: they get a RunbookContext (runbookContext.ts).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { z } from 'zod';
import type { IncidentRecord } from '../../activities/audit';
import {
  alertOf,
  describeTrigger,
  type IncidentInput,
  type IncidentPhase,
  type IncidentStatusView,
  type PendingApproval,
  type TimelineEvent,
  type TimelineKind,
  type UndoView,
} from '../../incidents/model';
import type { ApprovalKind } from '../../runbooks/catalog';
import { notify } from '../activityProxies';
import * as attributes from '../searchAttributes';
import {
  acknowledgeSignal,
  acknowledgeUpdate,
  ActorSchema,
  alertFiringSignal,
  alertResolvedSignal,
  ApprovalDecisionSchema,
  approveSignal,
  approveUpdate,
  rejectSignal,
  rejectUpdate,
  resolveSignal,
  resolveUpdate,
  statusQuery,
  UpdateRefusal,
  type Actor,
  type ApprovalDecision,
} from './definitions';

/** Thrown at a guarded step once the alert resolved or a human resolved the incident: nothing destructive starts after that. */
export class IncidentClosing extends Error {
  override readonly name = 'IncidentClosing';
}

const SYSTEM_ACTOR = 'runbooks';

export interface RecordOptions {
  actor?: string;
  data?: Record<string, unknown>;
}

export class Incident {
  readonly workflowId = workflowInfo().workflowId;
  private readonly openedAt = new Date().toISOString();
  private readonly timeline: TimelineEvent[] = [];
  private readonly pending = new Map<string, PendingApproval>();
  private readonly decisions = new Map<string, boolean>();
  private readonly followUps: string[] = [];
  private phase: IncidentPhase = 'investigating';
  private currentStep = 'Detected';
  private closedAt?: string;
  escalationLevel = 0;
  acknowledgedBy?: string;
  /** Counts acknowledgements so the escalation ladder sees a new one even from the same person. */
  acknowledgements = 0;
  alertResolved = false;
  resolvedBy?: Actor;
  private windingDown = false;
  private phaseBeforeApproval: IncidentPhase = 'investigating';
  private stepBeforeApproval = '';
  private undoViews: () => UndoView[] = () => [];

  constructor(readonly input: IncidentInput) {
    this.installHandlers();
    this.showInUi();
  }

  /** Where the status view reads the undo steps from (the incident's UndoStack). */
  showUndos(views: () => UndoView[]): void {
    this.undoViews = views;
  }

  /** Remediation finished, the alert resolved, or a human resolved the incident: nothing new starts. */
  get closeRequested(): boolean {
    return this.windingDown || this.alertResolved || this.resolvedBy !== undefined;
  }

  windDown(): void {
    this.windingDown = true;
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  /** Whoever the ladder paged last; undefined when no severity applies (no ladder). */
  get escalatedTo(): string | undefined {
    const ladder = this.input.escalation?.escalateTo;
    return ladder?.[Math.min(this.escalationLevel, ladder.length - 1)];
  }

  get timelineLength(): number {
    return this.timeline.length;
  }

  eventsFrom(seq: number): TimelineEvent[] {
    return this.timeline.slice(seq);
  }

  record(kind: TimelineKind, message: string, options: RecordOptions = {}): void {
    this.timeline.push({
      seq: this.timeline.length,
      at: new Date().toISOString(),
      kind,
      actor: options.actor ?? SYSTEM_ACTOR,
      message,
      ...(options.data ? { data: options.data } : {}),
    });
  }

  setPhase(phase: IncidentPhase, currentStep = this.currentStep): void {
    this.phase = phase;
    this.currentStep = currentStep;
    this.showInUi();
  }

  /** Names the step in the UI while it runs; read-only steps may run after the alert resolved. */
  async step<T>(title: string, run: () => Promise<T>): Promise<T> {
    this.currentStep = title;
    this.showInUi();
    return run();
  }

  /** A step that changes the world: refused once the incident is winding down. */
  async act<T>(title: string, run: () => Promise<T>): Promise<T> {
    this.throwIfClosing();
    if (this.phase !== 'remediating') this.setPhase('remediating');
    return this.step(title, run);
  }

  /**
   * Asks the configured approvers before a dangerous step and waits; the escalation ladder keeps running
   * meanwhile. True when approved, false when rejected; throws IncidentClosing if the incident winds down first.
   */
  async approval(kind: ApprovalKind, question: string): Promise<boolean> {
    this.throwIfClosing();
    const approvers = this.input.approvers[kind] ?? [];
    if (approvers.length === 0) {
      this.record('note', `No approvers are configured for "${kind}"; the step cannot run.`, { data: { kind } });
      return false;
    }
    const step = this.nextStepId(kind);
    this.pending.set(step, { step, kind, question, askedAt: new Date().toISOString(), approvers });
    this.record('approval-requested', `${question} (step "${step}"; approvers: ${approvers.join(', ')})`, { data: { step, kind } });
    this.phaseBeforeApproval = this.phase;
    this.stepBeforeApproval = this.currentStep;
    this.setPhase('awaiting-approval', `Approve "${step}": ${question}`);
    await this.tell(
      this.escalatedTo ? [this.escalatedTo] : [],
      `Approval needed on ${this.workflowId}: ${question} — approve step "${step}" (runbooks approve ${this.workflowId} --step ${step})`,
    );
    await condition(() => this.decisions.has(step) || this.closeRequested);
    if (!this.decisions.has(step)) {
      this.pending.delete(step);
      this.record('approval-cancelled', `Approval for "${step}" cancelled: the incident is closing.`, { data: { step } });
      this.showInUi();
      throw new IncidentClosing(step);
    }
    return this.decisions.get(step)!;
  }

  /** Prevention notes from the runbook and anything learned on the way, for the post-incident review. */
  followUp(text: string): void {
    this.followUps.push(text);
    this.record('follow-up', text);
  }

  /** Notifies contacts; a failed notification is recorded, never fatal to the response. */
  async tell(contacts: string[], text: string): Promise<void> {
    const unique = [...new Set(contacts)];
    if (unique.length === 0) return;
    try {
      await notify.executeWithOptions({ summary: `Notify ${unique.join(', ')}` }, [
        { workflowId: this.workflowId, contacts: unique, severity: this.input.escalation?.severity, text },
      ]);
      this.record('notified', text, { data: { contacts: unique } });
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      this.record('notification-failed', `Could not notify ${unique.join(', ')}: ${err.cause?.message ?? err.message}`, {
        data: { contacts: unique },
      });
    }
  }

  /** Climbs one level of the ladder and pages whoever is there now. */
  async escalate(reason: string): Promise<void> {
    this.escalationLevel += 1;
    const contact = this.escalatedTo;
    this.record(
      'escalated',
      contact ? `${reason}: escalated to ${contact} (level ${this.escalationLevel}).` : `${reason}: handed to a human (no severity applies, so nobody is paged).`,
      { data: { level: this.escalationLevel, ...(contact ? { contact } : {}) } },
    );
    this.showInUi();
    if (contact) await this.tell([contact], `${this.headline()}: ${reason} — escalated to you (level ${this.escalationLevel}, ${this.workflowId})`);
  }

  /** `[CRITICAL] APIDown on backend` (`prefix` replaces the severity), or the runbook and what started it when no alert did. */
  headline(prefix?: string): string {
    const { escalation, service, trigger, runbook } = this.input;
    const what = alertOf(trigger)?.alertname ?? `${runbook} (${describeTrigger(trigger)})`;
    const tag = prefix ?? escalation?.severity.toUpperCase();
    return `${tag ? `[${tag}] ` : ''}${what} on ${service}`;
  }

  ackWentStale(): void {
    this.record('ack-stale', `Acknowledged by ${this.acknowledgedBy} but still unresolved: escalating again.`);
    this.acknowledgedBy = undefined;
  }

  close(message: string, actor: string): void {
    this.closedAt = new Date().toISOString();
    this.currentStep = 'Closed';
    this.record('resolved', message, { actor });
    this.setPhase('resolved');
  }

  auditRecord(): IncidentRecord {
    const { runId } = workflowInfo();
    const { runbook, escalation, service, trigger } = this.input;
    const alert = alertOf(trigger);
    return {
      workflowId: this.workflowId,
      runId,
      runbook,
      trigger: trigger.kind,
      triggeredBy: triggeredBy(this.input),
      ...(alert ? { alertname: alert.alertname, fingerprint: alert.fingerprint } : {}),
      ...(escalation ? { severity: escalation.severity } : {}),
      service,
      phase: this.phase,
      openedAt: this.openedAt,
      closedAt: this.closedAt,
    };
  }

  status(): IncidentStatusView {
    const { runbook, escalation, service, trigger } = this.input;
    return {
      workflowId: this.workflowId,
      runbook,
      trigger,
      service,
      ...(escalation ? { severity: escalation.severity } : {}),
      phase: this.phase,
      currentStep: this.currentStep,
      escalationLevel: this.escalationLevel,
      escalatedTo: this.escalatedTo,
      pendingApprovals: [...this.pending.values()],
      acknowledgedBy: this.acknowledgedBy,
      alertResolved: this.alertResolved,
      followUps: [...this.followUps],
      undos: this.undoViews(),
      timeline: [...this.timeline],
    };
  }

  private throwIfClosing(): void {
    if (this.closeRequested) throw new IncidentClosing(this.currentStep);
  }

  private nextStepId(kind: ApprovalKind): string {
    const earlier = this.timeline.filter((e) => e.kind === 'approval-requested' && e.data?.kind === kind).length;
    return earlier === 0 ? kind : `${kind}-${earlier + 1}`;
  }

  private showInUi(): void {
    const { runbook, escalation, service, trigger } = this.input;
    const alert = alertOf(trigger);
    const pairs: SearchAttributeUpdatePair[] = [
      { key: attributes.RunbookName, value: runbook },
      { key: attributes.Service, value: service },
      { key: attributes.IncidentStatus, value: this.phase },
      { key: attributes.EscalationLevel, value: String(this.escalationLevel) },
    ];
    if (alert) pairs.push({ key: attributes.AlertName, value: alert.alertname });
    if (escalation) pairs.push({ key: attributes.Severity, value: escalation.severity });
    upsertSearchAttributes(pairs);
    const waiting = [...this.pending.values()].map((p) => `\`${p.step}\` (${p.approvers.join(', ')})`);
    const paged = this.escalatedTo
      ? `Escalated to **${this.escalatedTo}** (level ${this.escalationLevel})${this.acknowledgedBy ? `, acknowledged by ${this.acknowledgedBy}` : ''}`
      : '';
    setCurrentDetails(
      [`**${this.phase}** — ${this.currentStep}`, paged, waiting.length > 0 ? `Waiting for approval: ${waiting.join(', ')}` : '']
        .filter(Boolean)
        .join('\n\n'),
    );
  }

  private installHandlers(): void {
    setHandler(statusQuery, () => this.status(), { description: 'Phase, current step, escalation, pending approvals and timeline.' });

    // Descriptions show in the Temporal UI's signal and update forms, so a human there knows what to send.
    const decision = (verb: string) => `${verb} a pending step: {"step": "rollback", "by": "<approver>", "reason"?: "…"}`;
    setHandler(approveSignal, (raw) => void this.decide(raw, true, false), { description: decision('Approve') });
    setHandler(rejectSignal, (raw) => void this.decide(raw, false, false), { description: decision('Reject') });
    setHandler(approveUpdate, (d) => this.decide(d, true, true), { validator: (d) => this.validateDecision(d), description: decision('Approve') });
    setHandler(rejectUpdate, (d) => this.decide(d, false, true), { validator: (d) => this.validateDecision(d), description: decision('Reject') });

    const ackDescription = 'Acknowledge: stops the escalation clock. {"by": "<name>", "note"?: "…"}';
    const resolveDescription = 'Mark resolved: stops remediation and closes the incident. {"by": "<name>", "note"?: "…"}';
    setHandler(acknowledgeSignal, (raw) => void this.acknowledge(raw), { description: ackDescription });
    setHandler(acknowledgeUpdate, (actor) => this.acknowledge(actor), { validator: (a) => this.validateActor(a), description: ackDescription });
    setHandler(resolveSignal, (raw) => void this.resolveByHuman(raw), { description: resolveDescription });
    setHandler(resolveUpdate, (actor) => this.resolveByHuman(actor), { validator: (a) => this.validateActor(a), description: resolveDescription });

    setHandler(
      alertFiringSignal,
      () => {
        if (!this.closed) this.record('alert-refired', 'Alertmanager sent the alert again; it is still firing.', { actor: 'alertmanager' });
      },
      { description: 'From the webhook: Alertmanager re-sent the firing alert.' },
    );
    setHandler(
      alertResolvedSignal,
      () => {
        if (this.alertResolved || this.closed) return;
        this.alertResolved = true;
        this.record('alert-resolved', 'Alertmanager reports the alert resolved.', { actor: 'alertmanager' });
      },
      { description: 'From the webhook: the alert resolved; nothing destructive starts after it.' },
    );
  }

  private validateDecision(raw: ApprovalDecision): void {
    const decision = parseOrRefuse(ApprovalDecisionSchema, raw);
    if (this.closed) throw ApplicationFailure.nonRetryable('the incident is closed', UpdateRefusal.alreadyClosed);
    if (!this.pending.has(decision.step)) {
      throw ApplicationFailure.nonRetryable(`no pending step "${decision.step}"`, UpdateRefusal.noSuchPendingStep);
    }
  }

  private validateActor(raw: Actor): void {
    parseOrRefuse(ActorSchema, raw);
    if (this.closed) throw ApplicationFailure.nonRetryable('the incident is closed', UpdateRefusal.alreadyClosed);
  }

  /** Signals can only be recorded when refused; Updates also tell the caller by failing. */
  private decide(raw: unknown, approved: boolean, strict: boolean): IncidentStatusView {
    const verb = approved ? 'approve' : 'reject';
    const parsed = ApprovalDecisionSchema.safeParse(raw);
    if (!parsed.success) {
      this.record('note', `Ignored a malformed ${verb}: ${describe(parsed.error)}`);
      return this.status();
    }
    const { step, by, reason } = parsed.data;
    const pending = this.pending.get(step);
    if (!pending) {
      this.record('note', `Ignored ${verb} of "${step}" by ${by}: no such pending step.`, { actor: by });
      return this.status();
    }
    if (!pending.approvers.includes(by)) {
      this.record('approval-refused', `${by} may not ${verb} "${step}": not an approver for ${pending.kind}.`, {
        actor: by,
        data: { step, ...(reason ? { reason } : {}) },
      });
      if (strict) throw ApplicationFailure.nonRetryable(`${by} is not an approver for ${pending.kind}`, UpdateRefusal.notAnApprover);
      return this.status();
    }
    // Settle it here, so the reply to an Update already shows the step decided.
    this.decisions.set(step, approved);
    this.pending.delete(step);
    this.record(approved ? 'approved' : 'rejected', `${by} ${approved ? 'approved' : 'rejected'} "${step}"${reason ? `: ${reason}` : ''}.`, {
      actor: by,
      data: { step, ...(reason ? { reason } : {}) },
    });
    this.setPhase(this.phaseBeforeApproval, this.stepBeforeApproval);
    return this.status();
  }

  private acknowledge(raw: unknown): IncidentStatusView {
    const parsed = ActorSchema.safeParse(raw);
    if (!parsed.success) this.record('note', `Ignored a malformed acknowledgement: ${describe(parsed.error)}`);
    else if (!this.closed) {
      const { by, note } = parsed.data;
      this.acknowledgedBy = by;
      this.acknowledgements += 1;
      this.record('acknowledged', `${by} acknowledged the incident${note ? `: ${note}` : ''}.`, { actor: by, ...(note ? { data: { note } } : {}) });
      this.showInUi();
    }
    return this.status();
  }

  private resolveByHuman(raw: unknown): IncidentStatusView {
    const parsed = ActorSchema.safeParse(raw);
    if (!parsed.success) this.record('note', `Ignored a malformed resolve: ${describe(parsed.error)}`);
    else if (!this.closeRequested) {
      const { by, note } = parsed.data;
      this.resolvedBy = parsed.data;
      this.record('note', `${by} marked the incident resolved${note ? `: ${note}` : ''}.`, { actor: by, ...(note ? { data: { note } } : {}) });
    }
    return this.status();
  }
}

/** Who or what started the run, as the audit trail keeps it. */
function triggeredBy({ trigger }: IncidentInput): string {
  switch (trigger.kind) {
    case 'alert':
      return trigger.alert.fingerprint;
    case 'operator':
      return trigger.by;
    case 'schedule':
      return trigger.scheduleId;
  }
}

function parseOrRefuse<T>(schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw ApplicationFailure.nonRetryable(describe(parsed.error), UpdateRefusal.invalidPayload);
  return parsed.data;
}

function describe(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`).join('; ');
}
