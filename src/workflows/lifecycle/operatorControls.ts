/**
 * The operator controls of one incident, applied at its gates (`Incident.act` and `Incident.approval`, which every
 * remediation step passes): the hands-off switch stops remediation there and records what would have happened;
 * pause holds it there until resumed; abort stops it there (the undo stack then runs and humans take over, see
 * runIncident). Diagnosis, notifications and the escalation ladder never pass a gate, so they go on regardless.
 */
import { ActivityFailure, ApplicationFailure, condition, patched, proxyActivities, setHandler } from '@temporalio/workflow';
import type { ControlActivities } from '../../activities/controls';
import { AbortSchema, handsOffFor, HandsOffSwitchSchema, PauseSchema, type Abort, type HandsOffScope, type HandsOffSwitch, type Pause } from '../../controls/model';
import type { IncidentStatusView } from '../../incidents/model';
import { abortSignal, abortUpdate, handsOffSignal, pauseSignal, pauseUpdate, resumeSignal, resumeUpdate, UpdateRefusal } from './definitions';
import type { Incident } from './incident';

// A few quick attempts: when Postgres does not answer, the gate goes by the switch as last signalled instead of waiting.
const { handsOffSwitches } = proxyActivities<ControlActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '4s', maximumAttempts: 3 },
});

/** Thrown at a gate when remediation must not go on (hands-off, or aborted): runIncident hands the incident to humans. */
export class RemediationStopped extends Error {
  override readonly name = 'RemediationStopped';
}

export class OperatorControls {
  private readonly switches = new Map<HandsOffScope, HandsOffSwitch>();
  paused?: { by: string; at: string; note?: string };
  aborted?: { by: string; at: string; reason: string };
  /** Set once the runbook's remediation has returned: pause and abort are refused after that. */
  private remediationOver = false;

  constructor(private readonly incident: Incident) {
    this.installHandlers();
  }

  /** The switch that holds this incident's remediation back, as last read or signalled. */
  get handsOff(): HandsOffSwitch | undefined {
    return handsOffFor([...this.switches.values()], this.incident.input.runbook);
  }

  /** One line for the Temporal UI's current details; empty when no control applies. */
  summary(): string {
    const handsOff = this.handsOff;
    return [
      handsOff ? `**Hands-off** (${describeSwitch(handsOff)}): no remediation starts` : '',
      this.paused ? `**Paused** by ${this.paused.by}` : '',
      this.aborted ? `**Aborted** by ${this.aborted.by}: ${this.aborted.reason}` : '',
    ]
      .filter(Boolean)
      .join('; ');
  }

  endRemediation(): void {
    this.remediationOver = true;
    this.paused = undefined;
  }

  /**
   * Before a change or an approval: waits while paused, then stops (RemediationStopped) when aborted or when the
   * hands-off switch is on, recording `wouldHave` on the timeline ("would have run …"). Undefined when there is
   * nothing to wait for: the caller then goes on without an `await`, so incidents recorded before the gate existed
   * emit their commands in the same order as before.
   */
  gate(wouldHave: string): Promise<void> | undefined {
    // The store is the truth (a signal can be missed: sent before this incident was listed, or lost with its sender):
    // read it at every gate. One short activity per gate; gates are a few per incident, each before a step of seconds.
    const readStore = patched('hands-off-read-at-each-gate');
    if (!this.paused && !readStore) {
      this.stopIfHeldBack(wouldHave);
      return undefined;
    }
    return this.waitAndRead(wouldHave, readStore);
  }

  private async waitAndRead(wouldHave: string, readStore: boolean): Promise<void> {
    if (this.paused) {
      this.incident.setPhase(this.incident.status().phase, `Paused by ${this.paused.by} before: ${wouldHave}`);
      await condition(() => !this.paused || this.aborted !== undefined || this.incident.closeRequested);
    }
    if (readStore && !this.aborted) await this.readSwitches();
    this.stopIfHeldBack(wouldHave);
  }

  private stopIfHeldBack(wouldHave: string): void {
    if (this.aborted) throw new RemediationStopped(`aborted by ${this.aborted.by}`);
    const holding = this.handsOff;
    if (!holding) return;
    this.incident.record('would-have', `Hands-off (${describeSwitch(holding)}): would have ${wouldHave}.`, { data: { scope: holding.scope } });
    throw new RemediationStopped(`hands-off (${holding.scope})`);
  }

  /** Reads the switches; when Postgres does not answer, says so on the timeline and goes by the last signalled state. */
  private async readSwitches(): Promise<void> {
    try {
      this.apply(await handsOffSwitches.executeWithOptions({ summary: 'Read the hands-off switch' }, [{ runbook: this.incident.input.runbook }]));
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      const last = this.handsOff;
      this.incident.record('note', `Could not read the hands-off switch (${err.cause?.message ?? err.message}): going by its last signalled state (${last ? 'on' : 'off'}).`);
    }
  }

  /** Takes these switches as they stand; records on the timeline when that turns hands-off on or off for this incident. */
  private apply(switches: HandsOffSwitch[]): void {
    const before = this.handsOff;
    for (const s of switches) this.switches.set(s.scope, s);
    const after = this.handsOff;
    if (Boolean(before) === Boolean(after)) return;
    const changed = after ?? switches.find((s) => !s.on)!;
    this.incident.showDetails();
    this.incident.record('control', `Hands-off ${after ? 'on' : 'off'} (${describeSwitch(changed)}).`, { actor: changed.by, data: { scope: changed.scope, on: Boolean(after) } });
  }

  private installHandlers(): void {
    setHandler(
      handsOffSignal,
      (raw) => {
        const parsed = HandsOffSwitchSchema.safeParse(raw);
        if (!parsed.success) this.incident.record('note', `Ignored a malformed hands-off signal: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ')}`);
        else this.apply([parsed.data]);
      },
      { description: 'From PUT /controls and `runbooks hands-off`: {"scope": "global"|"<runbook>", "on": true, "by": "…", "at": "<ISO time>", "reason"?: "…"}' },
    );
    const pauseDescription = 'Pause remediation before its next step (the ladder keeps running): {"by": "<name>", "note"?: "…"}';
    const resumeDescription = 'Resume paused remediation: {"by": "<name>", "note"?: "…"}';
    const abortDescription = 'Abort remediation: undo what it changed and hand the incident to humans. {"by": "<name>", "reason": "…"}';
    setHandler(pauseSignal, (raw) => void this.pause(raw), { description: pauseDescription });
    setHandler(pauseUpdate, (raw) => this.pause(raw), { validator: (raw) => this.validate(PauseSchema, raw, this.paused !== undefined, 'paused'), description: pauseDescription });
    setHandler(resumeSignal, (raw) => void this.resume(raw), { description: resumeDescription });
    setHandler(resumeUpdate, (raw) => this.resume(raw), { validator: (raw) => this.validate(PauseSchema, raw, this.paused === undefined, 'not paused'), description: resumeDescription });
    setHandler(abortSignal, (raw) => void this.abort(raw), { description: abortDescription });
    setHandler(abortUpdate, (raw) => this.abort(raw), { validator: (raw) => this.validate(AbortSchema, raw, this.aborted !== undefined, 'aborted'), description: abortDescription });
  }

  /** Refuses an Update that is malformed, comes too late, or asks for the state the incident is already in. */
  private validate(schema: typeof PauseSchema | typeof AbortSchema, raw: unknown, alreadyThere: boolean, state: string): void {
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw ApplicationFailure.nonRetryable(parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; '), UpdateRefusal.invalidPayload);
    if (this.incident.closed) throw ApplicationFailure.nonRetryable('the incident is closed', UpdateRefusal.alreadyClosed);
    if (this.remediationOver || this.aborted) throw ApplicationFailure.nonRetryable('remediation is over: nothing to pause, resume or abort', UpdateRefusal.remediationOver);
    if (alreadyThere) throw ApplicationFailure.nonRetryable(`remediation is already ${state}`, UpdateRefusal.alreadyInThatState);
  }

  /** A signal that cannot apply is recorded as ignored; the Update's validator refused it before it got here. */
  private accepts(raw: unknown, schema: typeof PauseSchema | typeof AbortSchema, verb: string, applies: boolean): Pause | Abort | undefined {
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      this.incident.record('note', `Ignored a malformed ${verb}.`);
      return undefined;
    }
    if (!applies || this.remediationOver || this.incident.closed || this.aborted) {
      this.incident.record('note', `Ignored ${verb} by ${parsed.data.by}: remediation is ${this.aborted ? 'aborted' : this.remediationOver ? 'over' : this.paused ? 'paused already' : 'not paused'}.`, { actor: parsed.data.by });
      return undefined;
    }
    return parsed.data;
  }

  private pause(raw: unknown): IncidentStatusView {
    const pause = this.accepts(raw, PauseSchema, 'pause', !this.paused) as Pause | undefined;
    if (pause) {
      this.paused = { by: pause.by, at: new Date().toISOString(), ...(pause.note ? { note: pause.note } : {}) };
      this.incident.showDetails();
      this.incident.record('control', `${pause.by} paused remediation${pause.note ? `: ${pause.note}` : ''}; it holds before its next step.`, { actor: pause.by });
    }
    return this.incident.status();
  }

  private resume(raw: unknown): IncidentStatusView {
    const resume = this.accepts(raw, PauseSchema, 'resume', this.paused !== undefined) as Pause | undefined;
    if (resume) {
      this.paused = undefined;
      this.incident.showDetails();
      this.incident.record('control', `${resume.by} resumed remediation${resume.note ? `: ${resume.note}` : ''}.`, { actor: resume.by });
    }
    return this.incident.status();
  }

  private abort(raw: unknown): IncidentStatusView {
    const abort = this.accepts(raw, AbortSchema, 'abort', true) as Abort | undefined;
    if (abort) {
      this.aborted = { by: abort.by, at: new Date().toISOString(), reason: abort.reason };
      this.paused = undefined;
      this.incident.showDetails();
      this.incident.record('control', `${abort.by} aborted remediation: ${abort.reason}. It stops before its next step; its changes are undone.`, { actor: abort.by });
    }
    return this.incident.status();
  }
}

function describeSwitch(s: HandsOffSwitch): string {
  return `${s.scope === 'global' ? 'global' : `runbook ${s.scope}`}, set by ${s.by}${s.reason ? `: ${s.reason}` : ''}`;
}
