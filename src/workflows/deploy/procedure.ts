/**
 * What the deploy and rollback workflows share: the deployment's record (written to the history as it changes), its
 * log and phase for the status query and the Temporal UI, approvals checked against the configured approvers, the
 * saga's compensations, and the incident a failure opens.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ApplicationFailure, condition, ParentClosePolicy, setCurrentDetails, setHandler, startChild, workflowInfo } from '@temporalio/workflow';
import type { DeployApprovalKind, DeploymentKind, DeploymentPhase, DeploymentRecord, DeploymentResult, DeploymentSetup, DeploymentStatus } from '../../deployments/model';
import type { IncidentInput } from '../../incidents/model';
import { deployment } from '../activityProxies';
import { initialSearchAttributes } from '../searchAttributes';
import { DeploymentDecisionSchema, DeploymentRefusal, deploymentSignals, deploymentStatusQuery, deploymentUpdates, type DeploymentDecision, type DeploymentVerb } from './messages';

/** A step that failed the deployment (the saga compensates it): its message says why. */
export class DeploymentFailure extends Error {}

const LOG_LIMIT = 100;

export class DeploymentRun {
  readonly record: DeploymentRecord;
  private phase: DeploymentPhase = 'preparing';
  private readonly log: DeploymentStatus['log'] = [];
  private pending?: { kind: DeployApprovalKind; question: string; answer?: DeploymentDecision & { verb: DeploymentVerb } };
  private incident?: string;

  constructor(
    readonly kind: DeploymentKind,
    private readonly setup: DeploymentSetup,
    request: { by: string; version?: string },
  ) {
    this.record = {
      // The workflow ID is the target's (one deployment at a time): the run makes each deployment's row its own.
      id: `${workflowInfo().workflowId}@${workflowInfo().runId}`,
      kind,
      target: setup.container,
      by: request.by,
      ...(request.version ? { version: request.version } : {}),
      result: 'running',
      startedAt: new Date(workflowInfo().startTime).toISOString(),
    };
    this.installHandlers();
  }

  /** Writes the record to the deployment history (an upsert by workflow ID). */
  async save(): Promise<void> {
    await deployment.recordDeployment({ record: this.record });
  }

  enter(phase: DeploymentPhase, message: string): void {
    this.phase = phase;
    this.note('runbooks', message);
  }

  note(by: string, message: string): void {
    this.log.push({ at: new Date().toISOString(), by, message });
    if (this.log.length > LOG_LIMIT) this.log.splice(0, this.log.length - LOG_LIMIT);
    this.showDetails();
  }

  /** Waits for an approver of `kind` (`approvers.<kind>`) for `approveWithin`; no answer in time counts as a no. */
  async approval(kind: DeployApprovalKind, question: string): Promise<boolean> {
    const phase = this.phase;
    this.pending = { kind, question };
    this.enter('awaiting-approval', `Waiting for ${kind}: ${question} (approvers: ${(this.setup.approvers[kind] ?? []).join(', ') || 'none configured'})`);
    const answered = await condition(() => this.pending?.answer !== undefined, this.setup.approveWithinMs);
    const answer = this.pending.answer;
    this.pending = undefined;
    this.phase = phase;
    if (!answered || !answer) {
      this.note('runbooks', `No ${kind} within ${Math.round(this.setup.approveWithinMs / 60_000)} min: taken as a no.`);
      return false;
    }
    this.note(answer.by, `${answer.verb === 'approve' ? 'Approved' : 'Rejected'} ${kind}${answer.reason ? ` (${answer.reason})` : ''}.`);
    return answer.verb === 'approve';
  }

  /** The history's final row: result, reason, when and how long. */
  async finish(result: DeploymentResult, reason?: string): Promise<DeploymentStatus> {
    const finishedAt = new Date();
    Object.assign(this.record, {
      result,
      ...(reason ? { reason: reason.slice(0, 2000) } : {}),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - new Date(this.record.startedAt).getTime(),
    });
    this.enter('done', `${result}${reason ? `: ${reason}` : ''}.`);
    await this.save();
    return this.status();
  }

  /**
   * Opens an incident for the failure, as the config routes `deploy.incidentAlert`: a child workflow, abandoned so
   * it outlives the deployment, with an operator trigger naming the deployment. Once: a replay finds it started.
   */
  async openIncident(reason: string): Promise<void> {
    const { workflowType, alertname, ...setup } = this.setup.incident;
    const parent = workflowInfo().workflowId;
    // From the input and the run, not the workflow ID (a replay runs under another): one incident per deployment.
    const workflowId = `${alertname}-${this.kind}-${this.setup.container}-${workflowInfo().runId.slice(0, 8)}`;
    const input: IncidentInput = {
      ...setup,
      service: this.setup.container,
      trigger: { kind: 'operator', by: this.record.by, reason: `${alertname}: ${this.kind} ${parent} failed — ${reason}`.slice(0, 1000) },
    };
    try {
      await startChild(workflowType, {
        workflowId,
        args: [input],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        typedSearchAttributes: initialSearchAttributes(input),
        staticSummary: `${alertname} on ${this.setup.container}: ${this.kind} ${parent} failed — runbook ${input.runbook}`,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    this.incident = workflowId;
    this.note('runbooks', `Opened incident ${workflowId} (${alertname} → ${input.runbook}).`);
  }

  status(): DeploymentStatus {
    return {
      workflowId: workflowInfo().workflowId,
      kind: this.kind,
      phase: this.phase,
      record: { ...this.record },
      ...(this.pending ? { pendingApproval: { kind: this.pending.kind, question: this.pending.question } } : {}),
      log: [...this.log],
      ...(this.incident ? { incident: this.incident } : {}),
    };
  }

  private showDetails(): void {
    const { version, fromImage, toImage } = this.record;
    setCurrentDetails(
      [
        `**${this.kind} ${this.phase}** — ${this.setup.container}: ${fromImage ?? '?'} → ${toImage ?? version ?? '?'}`,
        this.pending ? `Waiting for **${this.pending.kind}**: ${this.pending.question}. Send approve or reject: {"step": "${this.pending.kind}", "by": "<you>"}` : '',
        this.log.at(-1)?.message ?? '',
      ]
        .filter(Boolean)
        .join('\n\n'),
    );
  }

  private installHandlers(): void {
    setHandler(deploymentStatusQuery, () => this.status(), { description: 'Phase, record (from, to, result), pending approval, log.' });
    for (const verb of ['approve', 'reject'] as const) {
      const description = `${verb === 'approve' ? 'Approve' : 'Reject'} the pending step: {"step": "approve-deploy" | "downgrade-database", "by": "<you>", "reason"?: "…"}`;
      setHandler(deploymentSignals[verb], (raw) => void this.decide(verb, raw, false), { description });
      setHandler(deploymentUpdates[verb], (decision) => this.decide(verb, decision, true), { validator: (decision) => void this.refusal(verb, decision, true), description });
    }
  }

  /** Why the decision cannot be taken; throws for an Update, notes it for a Signal (which has no answer). */
  private refusal(verb: DeploymentVerb, raw: unknown, isUpdate: boolean): DeploymentDecision | undefined {
    const refuse = (type: string, message: string) => {
      if (isUpdate) throw ApplicationFailure.nonRetryable(message, type);
      this.note('runbooks', `Refused ${verb}: ${message}`);
      return undefined;
    };
    const parsed = DeploymentDecisionSchema.safeParse(raw);
    if (!parsed.success) return refuse(DeploymentRefusal.invalidPayload, `${verb} needs {"step", "by", "reason"?}: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
    const decision = parsed.data;
    if (!this.pending || this.pending.answer || this.pending.kind !== decision.step) return refuse(DeploymentRefusal.notNow, `no ${decision.step} is pending`);
    if (!(this.setup.approvers[decision.step] ?? []).includes(decision.by)) return refuse(DeploymentRefusal.notAnApprover, `${decision.by} is not an approver of ${decision.step} (approvers.${decision.step})`);
    return decision;
  }

  private decide(verb: DeploymentVerb, raw: unknown, validated: boolean): DeploymentStatus {
    const decision = validated ? (raw as DeploymentDecision) : this.refusal(verb, raw, false);
    if (decision && this.pending) this.pending.answer = { ...decision, verb };
    return this.status();
  }
}

/**
 * The saga (Temporal's pattern): each step's compensation is registered before the step runs, and on failure they
 * run last first. A compensation that fails is noted and the rest still run; `compensate` says whether all held.
 */
export class Saga {
  private readonly compensations: { what: string; undo: () => Promise<void> }[] = [];

  constructor(private readonly run: DeploymentRun) {}

  add(what: string, undo: () => Promise<void>): void {
    this.compensations.unshift({ what, undo });
  }

  async compensate(): Promise<boolean> {
    let allHeld = true;
    for (const { what, undo } of this.compensations) {
      this.run.enter('compensating', `Compensating: ${what}.`);
      try {
        await undo();
      } catch (err) {
        allHeld = false;
        this.run.note('runbooks', `Compensation failed (${what}): ${failureMessage(err)} — a human must finish it.`);
      }
    }
    return allHeld;
  }
}

/** The innermost message of a failure (an activity's own error, not "Activity task failed"). */
export function failureMessage(err: unknown): string {
  let current = err as { message?: string; cause?: unknown } | undefined;
  while (current?.cause) current = current.cause as typeof current;
  return current?.message ?? String(err);
}

/** The last line of a command's output, for a one-line reason. */
export function lastLine(output: string): string {
  return output.trim().split('\n').pop()?.slice(0, 300) ?? '';
}
