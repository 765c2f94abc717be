import { Context } from '@temporalio/activity';

/** A restarted service usually answers within a second: probe often at first, then back off to once a second. */
const FIRST_INTERVAL_MS = 100;
const MAX_INTERVAL_MS = 1000;

/**
 * Probes until `done` holds or `withinMs` passes (100 ms apart at first, growing to 1 s), heartbeating each attempt so
 * a dead worker is noticed quickly. Returns the last probe and how many were made. Read-only as long as `probe` is.
 */
export async function pollUntil<T>(withinMs: number, probe: () => Promise<T>, done: (result: T) => boolean): Promise<T & { attempts: number }> {
  const deadline = Date.now() + withinMs;
  let interval = FIRST_INTERVAL_MS;
  for (let attempts = 1; ; attempts++) {
    Context.current().heartbeat(attempts);
    const result = await probe();
    if (done(result) || Date.now() + interval > deadline) return { ...result, attempts };
    await Context.current().sleep(interval);
    interval = Math.min(MAX_INTERVAL_MS, interval * 1.5);
  }
}
