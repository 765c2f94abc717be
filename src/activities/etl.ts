/**
 * The ETL pipeline in its container (runbook §3): `<program> run …` by `docker exec` with an argv array — never a
 * shell string — its log lines read as they come.
 */
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type Docker from 'dockerode';
import type { Config } from '../config/schema';
import { ActivityErrorType } from '../runbooks/errorTypes';
import { targetConfig, type TargetRef } from './targets';

/** What the pipeline's exit code means (src/sandbox/auditApp/etl.ts documents the same codes). */
const EXIT = { ok: 0, rateLimited: 3, sourceChanged: 4, diskFull: 5, crashed: 70, stdinClosed: 75 } as const;
const WROTE_RECORD = /\bINFO wrote record\b.*\brecord=(\d+) of=(\d+)/;
const FAILURE_LINE = /\b(?:ERROR|FATAL) (.*)$/;
/** A county as the config allows it (letters, spaces, . ' -): it becomes one argv element, never shell text. */
const COUNTY = /^[A-Za-z][A-Za-z .'-]{0,62}$/;

export interface ChunkRef extends TargetRef<'etl'> {
  county: string;
  year: number;
  /** The pipeline's pause between records. */
  delayMs: number;
}

/** Heartbeat details of loadChunk: the last record written, so a retry resumes after it. */
export interface ChunkCursor {
  lastRecord: number;
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

export function createEtlActivities(docker: Docker, config: Pick<Config, 'targets'>) {
  return {
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
          context.heartbeat({ lastRecord: Number(wrote[1]) } satisfies ChunkCursor);
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
  switch (exitCode) {
    case EXIT.sourceChanged:
      // A human must fix the selectors: retrying changes nothing.
      return ApplicationFailure.nonRetryable(message, ActivityErrorType.etlSourceChanged);
    case EXIT.diskFull:
      // Retrying before the downloads directory is cleaned changes nothing either.
      return ApplicationFailure.nonRetryable(message, ActivityErrorType.etlDiskFull);
    case EXIT.rateLimited:
      return ApplicationFailure.retryable(message, ActivityErrorType.etlRateLimited);
    default:
      return ApplicationFailure.retryable(message, ActivityErrorType.etlFailed);
  }
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
