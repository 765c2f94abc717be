/**
 * The ETL pipeline in its container (runbook §3): `<program> run …`, `<program> status` and
 * `<program> clean-downloads` by `docker exec` with argv arrays — never a shell string — and its log read through
 * the Docker API. Log lines are `<ISO time> <LEVEL> <message>[ key=value …]`; failures are classified here, in code.
 */
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type Docker from 'dockerode';
import { z } from 'zod';
import type { ChunkCursor } from '../backfills/model';
import type { Config } from '../config/schema';
import { ActivityErrorType } from '../runbooks/errorTypes';
import { execInContainer, inspectOrNull, tailLogs } from './docker';
import { targetConfig, type TargetRef } from './targets';

/** What the pipeline's exit code means (src/sandbox/auditApp/etl.ts documents the same codes). */
const EXIT = { ok: 0, rateLimited: 3, sourceChanged: 4, diskFull: 5, crashed: 70, stdinClosed: 75 } as const;
const WROTE_RECORD = /\bINFO wrote record\b.*\brecord=(\d+) of=(\d+)/;
const RUN_STARTED = /\bINFO run started\b.*\brun=(\S+)/;
const RUN_FINISHED = /\bINFO run finished\b/;
const FAILURE_LINE = /\b(?:ERROR|FATAL) (.*)$/;
/** What a failure line says, first match first: a FATAL line about a full disk is a full disk. */
const FAILURE_KINDS: ReadonlyArray<[EtlFailureKind, RegExp]> = [
  ['rate-limited', /rate.?limit|\b429\b|too many requests/i],
  ['source-changed', /source (?:format )?changed|selector\b.*\bmatched nothing/i],
  ['disk-full', /disk full|\bENOSPC\b|no space left on device/i],
  ['crashed', /\bFATAL\b|\bcrash/i],
];
const EXIT_KINDS: Readonly<Record<number, EtlFailureKind>> = {
  [EXIT.rateLimited]: 'rate-limited',
  [EXIT.sourceChanged]: 'source-changed',
  [EXIT.diskFull]: 'disk-full',
  [EXIT.crashed]: 'crashed',
};
/** Evidence lines and the excerpt are cut to this, so workflow history stays small. */
const EVIDENCE_MAX = 500;
const EXCERPT_LINES = 20;
/** A county as the config allows it (letters, spaces, . ' -): it becomes one argv element, never shell text. */
const COUNTY = /^[A-Za-z][A-Za-z .'-]{0,62}$/;

export interface ChunkRef extends TargetRef<'etl'> {
  county: string;
  year: number;
  /** The pipeline's pause between records. */
  delayMs: number;
}


export interface ChunkResult {
  county: string;
  year: number;
  /** The record this attempt started from (1, or after the last heartbeat's cursor). */
  from: number;
  /** Records this attempt wrote. */
  written: number;
  /** Records the source has for the county-year. */
  records: number;
}

/** How the runbook reads a failure of the pipeline. */
export type EtlFailureKind = 'rate-limited' | 'source-changed' | 'disk-full' | 'crashed' | 'other';

export interface EtlFailure {
  kind: EtlFailureKind;
  /** The log line that says so (the last ERROR or FATAL line of the run). */
  evidence: string;
}

/** A run as `<program> status` reports it (the fields the runbook reads; the rest is dropped). */
export interface EtlRun {
  id: string;
  startedAt?: string;
  finishedAt?: string | null;
  ok?: boolean;
  exitCode?: number | null;
  written?: number;
  error?: string;
}

export interface EtlDownloads {
  dir: string;
  freeBytes: number;
  totalBytes: number;
  files: number;
}

export interface EtlDiagnosis {
  container: string;
  exists: boolean;
  running: boolean;
  /** Log lines read (up to the tail asked for). */
  linesRead: number;
  /** The latest run's failure in those lines; absent when the latest run there finished, or none failed. */
  failure?: EtlFailure;
  /** The last lines of the log, for the timeline and the escalation. */
  excerpt: string;
  lastRun?: EtlRun;
  lastSuccess?: EtlRun;
  downloads?: EtlDownloads;
  /** Why `<program> status` told nothing (the container is not running, the program failed…). */
  statusError?: string;
}

export interface PipelineRef extends TargetRef<'etl'> {
  /** `--delay-ms`: the pause between requests to the source; absent: the pipeline's own default. */
  delayMs?: number;
}

export interface PipelineRun {
  ok: boolean;
  exitCode: number;
  /** The run's id from its `run started` line. */
  runId?: string;
  delayMs?: number;
  /** Records it wrote (`wrote record` lines). */
  written: number;
  failure?: EtlFailure;
  /** When it failed: its last lines (as many and as clipped as a diagnosis's excerpt), for the escalation. */
  excerpt?: string;
}

export interface CleanedDownloads {
  removed: number;
  freedBytes: number;
}

const RunSchema = z.looseObject({
  id: z.coerce.string(),
  startedAt: z.string().optional().catch(undefined),
  finishedAt: z.string().nullable().optional().catch(undefined),
  ok: z.boolean().optional().catch(undefined),
  exitCode: z.number().nullable().optional().catch(undefined),
  written: z.number().optional().catch(undefined),
  error: z.string().optional().catch(undefined),
});
const StatusSchema = z.looseObject({
  lastRun: RunSchema.nullable().optional().catch(undefined),
  lastSuccess: RunSchema.nullable().optional().catch(undefined),
  downloads: z.looseObject({ dir: z.string(), freeBytes: z.number(), totalBytes: z.number(), files: z.number() }).optional().catch(undefined),
});
const CleanedSchema = z.looseObject({ removed: z.number(), freedBytes: z.number() });

/**
 * The failure of the latest run in these log lines: its last ERROR or FATAL line, classified. None when a
 * `run finished` line comes after the last failure (the latest run succeeded) or no line failed.
 */
export function classifyEtlLog(lines: readonly string[]): EtlFailure | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (RUN_FINISHED.test(line)) return undefined;
    if (FAILURE_LINE.test(line)) return { kind: failureKind(line), evidence: clip(line.trim()) };
  }
  return undefined;
}

/** The exit code decides when it is one of the pipeline's; otherwise what the line says. */
function failureKind(line: string, exitCode?: number): EtlFailureKind {
  const byExit = exitCode === undefined ? undefined : EXIT_KINDS[exitCode];
  return byExit ?? FAILURE_KINDS.find(([, pattern]) => pattern.test(line))?.[0] ?? 'other';
}

export function createEtlActivities(docker: Docker, config: Pick<Config, 'targets'>) {
  return {
    /**
     * Diagnosis of runbook §3: the last `tailLines` (200) lines of the container's log through the Docker API,
     * classified (rate limited / source changed / disk full / crashed / other) with the evidence line, and
     * `<program> status` (last run, last successful run, the download directory's free space). Read-only: a
     * retry reads again.
     */
    async diagnoseEtl({ target, tailLines = 200 }: TargetRef<'etl'> & { tailLines?: number }): Promise<EtlDiagnosis> {
      const { container, program } = targetConfig(config, target);
      const info = await inspectOrNull(docker, container);
      if (!info) return { container, exists: false, running: false, linesRead: 0, excerpt: '', statusError: `container ${container} does not exist` };
      const lines = ((await tailLogs(docker, container, tailLines)) ?? '').split('\n').filter((line) => line.trim() !== '');
      const failure = classifyEtlLog(lines);
      const diagnosis: EtlDiagnosis = {
        container,
        exists: true,
        running: info.State.Running,
        linesRead: lines.length,
        ...(failure ? { failure } : {}),
        excerpt: lines.slice(-EXCERPT_LINES).map(clip).join('\n'),
      };
      if (!info.State.Running) return { ...diagnosis, statusError: `container ${container} is ${info.State.Status}` };
      const { exitCode, output } = await execInContainer(docker, container, [...program, 'status']);
      const status = exitCode === 0 ? StatusSchema.safeParse(jsonIn(output)) : undefined;
      if (!status?.success) return { ...diagnosis, statusError: `${program.join(' ')} status exited ${exitCode}: ${clip(output.trim().split('\n').at(-1) ?? '')}` };
      const { lastRun, lastSuccess, downloads } = status.data;
      return {
        ...diagnosis,
        ...(lastRun ? { lastRun: pickRun(lastRun) } : {}),
        ...(lastSuccess ? { lastSuccess: pickRun(lastSuccess) } : {}),
        ...(downloads ? { downloads: { dir: downloads.dir, freeBytes: downloads.freeBytes, totalBytes: downloads.totalBytes, files: downloads.files } } : {}),
      };
    },

    /**
     * The runbook's manual retry: `<program> run [--delay-ms D] --stop-when-stdin-closes`, an argv array, its lines
     * read as they come (each one heartbeats). A failed run is a result, not an error: the runbook decides by its
     * kind. A retry of this activity (the worker died, Docker did not answer) runs the pipeline again from the start,
     * which is harmless — it upserts — and the earlier run stops when its exec's stdin closes with the dead worker.
     */
    async runPipeline({ target, delayMs }: PipelineRef): Promise<PipelineRun> {
      if (delayMs !== undefined && !(Number.isInteger(delayMs) && delayMs >= 0 && delayMs <= 600_000)) {
        throw ApplicationFailure.nonRetryable(`--delay-ms ${delayMs} is not a whole number of milliseconds up to 600000`, ActivityErrorType.invalidInput);
      }
      const { container, program } = targetConfig(config, target);
      const context = Context.current();
      const argv = [...program, 'run', ...(delayMs === undefined ? [] : ['--delay-ms', String(delayMs)]), '--stop-when-stdin-closes'];
      let written = 0;
      let runId: string | undefined;
      let lastFailure = '';
      const lastLines: string[] = [];
      // Between lines too: the source may take a while to answer.
      const beat = setInterval(() => context.heartbeat({ written }), 5_000);
      const exitCode = await execStreaming(docker, container, argv, context, (line) => {
        if (line.trim() !== '' && lastLines.push(clip(line)) > EXCERPT_LINES) lastLines.shift();
        const started = RUN_STARTED.exec(line);
        if (started) runId = started[1];
        if (WROTE_RECORD.test(line)) written += 1;
        if (FAILURE_LINE.test(line)) lastFailure = line.trim();
        context.heartbeat({ written });
      }).finally(() => clearInterval(beat));
      const run: PipelineRun = { ok: exitCode === EXIT.ok, exitCode, ...(runId ? { runId } : {}), ...(delayMs === undefined ? {} : { delayMs }), written };
      if (run.ok) return run;
      const evidence = clip(lastFailure || `${program.join(' ')} run exited ${exitCode}`);
      return { ...run, failure: { kind: failureKind(evidence, exitCode), evidence }, excerpt: lastLines.join('\n') };
    },

    /**
     * Runbook §3 "If disk space full": `<program> clean-downloads` (the runbook's `rm -rf /tmp/etl_downloads/*`,
     * done by the pipeline, which knows its own download directory). Idempotent: a retry finds less or nothing to
     * remove. A non-zero exit is retried.
     */
    async cleanDownloads({ target }: TargetRef<'etl'>): Promise<CleanedDownloads> {
      const { container, program } = targetConfig(config, target);
      const { exitCode, output } = await execInContainer(docker, container, [...program, 'clean-downloads']);
      const cleaned = exitCode === 0 ? CleanedSchema.safeParse(jsonIn(output)) : undefined;
      if (!cleaned?.success) {
        throw ApplicationFailure.retryable(`${program.join(' ')} clean-downloads exited ${exitCode}: ${clip(output.trim().split('\n').at(-1) ?? '')}`, ActivityErrorType.etlFailed);
      }
      return { removed: cleaned.data.removed, freedBytes: cleaned.data.freedBytes };
    },

    /**
     * Loads one county-year: `<program> run --county C --year Y --from N --delay-ms D --stop-when-stdin-closes`,
     * heartbeating the last record written. A retry (after a crash of this worker, or of the pipeline) resumes
     * from the last heartbeat's cursor, so at most the records written since that heartbeat are written again —
     * harmless, the pipeline upserts. The exec's stdin stays open while this runs: when this worker dies or the
     * activity is cancelled, it closes and the pipeline stops instead of running on beside the retry.
     */
    async loadChunk({ target, county, year, delayMs }: ChunkRef): Promise<ChunkResult> {
      if (!COUNTY.test(county)) throw ApplicationFailure.nonRetryable(`"${county}" is not a county name`, ActivityErrorType.invalidInput);
      const { container, program } = targetConfig(config, target);
      const context = Context.current();
      const from = ((context.info.heartbeatDetails as ChunkCursor | undefined)?.lastRecord ?? 0) + 1;
      const argv = [...program, 'run', '--county', county, '--year', String(year), '--from', String(from), '--delay-ms', String(delayMs), '--stop-when-stdin-closes'];
      let written = 0;
      let records = 0;
      let lastFailure = '';
      const exitCode = await execStreaming(docker, container, argv, context, (line) => {
        const wrote = WROTE_RECORD.exec(line);
        if (wrote) {
          written += 1;
          records = Number(wrote[2]);
          context.heartbeat({ lastRecord: Number(wrote[1]), records } satisfies ChunkCursor);
        }
        const failed = FAILURE_LINE.exec(line);
        if (failed) lastFailure = failed[1]!;
      });
      if (exitCode === EXIT.ok) return { county, year, from, written, records };
      throw pipelineFailure(exitCode, lastFailure || `the pipeline exited ${exitCode}`);
    },
  };
}

export type EtlActivities = ReturnType<typeof createEtlActivities>;

function pipelineFailure(exitCode: number, message: string): ApplicationFailure {
  switch (failureKind(message, exitCode)) {
    case 'source-changed':
      // A human must fix the selectors: retrying changes nothing.
      return ApplicationFailure.nonRetryable(message, ActivityErrorType.etlSourceChanged);
    case 'disk-full':
      // Retrying before the downloads directory is cleaned changes nothing either.
      return ApplicationFailure.nonRetryable(message, ActivityErrorType.etlDiskFull);
    case 'rate-limited':
      return ApplicationFailure.retryable(message, ActivityErrorType.etlRateLimited);
    default:
      return ApplicationFailure.retryable(message, ActivityErrorType.etlFailed);
  }
}

function pickRun(run: z.infer<typeof RunSchema>): EtlRun {
  const { id, startedAt, finishedAt, ok, exitCode, written, error } = run;
  const picked: EtlRun = { id };
  if (startedAt !== undefined) picked.startedAt = startedAt;
  if (finishedAt !== undefined) picked.finishedAt = finishedAt;
  if (ok !== undefined) picked.ok = ok;
  if (exitCode !== undefined) picked.exitCode = exitCode;
  if (written !== undefined) picked.written = written;
  if (error !== undefined) picked.error = clip(error);
  return picked;
}

/** The JSON object a command printed (its output may carry log lines around it); undefined when there is none. */
function jsonIn(output: string): unknown {
  const start = output.indexOf('{');
  const end = output.lastIndexOf('}');
  if (start < 0 || end < start) return undefined;
  try {
    return JSON.parse(output.slice(start, end + 1));
  } catch {
    return undefined;
  }
}

function clip(text: string): string {
  return text.length > EVIDENCE_MAX ? `${text.slice(0, EVIDENCE_MAX)}…` : text;
}

/**
 * Runs argv in the container with stdin held open, calling `onLine` for each line of its output; resolves with the
 * exit code. Cancellation (or this process dying) closes stdin, which the pipeline takes as the order to stop.
 */
async function execStreaming(docker: Docker, container: string, argv: string[], context: Context, onLine: (line: string) => void): Promise<number> {
  const exec = await docker
    .getContainer(container)
    .exec({ Cmd: argv, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false })
    .catch((err: { statusCode?: number; message?: string }) => {
      // No such container: no retry brings it back. (Not running, 409, is retried: it may be restarting.)
      if (err.statusCode === 404) throw ApplicationFailure.nonRetryable(`container ${container} does not exist`, ActivityErrorType.containerNotFound);
      throw err;
    });
  const stream = (await exec.start({ hijack: true, stdin: true })) as NodeJS.ReadWriteStream & { destroy(): void };
  const output = new PassThrough();
  docker.modem.demuxStream(stream, output, output);
  const lines = createInterface({ input: output });
  lines.on('line', onLine);
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  const cancelled = context.cancelled.catch((err: unknown) => {
    stream.end(); // stdin closed: the pipeline stops after its current record
    throw err instanceof CancelledFailure ? err : new CancelledFailure(String(err));
  });
  try {
    await Promise.race([ended, cancelled]);
  } finally {
    output.end();
    lines.close();
  }
  const { ExitCode } = await exec.inspect();
  return ExitCode ?? -1;
}
