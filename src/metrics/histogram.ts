/**
 * Latency quantiles from a Prometheus histogram, as PromQL's histogram_quantile computes them: linear
 * interpolation inside the bucket the rank falls in, over the increase between two scrapes. Pure.
 */
import { Readable } from 'node:stream';
import { getMetricsFromStream, type PromData, type PromHistogramData } from 'prom2javascript';

export interface RouteLatency {
  route: string;
  requests: number;
  /** Seconds; undefined when no request landed in the window. */
  p95?: number;
}

/** Parses the Prometheus text format (prom2javascript) and returns the histogram's series by their labels. */
export async function histogramSeries(text: string, metric: string): Promise<PromHistogramData[]> {
  const metrics = await getMetricsFromStream(Readable.from([text]));
  const found = metrics[metric];
  if (!found || found.type !== 'histogram') return [];
  return found.data as PromHistogramData[];
}

/** The sum of a counter's (or gauge's) series, optionally only those whose labels pass `keep`; 0 when it is absent. */
export async function counterTotal(text: string, metric: string, keep: (labels: Record<string, string>) => boolean = () => true): Promise<number> {
  const metrics = await getMetricsFromStream(Readable.from([text]));
  const found = metrics[metric];
  if (!found || (found.type !== 'counter' && found.type !== 'gauge' && found.type !== 'untyped')) return 0;
  return (found.data as PromData[]).filter((d) => keep(d.labels)).reduce((sum, d) => sum + (Number.isFinite(d.value) ? d.value : 0), 0);
}

/** The q-quantile (0..1) of the observations counted in cumulative `buckets` (upper bound → count). */
export function quantile(q: number, buckets: Record<string, number>): number | undefined {
  const sorted = Object.entries(buckets)
    .map(([le, count]) => [le === '+Inf' ? Infinity : Number(le), count] as const)
    .sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [upperBound, count] of sorted) {
    if (count >= rank) {
      // Past the last finite bucket PromQL answers that bucket's upper bound.
      if (upperBound === Infinity) return lowerBound;
      if (count === lowerCount) return upperBound;
      return lowerBound + ((upperBound - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = upperBound;
    lowerCount = count;
  }
  return lowerBound;
}

/** p95 per route over what happened between two scrapes (`before` may be empty: then since the process started). */
export function latencyByRoute(before: PromHistogramData[], after: PromHistogramData[], routeLabel = 'route'): RouteLatency[] {
  const byRoute = new Map<string, Record<string, number>>();
  const add = (series: PromHistogramData[], sign: 1 | -1) => {
    for (const s of series) {
      const route = s.labels[routeLabel] ?? '(none)';
      const buckets = byRoute.get(route) ?? {};
      for (const [le, count] of Object.entries(s.buckets)) buckets[le] = (buckets[le] ?? 0) + sign * count;
      byRoute.set(route, buckets);
    }
  };
  add(after, 1);
  add(before, -1);
  return [...byRoute.entries()]
    .map(([route, buckets]) => ({ route, requests: buckets['+Inf'] ?? 0, p95: quantile(0.95, buckets) }))
    .filter((r) => r.requests > 0)
    .sort((a, b) => (b.p95 ?? 0) - (a.p95 ?? 0));
}
