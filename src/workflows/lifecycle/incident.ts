/**
 * The state every incident shares, whatever its runbook: timeline, phase and current step, approvals,
 * acknowledgement, resolution, and how they show in the Temporal UI (search attributes, current details).
 * Runbooks never see this class: they get a RunbookContext (runbookContext.ts).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { z } from 'zod';
import type { IncidentRecord } from '../../activities/audit';
import type { NotifyFailureDetails, PageEvent } from '../../activities/notify';
import {
  alertOf,
  describeTrigger,
  type ApprovalPolicy,
  type HumanTask,
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
  activityRetriedSignal,
  ActivityRetriedSchema,
  ActorSchema,
  alertFiringSignal,
  alertResolvedSignal,
  ApprovalDecisionSchema,
  approveSignal,
  approveUpdate,
  completeTaskSignal,
  CompleteTaskSchema,
  completeTaskUpdate,
  rejectSignal,
  rejectUpdate,
  resolveSignal,
  ResolveSchema,
  resolveUpdate,
  statusQuery,
  UpdateRefusal,
  type Actor,
  type ApprovalDecision,
  type CompleteTask,
  type Resolve,
} from './definitions';
import { OperatorControls, RemediationStopped } from './operatorControls';

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
  private readonly tasks = new Map<string, HumanTask>();
  private readonly dueTimes = new Set<string>();
  /** `<activityId>#<attempt>` of retries already on the timeline (a report can arrive twice). */
  private readonly retriesRecorded = new Set<string>();
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
  /** Hands-off, pause and abort, applied at the gates (act, approval). */
  readonly controls: OperatorControls;

  constructor(readonly input: IncidentInput) {
    this.installHandlers();
    this.controls = new OperatorControls(this);
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

  /** A step that changes the world: passes the operator controls' gate (hands-off, pause, abort); refused once the incident is winding down. */
  async act<T>(title: string, run: () => Promise<T>): Promise<T> {
    this.throwIfClosing();
    const gate = this.controls.gate(`run "${title}"`);
    if (gate) {
      await gate;
      this.throwIfClosing();
    }
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
    const gate = this.controls.gate(`asked ${approvers.join(', ')} to approve "${kind}": ${question}`);
    if (gate) {
      await gate;
      this.throwIfClosing();
    }
    const step = this.nextStepId(kind);
    const policy = this.input.approvals?.[kind];
    const quorum = policy?.quorum ?? 1;
    // A timer only where an expiry is configured; incidents from before expiries existed replay without it.
    const expiresAfter = policy?.expiresAfter !== undefined && patched('approval-expiry') ? policy.expiresAfter : undefined;
    const expiresAt = expiresAfter === undefined ? undefined : new Date(Date.now() + expiresAfter).toISOString();
    this.pending.set(step, {
      step,
      kind,
      question,
      askedAt: new Date().toISOString(),
      approvers,
      ...(quorum > 1 ? { quorum, approvedBy: [] } : {}),
      ...(expiresAt ? { expiresAt } : {}),
    });
    const needs = `${quorum > 1 ? `; ${quorum} of them must approve` : ''}${expiresAt ? `; unanswered, it escalates at ${expiresAt}` : ''}`;
    this.record('approval-requested', `${question} (step "${step}"; approvers: ${approvers.join(', ')}${needs})`, { data: { step, kind } });
    this.phaseBeforeApproval = this.phase;
    this.stepBeforeApproval = this.currentStep;
    this.setPhase('awaiting-approval', `Approve "${step}": ${question}`);
    await this.tell(
      this.escalatedTo ? [this.escalatedTo] : [],
      `Approval needed on ${this.workflowId}: ${question} — approve step "${step}" (runbooks approve ${this.workflowId} --step ${step})`,
    );
    const settled = () => this.decisions.has(step) || this.closeRequested || this.controls.aborted !== undefined;
    if (expiresAfter !== undefined && !(await condition(settled, expiresAfter))) await this.expire(step, policy!);
    await condition(settled);
    if (!this.decisions.has(step)) {
      const aborted = !this.closeRequested;
      this.pending.delete(step);
      this.record('approval-cancelled', `Approval for "${step}" cancelled: ${aborted ? 'remediation was aborted' : 'the incident is closing'}.`, { data: { step } });
      this.showInUi();
      throw aborted ? new RemediationStopped(step) : new IncidentClosing(step);
    }
    return this.decisions.get(step)!;
  }

  /** Nobody answered in time: counted as rejected first if so configured (no late answer then counts), then escalated. */
  private async expire(step: string, { onExpiry }: ApprovalPolicy): Promise<void> {
    if (onExpiry === 'reject') {
      this.decisions.set(step, false);
      this.pending.delete(step);
      this.record('rejected', `Nobody answered "${step}" in time: counted as rejected.`, { data: { step, expired: true } });
      this.setPhase(this.phaseBeforeApproval, this.stepBeforeApproval);
    }
    await this.escalate(`Approval "${step}" unanswered in time${onExpiry === 'reject' ? ' (counted as rejected)' : ''}`);
  }

  /**
   * A task for a human (rotate credentials…): listed in `status` until someone completes it (`completeTask`); once
   * `dueInMs` passes with it still open, the incident escalates once. Adding one twice (same id) adds it once.
   */
  addTask(id: string, title: string, dueInMs?: number): void {
    if (this.tasks.has(id)) return;
    const now = Date.now();
    const task: HumanTask = {
      id,
      title,
      addedAt: new Date(now).toISOString(),
      ...(dueInMs !== undefined && dueInMs > 0 ? { dueAt: new Date(now + dueInMs).toISOString() } : {}),
      state: 'open',
      overdue: false,
    };
    this.tasks.set(id, task);
    const due = task.dueAt ? `, due ${task.dueAt}` : '';
    this.record('task-added', `Task "${id}" for a human: ${title}${due} (runbooks complete-task ${this.workflowId} --task ${id} --note …).`, {
      data: { task: id, title, ...(task.dueAt ? { dueAt: task.dueAt } : {}) },
    });
    this.showInUi();
    // Tasks due at the same moment (added together) escalate together, once.
    if (task.dueAt && !this.dueTimes.has(task.dueAt)) {
      this.dueTimes.add(task.dueAt);
      void this.escalateWhenLate(task.dueAt, dueInMs!);
    }
  }

  get openTasks(): HumanTask[] {
    return [...this.tasks.values()].filter((t) => t.state === 'open');
  }

  private async escalateWhenLate(dueAt: string, dueInMs: number): Promise<void> {
    const lateOnes = () => this.openTasks.filter((t) => t.dueAt === dueAt);
    const settled = await condition(() => lateOnes().length === 0 || this.closed, dueInMs);
    const late = lateOnes();
    if (settled || late.length === 0) return;
    for (const task of late) {
      task.overdue = true;
      this.record('task-overdue', `Task "${task.id}" (${task.title}) is not done by ${dueAt}.`, { data: { task: task.id } });
    }
    this.showInUi();
    await this.escalate(`${late.length} task(s) overdue: ${late.map((t) => t.id).join(', ')}`);
  }

  /** Tells contacts now, outside the escalation ladder (a runbook's own escalation path, e.g. the security team). */
  async notify(contacts: string[], text: string): Promise<void> {
    await this.tell(contacts, `${this.headline()}: ${text} (${this.workflowId})`);
  }

  /** Prevention notes from the runbook and anything learned on the way, for the post-incident review. */
  followUp(text: string): void {
    this.followUps.push(text);
    this.record('follow-up', text);
  }

  /**
   * Notifies contacts (a rotation: whoever it has on call now); a failed notification is recorded, never fatal to the
   * response. `event`: what paging services do with it. Returns the contacts no channel reached.
   */
  async tell(contacts: string[], text: string, event?: PageEvent): Promise<string[]> {
    const unique = [...new Set(contacts)];
    if (unique.length === 0) return [];
    try {
      const result = await notify.executeWithOptions({ summary: `Notify ${unique.join(', ')}` }, [
        { workflowId: this.workflowId, contacts: unique, severity: this.input.escalation?.severity, service: this.input.service, text, at: Date.now(), ...(event ? { event } : {}) },
      ]);
      const { delivered, onCall, skipped } = result;
      const onCallNow = onCall && Object.keys(onCall).length > 0 ? { onCall } : {};
      this.record('notified', text, { data: { contacts: unique, delivered, ...onCallNow, ...(skipped?.length ? { skipped } : {}) } });
      return [];
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      const unreached = unreachedContacts(err) ?? unique;
      this.record('notification-failed', `Could not notify ${unique.join(', ')}: ${err.cause?.message ?? err.message}`, {
        data: { contacts: unique, unreached },
      });
      return unreached;
    }
  }

  /**
   * Climbs one level of the ladder and pages whoever is there now; when no channel of theirs takes the page, climbs on.
   * `detail`: lines the human needs to act (a log excerpt), after the reason on the timeline and in the page.
   */
  async escalate(reason: string, detail?: string): Promise<void> {
    this.escalationLevel += 1;
    const contact = this.escalatedTo;
    const below = detail ? `\n${detail}` : '';
    this.record(
      'escalated',
      `${contact ? `${reason}: escalated to ${contact} (level ${this.escalationLevel}).` : `${reason}: handed to a human (no severity applies, so nobody is paged).`}${below}`,
      { data: { level: this.escalationLevel, ...(contact ? { contact } : {}) } },
    );
    this.showInUi();
    if (!contact) return;
    const unreached = await this.tell([contact], `${this.headline()}: ${reason} — escalated to you (level ${this.escalationLevel}, ${this.workflowId})${below}`, 'trigger');
    if (unreached.includes(contact)) await this.escalatePastUnreachable(contact);
  }

  /** `contact` was paged and no channel of theirs took it: page the next level at once, while the ladder has one. */
  async escalatePastUnreachable(contact: string): Promise<void> {
    const ladder = this.input.escalation?.escalateTo ?? [];
    if (this.closeRequested || this.escalationLevel >= ladder.length - 1 || !patched('escalate-past-unreachable-contact')) return;
    await this.escalate(`Could not page ${contact}`);
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
      tasks: [...this.tasks.values()].map((t) => ({ ...t })),
      undos: this.undoViews(),
      ...(this.controls.handsOff ? { handsOff: this.controls.handsOff } : {}),
      ...(this.controls.paused ? { paused: this.controls.paused } : {}),
      ...(this.controls.aborted ? { aborted: this.controls.aborted } : {}),
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
    this.showDetails();
  }

  /** The Temporal UI's current details: phase and step, who is paged, the operator controls, what waits for whom. No command: safe from any handler. */
  showDetails(): void {
    const waiting = [...this.pending.values()].map((p) => `\`${p.step}\` (${p.approvers.join(', ')})`);
    const paged = this.escalatedTo
      ? `Escalated to **${this.escalatedTo}** (level ${this.escalationLevel})${this.acknowledgedBy ? `, acknowledged by ${this.acknowledgedBy}` : ''}`
      : '';
    const open = this.openTasks.map((t) => `\`${t.id}\` ${t.title}${t.overdue ? ' (overdue)' : ''}`);
    setCurrentDetails(
      [`**${this.phase}** — ${this.currentStep}`, paged, this.controls?.summary() ?? '', waiting.length > 0 ? `Waiting for approval: ${waiting.join(', ')}` : '', open.length > 0 ? `Open tasks: ${open.join(', ')}` : '']
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
    setHandler(approveUpdate, (d) => this.decide(d, true, true), { validator: (d) => this.validateDecision(d, true), description: decision('Approve') });
    setHandler(rejectUpdate, (d) => this.decide(d, false, true), { validator: (d) => this.validateDecision(d, false), description: decision('Reject') });

    const ackDescription = 'Acknowledge: stops the escalation clock. {"by": "<name>", "note"?: "…"}';
    const resolveDescription =
      'Mark resolved: stops remediation and closes the incident. {"by": "<name>", "note"?: "…", "reason"?: "…"} — while tasks are open only with a reason, which closes them.';
    const taskDescription = 'Complete an open task of the incident: {"task": "<id>", "by": "<name>", "note"?: "what was done"}';
    setHandler(acknowledgeSignal, (raw) => void this.acknowledge(raw), { description: ackDescription });
    setHandler(acknowledgeUpdate, (actor) => this.acknowledge(actor), { validator: (a) => this.validateActor(a), description: ackDescription });
    setHandler(resolveSignal, (raw) => void this.resolveByHuman(raw), { description: resolveDescription });
    setHandler(resolveUpdate, (actor) => this.resolveByHuman(actor), { validator: (a) => this.validateResolve(a), description: resolveDescription });
    setHandler(completeTaskSignal, (raw) => void this.completeTask(raw), { description: taskDescription });
    setHandler(completeTaskUpdate, (done) => this.completeTask(done), { validator: (d) => this.validateCompleteTask(d), description: taskDescription });

    setHandler(
      alertFiringSignal,
      (update) => {
        if (this.closed || this.isStartingNotification(update?.notificationId)) return;
        this.record('alert-refired', 'Alertmanager sent the alert again; it is still firing.', { actor: 'alertmanager' });
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
    setHandler(activityRetriedSignal, (raw) => this.recordRetry(raw), { description: 'From the worker: a step runs again after a failed or lost attempt.' });
  }

  private recordRetry(raw: unknown): void {
    const parsed = ActivityRetriedSchema.safeParse(raw);
    if (!parsed.success || this.closed) return;
    const { activityId, activityType, attempt, reason } = parsed.data;
    const key = `${activityId}#${attempt}`;
    if (this.retriesRecorded.has(key)) return;
    this.retriesRecorded.add(key);
    this.record('activity-retried', `${activityType}: attempt ${attempt}, after ${reason}`, { data: { activityType, attempt } });
  }

  /** The webhook starts an incident with signal-with-start: the firing signal of that same notification is no re-send. */
  private isStartingNotification(notificationId: string | undefined): boolean {
    const { trigger } = this.input;
    return notificationId !== undefined && trigger.kind === 'alert' && trigger.notificationId === notificationId;
  }

  private validateDecision(raw: ApprovalDecision, approved: boolean): void {
    const decision = parseOrRefuse(ApprovalDecisionSchema, raw);
    if (this.closed) throw ApplicationFailure.nonRetryable('the incident is closed', UpdateRefusal.alreadyClosed);
    const pending = this.pending.get(decision.step);
    if (!pending) {
      throw ApplicationFailure.nonRetryable(`no pending step "${decision.step}"`, UpdateRefusal.noSuchPendingStep);
    }
    if (approved && pending.approvedBy?.includes(decision.by)) {
      throw ApplicationFailure.nonRetryable(`${decision.by} has approved "${decision.step}" already: it needs ${pending.quorum} distinct approvers`, UpdateRefusal.alreadyInThatState);
    }
  }

  private validateActor(raw: Actor): void {
    parseOrRefuse(ActorSchema, raw);
    if (this.closed) throw ApplicationFailure.nonRetryable('the incident is closed', UpdateRefusal.alreadyClosed);
  }

  private validateResolve(raw: Resolve): void {
    const resolve = parseOrRefuse(ResolveSchema, raw);
    if (this.closed) throw ApplicationFailure.nonRetryable('the incident is closed', UpdateRefusal.alreadyClosed);
    const open = this.openTasks;
    if (open.length > 0 && !resolve.reason) {
      throw ApplicationFailure.nonRetryable(`${open.length} task(s) still open (${open.map((t) => t.id).join(', ')}): complete them, or resolve with a reason`, UpdateRefusal.tasksOpen);
    }
  }

  private validateCompleteTask(raw: CompleteTask): void {
    const done = parseOrRefuse(CompleteTaskSchema, raw);
    if (this.closed) throw ApplicationFailure.nonRetryable('the incident is closed', UpdateRefusal.alreadyClosed);
    if (this.tasks.get(done.task)?.state !== 'open') {
      throw ApplicationFailure.nonRetryable(`no open task "${done.task}"${this.tasks.has(done.task) ? ' (it is done)' : ''}`, UpdateRefusal.noSuchOpenTask);
    }
  }

  private completeTask(raw: unknown): IncidentStatusView {
    const parsed = CompleteTaskSchema.safeParse(raw);
    if (!parsed.success) {
      this.record('note', `Ignored a malformed complete-task: ${describe(parsed.error)}`);
      return this.status();
    }
    const { task: id, by, note } = parsed.data;
    const task = this.tasks.get(id);
    if (!task || task.state !== 'open' || this.closed) {
      this.record('note', `Ignored complete-task "${id}" by ${by}: no such open task.`, { actor: by });
      return this.status();
    }
    Object.assign(task, { state: 'done', by, at: new Date().toISOString(), ...(note ? { note } : {}) });
    this.record('task-done', `${by} completed task "${id}" (${task.title})${note ? `: ${note}` : ''}.`, { actor: by, data: { task: id, ...(note ? { note } : {}) } });
    this.showInUi();
    return this.status();
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
    let count = '';
    if (approved && pending.quorum !== undefined && pending.approvedBy) {
      if (pending.approvedBy.includes(by)) {
        this.record('note', `Ignored approve of "${step}" by ${by}: approved already (${pending.approvedBy.length} of ${pending.quorum}).`, { actor: by });
        return this.status();
      }
      pending.approvedBy.push(by);
      count = ` (${pending.approvedBy.length} of ${pending.quorum})`;
      if (pending.approvedBy.length < pending.quorum) {
        this.record('approved', `${by} approved "${step}"${count}${reason ? `: ${reason}` : ''}.`, { actor: by, data: { step, ...(reason ? { reason } : {}) } });
        this.showInUi();
        return this.status();
      }
    }
    // Settle it here, so the reply to an Update already shows the step decided.
    this.decisions.set(step, approved);
    this.pending.delete(step);
    this.record(approved ? 'approved' : 'rejected', `${by} ${approved ? 'approved' : 'rejected'} "${step}"${count}${reason ? `: ${reason}` : ''}.`, {
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
    const parsed = ResolveSchema.safeParse(raw);
    if (!parsed.success) {
      this.record('note', `Ignored a malformed resolve: ${describe(parsed.error)}`);
      return this.status();
    }
    const { by, note, reason } = parsed.data;
    const open = this.openTasks;
    if (open.length > 0 && !this.closed) {
      if (!reason) {
        this.record('note', `Ignored resolve by ${by}: ${open.length} task(s) still open (${open.map((t) => t.id).join(', ')}); complete them, or resolve with a reason.`, { actor: by });
        return this.status();
      }
      for (const task of open) {
        Object.assign(task, { state: 'closed', by, at: new Date().toISOString(), note: reason });
        this.record('task-done', `${by} closed task "${task.id}" (${task.title}) without completing it: ${reason}.`, { actor: by, data: { task: task.id, reason } });
      }
      this.showInUi();
    }
    if (!this.closeRequested) {
      this.resolvedBy = { by, ...(note ? { note } : {}) };
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

/** The contacts a NotifyFailed failure names; undefined when the failure says nothing about them (a timeout). */
function unreachedContacts(err: ActivityFailure): string[] | undefined {
  const cause = err.cause;
  if (!(cause instanceof ApplicationFailure)) return undefined;
  return (cause.details?.[0] as NotifyFailureDetails | undefined)?.unreachedContacts;
}

function parseOrRefuse<T>(schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw ApplicationFailure.nonRetryable(describe(parsed.error), UpdateRefusal.invalidPayload);
  return parsed.data;
}

function describe(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`).join('; ');
}
