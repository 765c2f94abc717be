/** What every command needs: the configuration, a Temporal client, validated input. */
import { userInfo } from 'node:os';
import type { Client, Connection } from '@temporalio/client';
import type { Command } from 'commander';
import { z } from 'zod';
import { configFilePath, loadConfig } from '../config/load';
import type { Config } from '../config/schema';
import { connectClient } from '../temporal/client';
import { CliError, ExitCode, firstLine } from './errors';

export interface GlobalOptions {
  config?: string;
}

interface LoadedConfig {
  config: Config;
  /** The file it came from, or undefined for the embedded defaults. */
  file?: string;
}

/** `--config FILE`, else RUNBOOKS_CONFIG, else ./runbooks.yaml if present, else the embedded defaults; env overrides win. */
export function loadCliConfig(command: Command): LoadedConfig {
  const { config: file } = command.optsWithGlobals<GlobalOptions>();
  return { config: loadConfig({ file }), file: configFilePath({ file }) };
}

/** Runs `use` with a connected client and always closes the connection. */
export async function withClient<T>(config: Config, use: (client: Client) => Promise<T>): Promise<T> {
  let connected: { client: Client; connection: Connection };
  try {
    connected = await connectClient(config);
  } catch (err) {
    throw new CliError(`cannot reach Temporal at ${config.temporal.address}: ${firstLine(err)} (is it running? set TEMPORAL_ADDRESS or temporal.address)`);
  }
  try {
    return await use(connected.client);
  } finally {
    await connected.connection.close().catch(() => {});
  }
}

/**
 * Validates command input with zod; the error names the option (`--step`) or argument (`<id>`) at fault.
 * `positional` lists the keys that are arguments rather than options.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, positional: string[] = []): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    const name = positional.includes(key) ? `<${key}>` : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    return `${key ? name : 'input'}: ${issue.message}`;
  });
  throw new CliError(problems.join('; '), ExitCode.usage);
}

/** Who acts, as the workflow checks it (definitions.ts: 1-100 characters after trimming). */
export const ActorNameSchema = z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters');
export const WorkflowIdSchema = z.string().trim().min(1, 'must not be empty').max(1000, 'at most 1000 characters');
export const NoteSchema = z.string().max(1000, 'at most 1000 characters').optional();

/** The OS user running the CLI: `os.userInfo()`, else `$USER`; undefined when neither is known (a uid without a passwd entry, no $USER). */
export function osUserName(env: NodeJS.ProcessEnv = process.env, osUser: () => { username: string } = userInfo): string | undefined {
  try {
    const name = osUser().username.trim();
    if (name) return name;
  } catch {
    // No passwd entry for this uid (e.g. a container run with --user 12345): try the environment.
  }
  return env.USER?.trim() || undefined;
}

/** `--by`, else the OS user name; without either, a usage error that says what to pass. */
export function actorOrDefault(by: unknown, userName: () => string | undefined = () => osUserName()): unknown {
  if (by !== undefined) return by;
  const name = userName();
  if (name === undefined) {
    throw new CliError('--by: not given, and there is no OS user name to default to (os.userInfo() knows none and $USER is unset); pass --by NAME', ExitCode.usage);
  }
  return name;
}
