/** The Temporal dev server `runbooks dev` runs: `temporal server start-dev` with a state file, so a restart loses nothing. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import type { Config } from '../config/schema';
import { incidentSearchAttributes } from '../workflows/searchAttributes';
import { CliError, firstLine } from './errors';

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const ENSURE_TOOLS = 'bash scripts/ensure-tools.sh temporal';
const DEFAULT_PORT = 7233;

/** The temporal CLI: TEMPORAL_CLI_PATH, then `temporal` on PATH, then .tools/bin/temporal. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TEMPORAL_CLI_PATH) {
    if (isExecutable(env.TEMPORAL_CLI_PATH)) return path.resolve(env.TEMPORAL_CLI_PATH);
    throw new CliError(`TEMPORAL_CLI_PATH=${env.TEMPORAL_CLI_PATH} is not an executable file — fix or unset it`);
  }
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, 'temporal'))) return path.join(dir, 'temporal');
  }
  const local = path.join(PROJECT_ROOT, '.tools', 'bin', 'temporal');
  if (isExecutable(local)) return local;
  throw new CliError(`the temporal CLI was not found (TEMPORAL_CLI_PATH, PATH, .tools/bin/temporal) — run \`${ENSURE_TOOLS}\` (npm start does)`);
}

export interface DevTemporal {
  /** host:port of the gRPC frontend. */
  address: string;
  uiUrl: string;
  pid: number;
  dbFile: string;
  logFile: string;
  /** SIGTERM, then SIGKILL after a grace period; by PID. */
  stop(): Promise<void>;
  /** Synchronous last resort when we exit without a clean shutdown. */
  kill(): void;
}

/** Starts the dev server on 127.0.0.1 (port from temporal.address, default 7233) and waits until it answers (≤ 60 s). */
export async function startDevTemporal(config: Config, { timeoutMs = 60_000, abort }: { timeoutMs?: number; abort?: AbortSignal } = {}): Promise<DevTemporal> {
  const cli = findTemporalCli();
  const port = portOf(config.temporal.address) ?? DEFAULT_PORT;
  const uiPort = config.temporal.devUiPort;
  const address = `127.0.0.1:${port}`;
  for (const [what, p] of [['gRPC', port], ['UI', uiPort]] as const) {
    if (await isListening(p)) {
      throw new CliError(
        `port ${p} (Temporal ${what}) on 127.0.0.1 is already in use — is another \`runbooks dev\` running? ` +
          `To use the Temporal server that is there, set TEMPORAL_ADDRESS=${address}${what === 'UI' ? '; or change temporal.devUiPort' : ''}`,
      );
    }
  }
  const dbFile = path.resolve(config.temporal.devDbFile);
  fs.mkdirSync(path.dirname(dbFile), { recursive: true });
  const logFile = path.join(path.dirname(dbFile), 'temporal.log');

  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort)];
  args.push('--db-filename', dbFile, '--log-level', 'warn');
  if (config.temporal.namespace !== 'default') args.push('--namespace', config.temporal.namespace);
  for (const key of incidentSearchAttributes) args.push('--search-attribute', `${key.name}=Keyword`);

  const logFd = fs.openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // Its own process group: a Ctrl-C reaches us alone, and we stop the server last, after the worker drained.
    child = spawn(cli, args, { detached: true, stdio: ['ignore', logFd, logFd] });
  } finally {
    fs.closeSync(logFd);
  }
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal ? `signal ${signal}` : `exit code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exited = err.message;
      resolve();
    });
  });
  const pid = child.pid;
  const kill = () => {
    if (pid === undefined || exited) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  const stop = async () => {
    if (pid === undefined || exited) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(kill, 15_000);
    await exit;
    clearTimeout(timer);
  };

  try {
    await waitForTemporal(address, config.temporal.namespace, timeoutMs, () => {
      if (exited) return `the dev server exited (${exited}): ${logTail(logFile)}`;
      if (abort?.aborted) return 'interrupted';
      return undefined;
    });
  } catch (err) {
    await stop();
    throw new CliError(`Temporal dev server (${cli}) did not start: ${firstLine(err)} — see ${logFile}`);
  }
  return { address, uiUrl: `http://127.0.0.1:${uiPort}`, pid: pid!, dbFile, logFile, stop, kill };
}

/** Resolves once `address` answers describeNamespace; rejects with the last error after `timeoutMs`. */
export async function waitForTemporal(address: string, namespace: string, timeoutMs: number, isDead: () => string | undefined = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    const dead = isDead();
    if (dead) throw new Error(dead);
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: 2_000 });
      await connection.workflowService.describeNamespace({ namespace });
      return;
    } catch (err) {
      lastError = firstLine(err);
    } finally {
      await connection?.close().catch(() => {});
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`no answer from ${address} within ${Math.round(timeoutMs / 1000)} s (last error: ${lastError})`);
}

function portOf(address: string): number | undefined {
  const match = /:(\d+)$/.exec(address);
  return match ? Number(match[1]) : undefined;
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
  });
}

function isExecutable(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function logTail(file: string, lines = 3): string {
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
