import type { Config } from '../config/schema';
import { pollUntil } from './poll';
import { targetConfig, type TargetRef } from './targets';

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

/** Targets with a health URL. */
type HealthTarget = TargetRef<'backend'>;

const PROBE_TIMEOUT_MS = 3_000;

/** Health checks of the configured URL of a target (never a URL taken from alert data or history). */
export function createHttpActivities(config: Pick<Config, 'targets'>) {
  const healthUrlOf = (target: HealthTarget['target']) => targetConfig(config, target).healthUrl;
  return {
    /** One GET of the target's health URL. Read-only, so safe to retry. */
    async probeHealth({ target }: HealthTarget): Promise<HealthProbe> {
      return probe(healthUrlOf(target));
    },

    /** Polls until /health answers 200 or `withinMs` passes; heartbeats so a dead worker is noticed quickly. Read-only. */
    async waitForHealthy({ target, withinMs }: HealthTarget & { withinMs: number }): Promise<HealthWait> {
      const url = healthUrlOf(target);
      return pollUntil(withinMs, () => probe(url), (r) => r.healthy);
    },
  };
}

export type HttpActivities = ReturnType<typeof createHttpActivities>;

async function probe(url: string): Promise<HealthProbe> {
  const started = Date.now();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS), redirect: 'manual' });
    await response.body?.cancel();
    return { healthy: response.status === 200, status: response.status, elapsedMs: Date.now() - started };
  } catch (err) {
    return { healthy: false, error: describeFetchError(err), elapsedMs: Date.now() - started };
  }
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  return err instanceof Error ? err.message : String(err);
}
