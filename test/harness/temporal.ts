// Temporal for the tests: the CLI and test server binaries, and one dev server (`temporal server start-dev`,
// on free ports, with its Web UI for the harness's own) with the incident search attributes registered; src/temporal/devServer.ts does the work.
// Not TestWorkflowEnvironment.createLocal: its fixed start deadline is flaky on 2 cores.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as devServer from '../../src/temporal/devServer';
import { ENSURE_TOOLS, InfraError, LOG_DIR, freePorts } from './util';

export { waitForTemporal } from '../../src/temporal/devServer';

/** The dev server's errors as the harness reports them: one line, what is missing — how to get it. */
function asInfraError(err: unknown): unknown {
  return err instanceof devServer.DevServerError ? new InfraError(err.message) : err;
}

/** The temporal CLI: TEMPORAL_CLI_PATH, then `temporal` on PATH, then .tools/bin/temporal. */
export function findTemporalCli(): string {
  try {
    return devServer.findTemporalCli();
  } catch (err) {
    throw asInfraError(err);
  }
}

/** The Java-free time-skipping test server: TEMPORAL_TEST_SERVER_PATH, PATH, .tools/bin. */
export function findTestServer(): string {
  try {
    return devServer.findTool('temporal-test-server', 'TEMPORAL_TEST_SERVER_PATH', ENSURE_TOOLS);
  } catch (err) {
    throw asInfraError(err);
  }
}

/**
 * Defaults: the CLI from findTemporalCli(), incidentSearchAttributes, log in .tools/logs/temporal-dev-server.log,
 * 60 s to answer, log level warn, a throwaway SQLite file (a given `dbFile` is kept on stop: a restart on it
 * loses nothing), a free gRPC port (a restarted server needs the same `port`).
 */
export type DevServerOptions = Partial<Pick<devServer.TemporalDevServerOptions, 'cli' | 'searchAttributes' | 'logFile' | 'timeoutMs' | 'logLevel' | 'dbFile' | 'port'>> & {
  /** Serve the Web UI too (on a free port); headless otherwise. */
  withUi?: boolean;
};

export interface DevServer {
  /** host:port of the gRPC frontend. */
  address: string;
  /** The Web UI, when asked for (the UI test drives it in a browser). */
  uiUrl?: string;
  namespace: 'default';
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

/** Starts `temporal server start-dev` on free ports with a throwaway SQLite file. */
export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const [freeGrpcPort, httpPort, metricsPort, uiPort] = (await freePorts(4)) as [number, number, number, number];
  const dbDir = opts.dbFile ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'runbooks-temporal-'));
  const removeDbDir = () => dbDir && fs.rmSync(dbDir, { recursive: true, force: true });
  const { withUi, ...serverOpts } = opts;
  try {
    const server = await devServer.startTemporalDevServer({
      ...serverOpts,
      cli: opts.cli ?? findTemporalCli(),
      port: opts.port ?? freeGrpcPort,
      httpPort,
      metricsPort,
      ...(withUi ? { uiPort } : {}),
      dbFile: opts.dbFile ?? path.join(dbDir!, 'temporal.db'),
      logFile: opts.logFile ?? path.join(LOG_DIR, 'temporal-dev-server.log'),
    });
    const stop = async () => {
      await server.stop();
      removeDbDir();
    };
    return { address: server.address, ...(withUi ? { uiUrl: `http://127.0.0.1:${uiPort}` } : {}), namespace: 'default', pid: server.pid, logFile: server.logFile, stop };
  } catch (err) {
    removeDbDir();
    throw asInfraError(err);
  }
}
