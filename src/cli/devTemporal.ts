/** The Temporal dev server `runbooks dev` runs: `temporal server start-dev` with a state file, so a restart loses nothing. */
import * as net from 'node:net';
import * as path from 'node:path';
import type { Config } from '../config/schema';
import * as devServer from '../temporal/devServer';
import { CliError } from './errors';

const DEFAULT_PORT = 7233;

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
  try {
    const cli = devServer.findTemporalCli();
    const port = portOf(config.temporal.address) ?? DEFAULT_PORT;
    const uiPort = config.temporal.devUiPort;
    await refuseBusyPorts(port, uiPort);
    const dbFile = path.resolve(config.temporal.devDbFile);
    const server = await devServer.startTemporalDevServer({
      cli,
      port,
      uiPort,
      dbFile,
      namespace: config.temporal.namespace,
      // Beside the state file, and appended to: both outlive one run.
      logFile: path.join(path.dirname(dbFile), 'temporal.log'),
      appendToLog: true,
      timeoutMs,
      abort,
      stopGraceMs: 15_000,
    });
    const { address, pid, logFile, stop, kill } = server;
    return { address, uiUrl: `http://127.0.0.1:${uiPort}`, pid, dbFile, logFile, stop, kill };
  } catch (err) {
    // The dev server's messages already say what to do; the CLI prints them as they are.
    throw err instanceof devServer.DevServerError ? new CliError(err.message) : err;
  }
}

/** Resolves once `address` answers describeNamespace; rejects with the last error after `timeoutMs`. */
export function waitForTemporal(address: string, namespace: string, timeoutMs: number, isDead?: () => string | undefined): Promise<void> {
  return devServer.waitForTemporal(address, { namespace, timeoutMs, isDead });
}

/** A second `runbooks dev` would otherwise fail deep in the server's log; say so up front, with the way out. */
async function refuseBusyPorts(port: number, uiPort: number): Promise<void> {
  const address = `127.0.0.1:${port}`;
  for (const [what, p] of [['gRPC', port], ['UI', uiPort]] as const) {
    if (await isListening(p)) {
      throw new CliError(
        `port ${p} (Temporal ${what}) on 127.0.0.1 is already in use — is another \`runbooks dev\` running? ` +
          `To use the Temporal server that is there, set TEMPORAL_ADDRESS=${address}${what === 'UI' ? '; or change temporal.devUiPort' : ''}`,
      );
    }
  }
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
