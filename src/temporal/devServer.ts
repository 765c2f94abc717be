/**
 * The Temporal dev server (`temporal server start-dev`) as a child process: finding the temporal CLI, starting
 * the server, waiting until it answers, stopping it. `runbooks dev` runs it with a state file and the Web UI;
 * the test harness runs it headless on free ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { incidentSearchAttributes } from '../workflows/searchAttributes';

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
/** Installs the temporal CLI into .tools/bin (`npm start` runs it first). */
const ENSURE_TEMPORAL_CLI = 'bash scripts/ensure-tools.sh temporal';

/** Something missing or broken about the dev server; the message says what and how to fix it. */
export class DevServerError extends Error {
  override name = 'DevServerError';
}

// ---- finding executables ------------------------------------------------------------------

function isExecutable(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of an executable named `name` on PATH, or undefined. */
export function whichSync(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return (env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => path.join(dir, name))
    .find(isExecutable);
}

/**
 * `name` from the environment variable `envVar`, then PATH, then .tools/bin — the order scripts/ensure-tools.sh
 * checks in, so what it found is what we run. `install` is the command that provides it.
 */
export function findTool(name: string, envVar: string, install: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[envVar];
  if (fromEnv) {
    if (isExecutable(fromEnv)) return path.resolve(fromEnv);
    throw new DevServerError(`${name} at ${envVar}=${fromEnv} is not an executable file — fix or unset ${envVar}, or run \`${install}\``);
  }
  const local = path.join(PROJECT_ROOT, '.tools', 'bin', name);
  const found = whichSync(name, env) ?? (isExecutable(local) ? local : undefined);
  if (found) return found;
  throw new DevServerError(`${name} not found (looked at ${envVar}, PATH, .tools/bin/${name}) — run \`${install}\``);
}

/** The temporal CLI: TEMPORAL_CLI_PATH, then `temporal` on PATH, then .tools/bin/temporal. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string {
  return findTool('temporal', 'TEMPORAL_CLI_PATH', ENSURE_TEMPORAL_CLI, env);
}

// ---- the server -----------------------------------------------------------------------------

export interface TemporalDevServerOptions {
  /** Path of the temporal CLI (default: findTemporalCli()). */
  cli?: string;
  /** gRPC port on 127.0.0.1. */
  port: number;
  /** Web UI port; without one the server runs headless. */
  uiPort?: number;
  /** HTTP API and metrics ports (default: the CLI's choice). */
  httpPort?: number;
  metricsPort?: number;
  /** SQLite state file: a server restarted on it loses nothing. */
  dbFile: string;
  /** Created at start-up unless it is `default`, which always exists (default: default). */
  namespace?: string;
  /** Search attributes to register (default: incidentSearchAttributes). */
  searchAttributes?: ReadonlyArray<{ name: string; type: SearchAttributeType }>;
  logFile: string;
  /** Append to the log rather than start it afresh (default false). */
  appendToLog?: boolean;
  /** Server log level (default warn). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** How long to wait for the frontend to answer (default 60 s). */
  timeoutMs?: number;
  /** Gives up waiting (and stops the server) when aborted. */
  abort?: AbortSignal;
  /** How long stop() waits after SIGTERM before SIGKILL (default 10 s). */
  stopGraceMs?: number;
}

interface TemporalDevServer {
  /** host:port of the gRPC frontend. */
  address: string;
  namespace: string;
  pid: number;
  logFile: string;
  /** SIGTERM, then SIGKILL after a grace period; by PID. */
  stop(): Promise<void>;
  /** Synchronous last resort (SIGKILL) when the process exits without a clean shutdown. */
  kill(): void;
}

const CLI_TYPE: Record<SearchAttributeType, string> = {
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};

/**
 * Starts `temporal server start-dev` on 127.0.0.1 and resolves once it answers. If it exits, does not answer
 * within the timeout or the wait is aborted, it is stopped and a DevServerError names its log.
 */
export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const cli = options.cli ?? findTemporalCli();
  const namespace = options.namespace ?? 'default';
  const address = `127.0.0.1:${options.port}`;
  const { logFile } = options;
  fs.mkdirSync(path.dirname(options.dbFile), { recursive: true });
  const child = spawnDetached(cli, startDevArgs(options, namespace), logFile, options.appendToLog ?? false);
  const exitReason = watchExit(child);
  const stop = () => stopChild(child, options.stopGraceMs);

  try {
    await waitForTemporal(address, {
      namespace,
      timeoutMs: options.timeoutMs,
      isDead: () => {
        if (exitReason()) return `it exited during start-up (${exitReason()}): ${whyItFailed(logFile)}`;
        return options.abort?.aborted ? 'interrupted' : undefined;
      },
    });
  } catch (err) {
    await stop();
    throw new DevServerError(`Temporal dev server (${cli}) did not start: ${firstLineOf(err)} — see ${logFile}`);
  }
  return { address, namespace, pid: child.pid!, logFile, stop, kill: () => killNow(child) };
}

function startDevArgs(options: TemporalDevServerOptions, namespace: string): string[] {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port)];
  args.push(...(options.uiPort === undefined ? ['--headless'] : ['--ui-port', String(options.uiPort)]));
  if (options.httpPort !== undefined) args.push('--http-port', String(options.httpPort));
  if (options.metricsPort !== undefined) args.push('--metrics-port', String(options.metricsPort));
  args.push('--db-filename', options.dbFile, '--log-level', options.logLevel ?? 'warn');
  if (namespace !== 'default') args.push('--namespace', namespace);
  for (const sa of options.searchAttributes ?? incidentSearchAttributes) args.push('--search-attribute', `${sa.name}=${CLI_TYPE[sa.type]}`);
  return args;
}

function spawnDetached(cli: string, args: string[], logFile: string, append: boolean): ChildProcess {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const logFd = fs.openSync(logFile, append ? 'a' : 'w');
  try {
    // Its own process group: a Ctrl-C reaches our process alone, which stops the server last, in order.
    return spawn(cli, args, { detached: true, stdio: ['ignore', logFd, logFd] });
  } finally {
    fs.closeSync(logFd);
  }
}

/** Returns how the child ended ("exit code 1", "signal SIGKILL", a spawn error), or undefined while it runs. */
function watchExit(child: ChildProcess): () => string | undefined {
  let reason: string | undefined;
  child.once('exit', (code, signal) => (reason ??= signal ? `signal ${signal}` : `exit code ${code}`));
  child.once('error', (err) => (reason ??= err.message));
  return () => reason;
}

// ---- waiting and stopping -------------------------------------------------------------------

/** Resolves once `address` answers describeNamespace(namespace); rejects with the last error after timeoutMs, or as soon as isDead() says why. */
export async function waitForTemporal(
  address: string,
  { namespace = 'default', timeoutMs = 60_000, isDead }: { namespace?: string; timeoutMs?: number; isDead?: () => string | undefined } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    const dead = isDead?.();
    if (dead) throw new Error(dead);
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: 2_000 });
      await connection.workflowService.describeNamespace({ namespace });
      return;
    } catch (err) {
      lastError = firstLineOf(err);
    } finally {
      await connection?.close().catch(() => {});
    }
    await sleep(250);
  }
  throw new Error(`no answer from ${address} within ${Math.round(timeoutMs / 1000)} s (last error: ${lastError})`);
}

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** SIGKILL to the child's process group (it was spawned detached, so it leads one), else to the child alone. */
function killNow(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined || hasExited(child)) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** Stops a detached child this process spawned: SIGTERM, then SIGKILL to its whole group after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || hasExited(child)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitForExit(child, graceMs)) return;
  killNow(child);
  await waitForExit(child, 5_000);
}

// ---- messages ---------------------------------------------------------------------------------

/** Last `lines` lines of a log file, joined with ' | ' so an error stays on one line; only its last 8 KiB are read. */
export function logTail(file: string, lines = 3): string {
  try {
    const size = fs.statSync(file).size;
    const fd = fs.openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(Math.min(size, 8192));
      fs.readSync(fd, buffer, 0, buffer.length, size - buffer.length);
      return buffer.toString('utf8').trim().split('\n').slice(-lines).map((l) => l.trim()).join(' | ');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** A Go panic's own line (its stack trace is what the log ends with), else the log's last lines. */
function whyItFailed(logFile: string): string {
  const tail = logTail(logFile, 200).split(' | ');
  const panic = tail.find((line) => line.startsWith('panic:') || line.startsWith('Error:'));
  return panic ?? tail.slice(-3).join(' | ');
}

/** gRPC errors carry metadata on later lines; the first one says what went wrong. */
function firstLineOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n').find((line) => line.trim() !== '')?.trim() ?? message;
}
