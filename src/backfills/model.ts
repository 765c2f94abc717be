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
  /** Why `current` failed for good, while it waits for a human. */
  failure?: string;
  skipped: Chunk[];
  runs: number;
  startedAt: string;
  log: BackfillEvent[];
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
