/**
 * Runbook §3 "ETL Job Failures" — Resolution, "Or backfill specific date range"
 * (`docker exec -it etl python -m etl.backfill BACKFILL_YEAR_FROM=2023 BACKFILL_YEAR_TO=2024`), as a workflow that
 * survives anything: the range is cut into chunks of one county-year, each loaded by an activity that heartbeats its
 * cursor and resumes from it after a crash. An operator can pause, resume or cancel it; a chunk that fails for good
 * waits for a human's retry-chunk or skip-chunk (and tells the next contact when nobody answers) instead of failing
 * the backfill. Long ranges continue as new, carrying their progress.
 */
import { ActivityFailure, allHandlersFinished, ApplicationFailure, condition, continueAsNew, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import { chunkName, chunksOf, paceOf, type BackfillInput, type BackfillOutcome, type BackfillPhase, type BackfillProgress, type BackfillStatus, type Chunk } from '../backfills/model';
import { etl, notify } from './activityProxies';
import { BackfillDecisionSchema, BackfillRefusal, backfillSignals, backfillStatusQuery, backfillUpdates, type BackfillDecision, type BackfillVerb } from './backfill/messages';

/** The last events kept in the progress (and so in each continue-as-new input). */
const LOG_LIMIT = 50;

export async function backfill(input: BackfillInput): Promise<BackfillOutcome> {
  const chunks = chunksOf(input);
  const run = new BackfillRun(input, chunks.length);
  const { progress } = run;

  for (let loadedThisRun = 0; progress.next < chunks.length; ) {
    await condition(() => !progress.paused || run.cancelRequested);
    if (run.cancelRequested) break;
    if (loadedThisRun >= input.policy.chunksPerRun || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof backfill>({ ...input, progress: { ...progress, runs: progress.runs + 1 } });
    }
    const chunk = chunks[progress.next]!;
    const answer = await run.load(chunk);
    if (answer === 'loaded' || answer === 'skip') {
      progress.next += 1;
      loadedThisRun += 1;
    }
    if (answer === 'cancel') break;
  }
  return run.finish();
}

type ChunkAnswer = 'loaded' | 'retry' | 'skip' | 'cancel';

class BackfillRun {
  readonly progress: BackfillProgress;
  cancelRequested = false;
  private current?: Chunk;
  /** Workflow time the load of `current` started. */
  private currentSince?: number;
  private failure?: string;
  private decision?: 'retry' | 'skip';
  private finished = false;

  constructor(
    private readonly input: BackfillInput,
    private readonly chunksTotal: number,
  ) {
    this.progress = input.progress ?? {
      next: 0,
      chunksDone: 0,
      recordsWritten: 0,
      skipped: [],
      runs: 1,
      startedAt: Date.now(),
      loadingMs: 0,
      paused: false,
      log: [],
    };
    if (!input.progress) this.record(input.request.by, `Backfill of ${this.range()} requested: ${chunksTotal} chunk(s).`);
    this.installHandlers();
    this.showDetails();
  }

  /** Loads one chunk; when it fails for good, waits for a human to retry or skip it (or cancel the backfill). */
  async load(chunk: Chunk): Promise<ChunkAnswer> {
    this.current = chunk;
    this.currentSince = Date.now();
    this.showDetails();
    try {
      const result = await etl.loadChunk({ target: 'etl', county: chunk.county, year: chunk.year, delayMs: this.input.policy.delayMs });
      this.progress.chunksDone += 1;
      // Every record of the chunk is in now, whichever attempt wrote it (a resumed one writes only the rest).
      this.progress.recordsWritten += result.records;
      this.progress.recordsPerChunk = result.records;
      this.progress.loadingMs += Date.now() - this.currentSince;
      this.current = undefined;
      this.showDetails();
      return 'loaded';
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      return this.askHuman(chunk, err.cause?.message ?? err.message);
    }
  }

  private async askHuman(chunk: Chunk, failure: string): Promise<ChunkAnswer> {
    this.failure = failure;
    this.decision = undefined;
    this.record('runbooks', `Chunk ${chunkName(chunk)} failed for good: ${failure}. Waiting for retry-chunk or skip-chunk.`);
    this.showDetails();
    const text = `Backfill ${this.range()}: chunk ${chunkName(chunk)} failed for good (${failure}) — \`runbooks backfill retry-chunk\` or \`skip-chunk\` (${workflowInfo().workflowId})`;
    const answered = () => this.decision !== undefined || this.cancelRequested;
    for (let level = 0; ; level++) {
      const contact = this.input.escalateTo[level];
      if (contact) await notify({ workflowId: workflowInfo().workflowId, contacts: [contact], text });
      const next = this.input.escalateTo[level + 1];
      if (next === undefined) {
        await condition(answered);
        break;
      }
      if (await condition(answered, this.input.policy.answerWithinMs)) break;
      this.record('runbooks', `Nobody answered within ${Math.round(this.input.policy.answerWithinMs / 60_000)} min: telling ${next}.`);
    }
    const answer: ChunkAnswer = this.cancelRequested ? 'cancel' : this.decision!;
    if (answer === 'skip') this.progress.skipped.push(chunk);
    this.failure = undefined;
    this.current = undefined;
    this.showDetails();
    return answer;
  }

  finish(): BackfillOutcome {
    this.finished = true;
    const { chunksDone, recordsWritten, skipped, runs } = this.progress;
    const skippedText = skipped.length ? `; skipped ${skipped.map(chunkName).join(', ')}` : '';
    this.record('runbooks', `${this.cancelRequested ? 'Cancelled' : 'Done'}: ${chunksDone} of ${this.chunksTotal} chunk(s), ${recordsWritten} record(s) written${skippedText}.`);
    this.showDetails();
    return { cancelled: this.cancelRequested, chunksDone, recordsWritten, skipped, runs };
  }

  status(): BackfillStatus {
    const { chunksDone, recordsWritten, skipped, runs, startedAt, loadingMs, recordsPerChunk, paused, log } = this.progress;
    return {
      workflowId: workflowInfo().workflowId,
      request: this.input.request,
      phase: this.phase(),
      chunksTotal: this.chunksTotal,
      chunksDone,
      recordsWritten,
      ...(this.current ? { current: this.current } : {}),
      ...(this.current && this.currentSince !== undefined ? { currentSince: new Date(this.currentSince).toISOString() } : {}),
      ...(this.failure ? { failure: this.failure } : {}),
      skipped,
      runs,
      startedAt: new Date(startedAt).toISOString(),
      loadingMs,
      ...(recordsPerChunk === undefined ? {} : { recordsPerChunk }),
      paused,
      log,
    };
  }

  private phase(): BackfillPhase {
    if (this.finished) return this.cancelRequested ? 'cancelled' : 'done';
    if (this.cancelRequested) return 'cancelling';
    if (this.failure) return 'waiting-for-human';
    return this.progress.paused ? 'paused' : 'running';
  }

  private range(): string {
    const { from, to } = this.input.request;
    return from === to ? `${from}` : `${from}–${to}`;
  }

  private record(by: string, message: string): void {
    this.progress.log.push({ at: new Date().toISOString(), by, message });
    if (this.progress.log.length > LOG_LIMIT) this.progress.log.splice(0, this.progress.log.length - LOG_LIMIT);
  }

  /**
   * What the Temporal UI shows as the workflow's current details, as of the latest chunk started or done (workflow
   * time): the running chunk's cursor is its heartbeat, which only the UI's pending activity shows.
   */
  private showDetails(): void {
    const { chunksDone, skipped, paused } = this.progress;
    const percent = this.chunksTotal ? Math.floor((100 * (chunksDone + skipped.length)) / this.chunksTotal) : 100;
    const now = Date.now();
    // Paced by the chunks loaded only: the running one's progress is its heartbeat, which a workflow does not see.
    const pace = paceOf(this.status(), now);
    const total = pace.recordsTotal === undefined ? '' : ` of ${pace.recordsTotalEstimated ? '≈' : ''}${pace.recordsTotal}`;
    const rate = pace.recordsPerSecond > 0 ? `, ${pace.recordsPerSecond} records/s over ${chunksDone} chunk(s) loaded` : '';
    const eta = pace.etaSeconds !== undefined && pace.recordsTotalEstimated ? `, ETA ${new Date(now + pace.etaSeconds * 1000).toISOString()}` : '';
    setCurrentDetails(
      [
        `**${this.phase()}**${paused && this.phase() !== 'paused' ? ' (paused)' : ''} — ${chunksDone + skipped.length} of ${this.chunksTotal} chunk(s) (${percent}%), ${pace.recordsSoFar}${total} record(s) written${rate}${eta}`,
        this.current
          ? this.failure
            ? `Failed: ${chunkName(this.current)} — ${this.failure}. Send retryChunk or skipChunk: {"by": "<you>"}`
            : `Loading: ${chunkName(this.current)} since ${new Date(this.currentSince!).toISOString()}; its cursor (the last record written) is the pending loadChunk's heartbeat`
          : '',
        skipped.length ? `Skipped: ${skipped.map(chunkName).join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('\n\n'),
    );
  }

  private installHandlers(): void {
    const descriptions: Record<BackfillVerb, string> = {
      pause: 'Pause after the current chunk: {"by": "<you>"}',
      resume: 'Resume a paused backfill: {"by": "<you>"}',
      cancel: 'Stop after the current chunk: {"by": "<you>"}',
      retryChunk: 'Load the failed chunk again: {"by": "<you>"}',
      skipChunk: 'Skip the failed chunk and go on: {"by": "<you>"}',
    };
    setHandler(backfillStatusQuery, () => this.status(), { description: 'Chunks and records done, the current chunk, its failure, the log.' });
    for (const verb of Object.keys(descriptions) as BackfillVerb[]) {
      setHandler(backfillSignals[verb], (raw) => void this.decide(verb, raw, false), { description: descriptions[verb] });
      setHandler(backfillUpdates[verb], (decision) => this.decide(verb, decision, true), {
        validator: (decision) => void this.refusal(verb, decision, true),
        description: descriptions[verb],
      });
    }
  }

  /** Why `verb` cannot be done now; throws for an Update, records on the log for a Signal (which has no answer). */
  private refusal(verb: BackfillVerb, raw: unknown, isUpdate: boolean): BackfillDecision | undefined {
    const refuse = (type: string, message: string) => {
      if (isUpdate) throw ApplicationFailure.nonRetryable(message, type);
      this.record('runbooks', `Refused ${verb}: ${message}`);
      return undefined;
    };
    const parsed = BackfillDecisionSchema.safeParse(raw);
    if (!parsed.success) return refuse(BackfillRefusal.invalidPayload, `${verb} needs {"by": "<name>", "reason"?: "…"}: ${parsed.error.issues[0]?.message}`);
    const decision = parsed.data;
    if (this.finished) return refuse(BackfillRefusal.finished, 'the backfill has finished');
    switch (verb) {
      case 'pause':
        return this.progress.paused ? refuse(BackfillRefusal.notNow, 'it is paused already') : decision;
      case 'resume':
        return this.progress.paused ? decision : refuse(BackfillRefusal.notNow, 'it is not paused');
      case 'cancel':
        return this.cancelRequested ? refuse(BackfillRefusal.notNow, 'it is cancelling already') : decision;
      case 'retryChunk':
      case 'skipChunk': {
        if (!this.failure || this.decision) return refuse(BackfillRefusal.notNow, 'no chunk waits for a decision');
        const allowed = decision.by === this.input.request.by || this.input.deciders.includes(decision.by);
        return allowed ? decision : refuse(BackfillRefusal.notADecider, `${decision.by} may not decide on failed chunks (approvers.backfill-chunk)`);
      }
    }
  }

  private decide(verb: BackfillVerb, raw: unknown, validated: boolean): BackfillStatus {
    const decision = validated ? (raw as BackfillDecision) : this.refusal(verb, raw, false);
    if (!decision) return this.status();
    const why = decision.reason ? ` (${decision.reason})` : '';
    if (verb === 'pause') this.progress.paused = true;
    if (verb === 'resume') this.progress.paused = false;
    if (verb === 'cancel') this.cancelRequested = true;
    if (verb === 'retryChunk') this.decision = 'retry';
    if (verb === 'skipChunk') this.decision = 'skip';
    const what = { pause: 'Paused: no chunk starts until resumed', resume: 'Resumed', cancel: 'Cancel requested: stopping after the current chunk', retryChunk: 'Retrying the failed chunk', skipChunk: 'Skipping the failed chunk' }[verb];
    this.record(decision.by, `${what}${why}.`);
    this.showDetails();
    return this.status();
  }
}
