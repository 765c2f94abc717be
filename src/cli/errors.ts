/** How the CLI turns any failure into one line on stderr and an exit code. */
import { CommanderError } from 'commander';
import { AuditDatabaseError } from '../audit/migrate';
import { ConfigError } from '../config/load';
import { IncidentOperationError } from '../incidents/operations';
import { isTemporalUnavailable } from '../temporal/errors';

/** Exit codes: 0 ok, 1 the operation failed or was refused, 2 bad usage or bad configuration. */
export const ExitCode = { ok: 0, failed: 1, usage: 2 } as const;

/** A failure the CLI describes itself: its message is the whole story, printed as is. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.failed,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * Wraps whatever `run` throws with what we were doing, so "ECONNREFUSED" says which connection. Errors that
 * already say it (an unreachable audit database names itself and its URL) pass through unchanged.
 */
export async function doing<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof CliError || err instanceof ConfigError || err instanceof IncidentOperationError || err instanceof AuditDatabaseError) throw err;
    throw new CliError(`${what}: ${firstLine(err)}`);
  }
}

/** Prints the failure and returns the process exit code. */
export function reportError(err: unknown, write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): number {
  if (err instanceof CommanderError) {
    // Commander printed its own message (e.g. "error: unknown option '--x'"); help and --version are not failures.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return ExitCode.ok;
    return ExitCode.usage;
  }
  if (err instanceof ConfigError) {
    write(err.message);
    return ExitCode.usage;
  }
  if (err instanceof CliError) {
    write(`error: ${err.message}`);
    return err.exitCode;
  }
  if (err instanceof IncidentOperationError) {
    write(`error: ${err.message} (${err.reason})`);
    return ExitCode.failed;
  }
  if (isTemporalUnavailable(err)) {
    write(`error: Temporal is unavailable: ${firstLine(err)}`);
    return ExitCode.failed;
  }
  write(`error: ${firstLine(err)}`);
  if (process.env.RUNBOOKS_DEBUG) write(String((err as Error)?.stack ?? err));
  return ExitCode.failed;
}

export function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split('\n').find((line) => line.trim() !== '') ?? message).trim() || (err as Error)?.name || 'unknown error';
}
