import type { Client } from '@temporalio/client';
import { TemporalTimeoutError } from './errors';

/** How long one request may wait for Temporal before answering 503. */
export const TEMPORAL_CALL_TIMEOUT_MS = 6_000;
/** `/readyz` must answer quickly: orchestrators probe it every few seconds. */
export const READINESS_TIMEOUT_MS = 2_000;
/**
 * The client's gRPC retry interceptor sleeps up to 5 s between attempts against an unreachable server and only
 * then notices the deadline, so the hard stop comes shortly after the deadline instead.
 */
const HARD_STOP_GRACE_MS = 500;

/**
 * Runs `fn`'s Temporal calls under a gRPC deadline and an abort signal, and gives up for sure shortly after:
 * an unreachable Temporal must turn into a prompt 503, never a hanging request. The client's own retries of
 * UNAVAILABLE would otherwise take ~20 s, and without a deadline some calls wait forever.
 */
export async function withTemporalDeadline<T>(client: Client, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const hardStop = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new TemporalTimeoutError(timeoutMs));
    }, timeoutMs + HARD_STOP_GRACE_MS);
  });
  const deadline = Date.now() + timeoutMs;
  const call = client.connection.withAbortSignal(controller.signal, () => client.connection.withDeadline(deadline, fn));
  try {
    return await Promise.race([call, hardStop]);
  } finally {
    clearTimeout(timer);
  }
}
