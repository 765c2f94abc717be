// Temporal for the tests: finding the CLI and test server binaries, and one dev server
// (`temporal server start-dev`) with the incident search attributes registered.
// Not TestWorkflowEnvironment.createLocal: its fixed start deadline is flaky on 2 cores.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { incidentSearchAttributes } from '../../src/workflows/searchAttributes';
import { ENSURE_TOOLS, InfraError, LOG_DIR, TOOLS_DIR, freePorts, isExecutable, logTail, sleep, stopChild, whichSync } from './util';

function findBinary(envVar: string, name: string): string {
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    if (isExecutable(fromEnv)) return path.resolve(fromEnv);
    throw new InfraError(`${name} at ${envVar}=${fromEnv} is not an executable file — fix or unset ${envVar}, or run ${ENSURE_TOOLS}`);
  }
  const onPath = whichSync(name);
  if (onPath) return onPath;
  const local = path.join(TOOLS_DIR, 'bin', name);
  if (isExecutable(local)) return local;
  throw new InfraError(`${name} not found (looked at ${envVar}, PATH, .tools/bin/${name}) — run ${ENSURE_TOOLS}`);
}

/** The temporal CLI: TEMPORAL_CLI_PATH, then `temporal` on PATH, then .tools/bin/temporal. */
export function findTemporalCli(): string {
  return findBinary('TEMPORAL_CLI_PATH', 'temporal');
}

/** The Java-free time-skipping test server: TEMPORAL_TEST_SERVER_PATH, PATH, .tools/bin. */
export function findTestServer(): string {
  return findBinary('TEMPORAL_TEST_SERVER_PATH', 'temporal-test-server');
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

export interface DevServerOptions {
  /** Path of the temporal CLI (default: findTemporalCli()). */
  cli?: string;
  /** Search attributes to register (default: incidentSearchAttributes). */
  searchAttributes?: ReadonlyArray<{ name: string; type: SearchAttributeType }>;
  /** Server log (default: .tools/logs/temporal-dev-server.log). */
  logFile?: string;
  /** How long to wait for the frontend to answer (default 60 s). */
  timeoutMs?: number;
  /** Server log level (default warn). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Keep state in this SQLite file (kept on stop) instead of a throwaway one: a restart on it loses nothing. */
  dbFile?: string;
  /** gRPC port (default: a free one); a restarted server needs the same. */
  port?: number;
}

export interface DevServer {
  /** host:port of the gRPC frontend. */
  address: string;
  namespace: 'default';
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

/** Resolves once `address` answers describeNamespace(namespace); rejects with the last error after timeoutMs. */
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
      lastError = (err as Error).message.split('\n')[0] ?? String(err);
    } finally {
      await connection?.close().catch(() => {});
    }
    await sleep(250);
  }
  throw new Error(`no answer from ${address} within ${Math.round(timeoutMs / 1000)} s (last error: ${lastError})`);
}

/** Starts `temporal server start-dev` on free ports with a throwaway SQLite file. */
export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const cli = opts.cli ?? findTemporalCli();
  const searchAttributes = opts.searchAttributes ?? incidentSearchAttributes;
  const logFile = opts.logFile ?? path.join(LOG_DIR, 'temporal-dev-server.log');
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const [freeGrpcPort, httpPort, metricsPort] = (await freePorts(3)) as [number, number, number];
  const port = opts.port ?? freeGrpcPort;
  const address = `127.0.0.1:${port}`;
  const dbDir = opts.dbFile ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'runbooks-temporal-'));
  const dbFile = opts.dbFile ?? path.join(dbDir!, 'temporal.db');

  const args = [
    'server',
    'start-dev',
    '--headless',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--http-port',
    String(httpPort),
    '--metrics-port',
    String(metricsPort),
    '--db-filename',
    dbFile,
    '--log-level',
    opts.logLevel ?? 'warn',
  ];
  for (const sa of searchAttributes) args.push('--search-attribute', `${sa.name}=${CLI_TYPE[sa.type]}`);

  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const logFd = fs.openSync(logFile, 'w');
  let child: ChildProcess;
  try {
    // detached: own process group, so Ctrl-C reaches the harness, which stops it in order.
    child = spawn(cli, args, { detached: true, stdio: ['ignore', logFd, logFd] });
  } finally {
    fs.closeSync(logFd);
  }
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = signal ? `signal ${signal}` : `exit code ${code}`));
  child.on('error', (err) => (exited = err.message));

  const stop = async () => {
    await stopChild(child);
    if (dbDir) fs.rmSync(dbDir, { recursive: true, force: true });
  };
  try {
    await waitForTemporal(address, {
      timeoutMs,
      isDead: () => exited && `temporal dev server exited during start-up (${exited}): ${logTail(logFile)}`,
    });
  } catch (err) {
    await stop();
    throw new InfraError(`Temporal dev server (${cli}) did not start: ${(err as Error).message} — see ${logFile}`);
  }
  return { address, namespace: 'default', pid: child.pid!, logFile, stop };
}
