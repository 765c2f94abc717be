/**
 * Steady traffic to the audit-app's API, so its /metrics histogram has something to show (the slow-responses
 * runbook measures p95 from it): `concurrency` loops, each sending one GET after the other until stopped.
 *
 *   const traffic = startTraffic(app);              GET /api/v1/documents?county=Nairobi, 3 at a time
 *   …
 *   const sent = await traffic.stop();              waits for the requests in flight; how many were sent
 *
 * With `clients`, one loop per client address, each request carrying it in X-Forwarded-For (the backend trusts that
 * header from 127.0.0.1 only, so this simulates many clients on one machine: a flood, a spike of many clients),
 * optionally paced to `perSecond` requests per client.
 */
import { ApiRoutes } from './contract';
import type { AuditApp } from './stack';

export interface TrafficOptions {
  /** Path and query on the API (default /api/v1/documents?county=Nairobi). */
  path?: string;
  /** Requests in flight at once (default 3; with `clients`, one per client). */
  concurrency?: number;
  /** Client IP addresses to send as (X-Forwarded-For), one loop each. */
  clients?: readonly string[];
  /** At most this many requests per second per loop (default: as fast as answers come). */
  perSecond?: number;
}

export interface Traffic {
  /** Stops sending; resolves once the requests in flight are done, with how many were sent in all. */
  stop(): Promise<number>;
}

export const DEFAULT_TRAFFIC_PATH = `${ApiRoutes.documents}?county=Nairobi`;
/** Each request gives up after this long, so stop() never waits on a backend that stopped answering. */
const REQUEST_TIMEOUT_MS = 10_000;
const FAILURE_PAUSE_MS = 100;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function startTraffic(app: AuditApp, options: TrafficOptions = {}): Traffic {
  const url = `${app.urls.api}${options.path ?? DEFAULT_TRAFFIC_PATH}`;
  const clients = options.clients ?? [];
  const concurrency = clients.length > 0 ? clients.length : Math.max(1, Math.floor(options.concurrency ?? 3));
  const intervalMs = options.perSecond ? 1_000 / options.perSecond : 0;
  let running = true;
  let sent = 0;
  const loop = async (_: unknown, index: number) => {
    const headers: Record<string, string> = clients[index] ? { 'x-forwarded-for': clients[index] } : {};
    let next = Date.now();
    while (running) {
      if (intervalMs > 0) {
        next += intervalMs;
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait);
        else next = Date.now();
        if (!running) break;
      }
      // Any answer counts (a 500 or 429 is traffic too); so does a refused connection or a timeout, after which
      // the loop pauses a little rather than spin against a backend that is not there.
      const answered = await fetch(url, { headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }).then(
        async (response) => {
          await response.body?.cancel();
          return true;
        },
        () => false,
      );
      sent += 1;
      if (!answered && running) await sleep(FAILURE_PAUSE_MS);
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return sent;
    },
  };
}
