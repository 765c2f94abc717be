import { Context } from '@temporalio/activity';

export interface HealthProbe {
  healthy: boolean;
  /** HTTP status, absent when the request itself failed. */
  status?: number;
  error?: string;
  elapsedMs: number;
}

export interface HealthWait extends HealthProbe {
  attempts: number;
}

const PROBE_TIMEOUT_MS = 3_000;

/** One GET of a configured health URL (never a URL taken from alert data). Read-only, so safe to retry. */
export async function probeHealth(url: string): Promise<HealthProbe> {
  const started = Date.now();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS), redirect: 'manual' });
    await response.body?.cancel();
    return { healthy: response.status === 200, status: response.status, elapsedMs: Date.now() - started };
  } catch (err) {
    return { healthy: false, error: describeFetchError(err), elapsedMs: Date.now() - started };
  }
}

/** Polls until /health answers 200 or `withinMs` passes; heartbeats so a dead worker is noticed quickly. */
export async function waitForHealthy(url: string, withinMs: number, intervalMs = 500): Promise<HealthWait> {
  const deadline = Date.now() + withinMs;
  for (let attempts = 1; ; attempts++) {
    Context.current().heartbeat(attempts);
    const probe = await probeHealth(url);
    if (probe.healthy || Date.now() + intervalMs > deadline) return { ...probe, attempts };
    await Context.current().sleep(intervalMs);
  }
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  return err instanceof Error ? err.message : String(err);
}
