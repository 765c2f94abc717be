/** A closed-loop load generator: `concurrency` lanes run `op(i)` for i = 0..total-1; each call's latency is kept. */
import { performance } from 'node:perf_hooks';

export interface LoadResult {
  operations: number;
  errors: number;
  /** The first few errors, for the report. */
  errorSamples: string[];
  seconds: number;
  perSecond: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
}

export async function runLoad(total: number, concurrency: number, op: (i: number) => Promise<void>): Promise<LoadResult> {
  const latencies: number[] = [];
  const errorSamples: string[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < total) {
      const i = next++;
      const t0 = performance.now();
      try {
        await op(i);
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors += 1;
        if (errorSamples.length < 3) errorSamples.push(err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, lane));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    operations: total,
    errors,
    errorSamples,
    seconds,
    perSecond: (total - errors) / seconds,
    meanMs: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** POSTs JSON, failing on any status but `expect`; returns the parsed answer. Node's fetch keeps connections alive. */
export async function postJson(url: string, body: unknown, token: string, expect = 200): Promise<unknown> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  const text = await response.text();
  if (response.status !== expect) throw new Error(`${url} answered ${response.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as unknown;
}
