import { Context } from '@temporalio/activity';

const POLL_INTERVAL_MS = 500;

/**
 * Probes every half second until `done` holds or `withinMs` passes, heartbeating each attempt so a dead worker
 * is noticed quickly. Returns the last probe and how many were made. Read-only as long as `probe` is.
 */
export async function pollUntil<T>(withinMs: number, probe: () => Promise<T>, done: (result: T) => boolean): Promise<T & { attempts: number }> {
  const deadline = Date.now() + withinMs;
  for (let attempts = 1; ; attempts++) {
    Context.current().heartbeat(attempts);
    const result = await probe();
    if (done(result) || Date.now() + POLL_INTERVAL_MS > deadline) return { ...result, attempts };
    await Context.current().sleep(POLL_INTERVAL_MS);
  }
}
