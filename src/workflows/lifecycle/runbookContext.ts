/**
 * What a runbook may do, and nothing more: run read-only steps and changes (each an activity with its UI
 * summary and its timeline entry), ask for approval, record findings and notes, add follow-ups, escalate, and
 * register undo steps that run when the incident winds down. The lifecycle (ladder, audit, handlers) stays out of reach.
 */
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { ActivityFailure, condition, type ActivityFunctionWithOptions } from '@temporalio/workflow';
import type { HumanTask, IncidentInput, UndoView } from '../../incidents/model';
import type { ApprovalKind } from '../../runbooks/catalog';
import type { Incident, RecordOptions } from './incident';

/** A proxied activity that takes one object argument. */
export type Activity<A, R> = ActivityFunctionWithOptions<(arg: A) => Promise<R>>;

/** What the timeline says about a step's result: a sentence, or a sentence with its data. */
type Recorded = string | { message: string; data?: Record<string, unknown> };

interface StepOptions<R> {
  /** The step's name on the timeline and in the UI's current details, e.g. "Diagnose: inspect backend". */
  title: string;
  /** The activity's summary in the UI's event history, e.g. "docker inspect backend". */
  summary: string;
  /** What the result says; its data defaults to the result when that is an object. Nothing is recorded without it. */
  record?: (result: R) => Recorded;
}

interface UndoOptions {
  /** Run it when this much time has passed, if the incident has not wound down first (a durable timer). */
  after?: Duration;
}

export interface RunbookContext {
  readonly input: IncidentInput;
  /** A read-only step (diagnosis, verification): it may run after the alert resolved. Its record is a finding. */
  step<A, R>(activity: Activity<A, R>, arg: A, options: StepOptions<R>): Promise<R>;
  /** A step that changes the world: refused once the incident winds down. Its record is an action. */
  act<A, R>(activity: Activity<A, R>, arg: A, options: StepOptions<R>): Promise<R>;
  /** Waits for a configured approver; false when rejected. The escalation ladder keeps running meanwhile. */
  approval(kind: ApprovalKind, question: string): Promise<boolean>;
  finding(message: string, data?: Record<string, unknown>): void;
  note(message: string, data?: Record<string, unknown>): void;
  /** An item for the post-incident review. */
  followUp(text: string): void;
  /**
   * A task for a human, listed in `status` until completed (`runbooks complete-task`); the incident does not resolve
   * while it is open (unless a human resolves it with a reason), and escalates once if it is still open after `dueInMs`.
   */
  task(id: string, title: string, options?: { dueInMs?: number }): void;
  /** The tasks added so far, open and done, with who completed each and their note. */
  tasks(): HumanTask[];
  /** Tells these contacts now, beside the escalation ladder (a runbook's own escalation path). Never fails the runbook. */
  notify(contacts: string[], text: string): Promise<void>;
  /** Pages the next level of the ladder now; `detail` (a log excerpt) follows the reason on the timeline and in the page. */
  escalate(reason: string, detail?: string): Promise<void>;
  /**
   * Registers the undo of a change, before or right after making it: it runs when the incident winds down
   * (in reverse order of registration, even after the alert resolved), or earlier once `after` has passed.
   * Each undo runs once, is recorded on the timeline, and is retried by its activity's retry policy.
   */
  onClose<A, R>(activity: Activity<A, R>, arg: A, options: StepOptions<R> & UndoOptions): void;
  /**
   * Keeps the incident open while a temporary change lasts: returns once every undo registered with `after` has run
   * (its timer fired), or at once when a human resolves the incident (closed early: the undos then run at close).
   * An alert that resolves meanwhile does not shorten it. The status view shows when each undo is due.
   */
  untilUndone(): Promise<void>;
}

/** What `verify` gets: it may look, never change anything. */
export type VerifyContext = Pick<RunbookContext, 'input' | 'step' | 'finding' | 'note'>;

interface Undo {
  title: string;
  run: () => Promise<unknown>;
  record?: (result: never) => Recorded;
  state: UndoView['state'];
  /** Workflow time (ms) its timer runs it at, for timed undos. */
  dueAtMs?: number;
}

/** The compensations of one incident, run once each: when their time runs out, or all at once at close, last first. */
export class UndoStack {
  private readonly undos: Undo[] = [];
  private readonly timed: Promise<void>[] = [];
  private unwinding = false;

  constructor(private readonly incident: Incident) {
    incident.showUndos(() => this.views());
  }

  push(undo: Omit<Undo, 'state' | 'dueAtMs'>, after?: Duration): void {
    const entry: Undo = { ...undo, state: 'pending', ...(after === undefined ? {} : { dueAtMs: Date.now() + msToNumber(after) }) };
    this.undos.push(entry);
    if (after !== undefined) this.timed.push(this.runWhenDue(entry, after));
  }

  get size(): number {
    return this.undos.length;
  }

  /** True while an undo with a timer has not run yet (or is running). */
  get timedPending(): boolean {
    return this.undos.some((u) => u.dueAtMs !== undefined && (u.state === 'pending' || u.state === 'running'));
  }

  views(): UndoView[] {
    return this.undos.map((u) => ({ title: u.title, state: u.state, ...(u.dueAtMs === undefined ? {} : { dueAt: new Date(u.dueAtMs).toISOString() }) }));
  }

  /** Runs every pending undo, last registered first, and waits for any that a timer already started. */
  async unwind(): Promise<void> {
    this.unwinding = true;
    for (const undo of [...this.undos].reverse()) {
      if (undo.state === 'pending') await this.run(undo, 'the incident is closing');
    }
    await Promise.all(this.timed);
  }

  private async runWhenDue(undo: Undo, after: Duration): Promise<void> {
    const closing = await condition(() => this.unwinding || undo.state !== 'pending', after);
    if (!closing && undo.state === 'pending') await this.run(undo, 'its time is up');
  }

  private async run(undo: Undo, why: string): Promise<void> {
    undo.state = 'running';
    try {
      const result = await this.incident.step(`Undo: ${undo.title}`, undo.run);
      undo.state = 'done';
      const recorded = undo.record ? asRecord((undo.record as (r: unknown) => Recorded)(result), result) : { message: `Undone: ${undo.title}.` };
      this.incident.record('undo', `${recorded.message} (${why})`, recorded.data ? { data: recorded.data } : {});
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      undo.state = 'failed';
      this.incident.record('note', `Undo failed: ${undo.title}: ${err.cause?.message ?? err.message}`);
      this.incident.followUp(`Undo by hand: ${undo.title}.`);
    }
  }
}

export function runbookContext(incident: Incident, undo: UndoStack): RunbookContext {
  const recordAs = (kind: 'finding' | 'action') => (result: unknown, record?: (r: never) => Recorded) => {
    if (!record) return;
    const { message, data } = asRecord((record as (r: unknown) => Recorded)(result), result);
    incident.record(kind, message, data ? { data } : {});
  };
  const recordFinding = recordAs('finding');
  const recordAction = recordAs('action');
  return {
    input: incident.input,
    async step(activity, arg, options) {
      const result = await incident.step(options.title, () => activity.executeWithOptions({ summary: options.summary }, [arg]));
      recordFinding(result, options.record);
      return result;
    },
    async act(activity, arg, options) {
      const result = await incident.act(options.title, () => activity.executeWithOptions({ summary: options.summary }, [arg]));
      recordAction(result, options.record);
      return result;
    },
    approval: (kind, question) => incident.approval(kind, question),
    finding: (message, data) => incident.record('finding', message, withData(data)),
    note: (message, data) => incident.record('note', message, withData(data)),
    followUp: (text) => incident.followUp(text),
    task: (id, title, options) => incident.addTask(id, title, options?.dueInMs),
    tasks: () => incident.status().tasks,
    notify: (contacts, text) => incident.notify(contacts, text),
    escalate: (reason, detail) => incident.escalate(reason, detail),
    onClose(activity, arg, { title, summary, record, after }) {
      undo.push({ title, run: () => activity.executeWithOptions({ summary }, [arg]), record }, after);
    },
    async untilUndone() {
      if (!undo.timedPending) return;
      const due = undo.views().filter((u) => u.dueAt !== undefined && u.state === 'pending');
      await incident.step(`Waiting to undo: ${due.map((u) => `${u.title} at ${u.dueAt}`).join('; ')}`, () =>
        condition(() => !undo.timedPending || incident.resolvedBy !== undefined),
      );
    },
  };
}

function asRecord(recorded: Recorded, result: unknown): { message: string; data?: Record<string, unknown> } {
  if (typeof recorded !== 'string') return recorded;
  const isPlainObject = typeof result === 'object' && result !== null && !Array.isArray(result);
  return isPlainObject ? { message: recorded, data: { ...(result as Record<string, unknown>) } } : { message: recorded };
}

function withData(data: Record<string, unknown> | undefined): RecordOptions {
  return data ? { data } : {};
}
