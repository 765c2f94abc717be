/**
 * What a backfill is — runbook §3 "ETL Job Failures": "backfill specific date range" — shared by its workflow, the
 * activity that loads a chunk, and their clients (CLI, HTTP API, tests). Pure types and pure functions only.
 */

/** One unit of work: the ETL pipeline run for one county and one year. Chunks are idempotent (upserts). */
export interface Chunk {
  county: string;
  year: number;
}

/** What an operator asks for (CLI, HTTP, the ETL runbook): years `from`..`to`, every configured county unless named. */
export interface BackfillRequest {
  from: number;
  to: number;
  counties?: string[];
  /** Who asked (token name, OS user, or a runbook). */
  by: string;
}

export interface BackfillPolicy {
  /** The pipeline's pause between records (`--delay-ms`). */
  delayMs: number;
  /** Chunks per workflow run before continue-as-new keeps the history short. */
  chunksPerRun: number;
  /** How long a chunk that failed for good waits for retry-chunk / skip-chunk before the next contact is told. */
  answerWithinMs: number;
}

/** Progress, carried across continue-as-new. */
export interface BackfillProgress {
  /** Index in chunksOf(input) of the next chunk to load. */
  next: number;
  chunksDone: number;
  recordsWritten: number;
  skipped: Chunk[];
  /** Workflow runs so far (1 + continue-as-new count). */
  runs: number;
  /** Epoch ms the backfill started (its first run). */
  startedAt: number;
  /** Workflow time spent loading the chunks done, in ms (pauses and waits for a human left out): the throughput's clock. */
  loadingMs: number;
  /** Records the source has per county-year, as the latest chunk loaded reported. */
  recordsPerChunk?: number;
  paused: boolean;
  log: BackfillEvent[];
}

export interface BackfillEvent {
  at: string;
  by: string;
  message: string;
}

export interface BackfillInput {
  request: BackfillRequest;
  /** Resolved at start: the counties loaded, in order. */
  counties: string[];
  policy: BackfillPolicy;
  /** Contacts told, in order, when a chunk fails for good and nobody answers; empty: none. */
  escalateTo: string[];
  /** Who may send retry-chunk / skip-chunk besides `request.by` (config `approvers.backfill-chunk`). */
  deciders: string[];
  progress?: BackfillProgress;
}

export type BackfillPhase = 'running' | 'paused' | 'waiting-for-human' | 'cancelling' | 'done' | 'cancelled';

/** The `status` query's answer. */
export interface BackfillStatus {
  workflowId: string;
  request: BackfillRequest;
  phase: BackfillPhase;
  chunksTotal: number;
  chunksDone: number;
  recordsWritten: number;
  /** The chunk being loaded (or that failed), if any. */
  current?: Chunk;
  /** When the load of `current` started (workflow time). */
  currentSince?: string;
  /** Why `current` failed for good, while it waits for a human. */
  failure?: string;
  skipped: Chunk[];
  runs: number;
  startedAt: string;
  /** See BackfillProgress. */
  loadingMs: number;
  recordsPerChunk?: number;
  /** Paused by an operator (the phase may say something more pressing, e.g. waiting-for-human). */
  paused: boolean;
  log: BackfillEvent[];
}

/** How far a backfill is in records, how fast it goes and how long it still needs. */
export interface BackfillPace {
  /** Records written so far, the running chunk's cursor included. */
  recordsSoFar: number;
  /**
   * Records it will have written when done: those written plus, for each chunk left, the source's count per
   * county-year (the running chunk's, else the latest chunk's). Unknown until a chunk reports its count.
   */
  recordsTotal?: number;
  /** True while chunks are left: each county-year's count is only known once its pipeline reports it. */
  recordsTotalEstimated: boolean;
  /** Records per second of loading time (pauses and waits for a human left out); 0 until something is written. */
  recordsPerSecond: number;
  /** Seconds left at that pace; unknown until both the pace and the total are. */
  etaSeconds?: number;
}

/**
 * Heartbeat details of the chunk activity (loadChunk): the last record written, so a retry resumes after it, and the
 * county-year's record count (`of=` in the pipeline's log; absent in a heartbeat from before it was sent).
 */
export interface ChunkCursor {
  lastRecord: number;
  records?: number;
}

type PaceFacts = Pick<BackfillStatus, 'chunksTotal' | 'chunksDone' | 'recordsWritten' | 'skipped' | 'loadingMs' | 'recordsPerChunk' | 'currentSince' | 'failure'>;

/**
 * The pace at `now` (epoch ms), from the chunks loaded: their records over their loading time; and the running chunk
 * with its records so far and its time up to `now`, when its heartbeat (`running`) tells how far it is.
 */
export function paceOf(facts: PaceFacts, now: number, running?: ChunkCursor): BackfillPace {
  const inChunkMs = running && facts.currentSince && !facts.failure ? Math.max(0, now - Date.parse(facts.currentSince)) : 0;
  const recordsSoFar = facts.recordsWritten + (running?.lastRecord ?? 0);
  const seconds = (facts.loadingMs + inChunkMs) / 1000;
  const perSecond = seconds > 0 ? recordsSoFar / seconds : 0;
  const chunksLeft = facts.chunksTotal - facts.chunksDone - facts.skipped.length;
  const perChunk = running?.records ?? facts.recordsPerChunk;
  const recordsTotal = chunksLeft === 0 ? facts.recordsWritten : perChunk === undefined ? undefined : facts.recordsWritten + chunksLeft * perChunk;
  return {
    recordsSoFar,
    ...(recordsTotal === undefined ? {} : { recordsTotal }),
    recordsTotalEstimated: chunksLeft > 0,
    recordsPerSecond: Math.round(perSecond * 10) / 10,
    ...(recordsTotal !== undefined && perSecond > 0 ? { etaSeconds: Math.round(Math.max(0, recordsTotal - recordsSoFar) / perSecond) } : {}),
  };
}

export interface BackfillOutcome {
  cancelled: boolean;
  chunksDone: number;
  recordsWritten: number;
  skipped: Chunk[];
  runs: number;
}

/** Every chunk of a backfill, year by year, county by county: the order the workflow loads them in. */
export function chunksOf(input: Pick<BackfillInput, 'request' | 'counties'>): Chunk[] {
  const chunks: Chunk[] = [];
  for (let year = input.request.from; year <= input.request.to; year++) for (const county of input.counties) chunks.push({ county, year });
  return chunks;
}

export const chunkName = (chunk: Chunk) => `${chunk.county} ${chunk.year}`;
