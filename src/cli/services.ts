/** The long-running pieces the `worker`, `server`, `dev` and `demo` commands start, and how they stop. */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema';
import { buildHttpServer, type HttpServerOptions } from '../http/server';
import { createIncidentWorker } from '../worker/worker';
import { CliError, doing } from './errors';

export interface RunningWorker {
  /** Settles when the worker stops; rejects if it fails. */
  done: Promise<void>;
  stop(): Promise<void>;
}

/** Creates the incident worker and runs it; RUNBOOKS_WORKFLOW_BUNDLE names a pre-built workflow bundle (else bundled now). */
export async function startWorker(config: Config, logger: Logger): Promise<RunningWorker> {
  const { worker, close } = await doing('starting the worker', () =>
    createIncidentWorker({ config, logger, workflowBundlePath: process.env.RUNBOOKS_WORKFLOW_BUNDLE || undefined }),
  );
  const done = worker.run();
  let closed: Promise<void> | undefined;
  return {
    done,
    stop() {
      closed ??= (async () => {
        // The Temporal runtime also shuts workers down on SIGINT/SIGTERM: only ask if nobody has.
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await done.catch(() => {});
        await close();
      })();
      return closed;
    },
  };
}

interface RunningHttpServer {
  app: FastifyInstance;
  /** Base URL clients use, e.g. http://127.0.0.1:3000 (the real port when the config says 0). */
  baseUrl: string;
  stop(): Promise<void>;
}

export async function startHttpServer(deps: HttpServerOptions): Promise<RunningHttpServer> {
  const { host, port } = deps.config.http;
  const app = await doing('building the HTTP server', () => buildHttpServer(deps));
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => {});
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the port is in use (set PORT or http.port)' : (err as Error).message;
    throw new CliError(`cannot listen on ${host}:${port}: ${why}`);
  }
  const address = app.server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    app,
    baseUrl: `http://${urlHost(host)}:${address.port}`,
    stop: () => (closed ??= app.close().then(() => undefined)),
  };
}

/** A host to put in a URL: wildcard binds are reached on loopback; IPv6 gets brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Calls `onStop` on the first SIGINT or SIGTERM; a second signal exits at once (after `onForce`, which
 * must kill by PID whatever we started). Resolves with the signal.
 */
export function untilStopSignal(onForce: () => void = () => {}): { signal: Promise<NodeJS.Signals>; dispose(): void } {
  let first: NodeJS.Signals | undefined;
  let firstAt = 0;
  let resolve!: (signal: NodeJS.Signals) => void;
  const signal = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const handler = (sig: NodeJS.Signals) => {
    if (first) {
      // One Ctrl-C arrives several times (the terminal's process group, plus npm and tsx relaying it).
      if (Date.now() - firstAt < 2_000) return;
      process.stderr.write(`${sig} again: exiting without finishing the shutdown\n`);
      onForce();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    first = sig;
    firstAt = Date.now();
    resolve(sig);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
