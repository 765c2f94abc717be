/** The backend's own Prometheus metrics (`targets.backend.metricsUrl`): request latency per route. Read-only. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Config } from '../config/schema';
import { counterTotal, histogramSeries, latencyByRoute, type RouteLatency } from '../metrics/histogram';
import { ActivityErrorType } from '../runbooks/errorTypes';
import { targetConfig, type TargetRef } from './targets';

const LATENCY_HISTOGRAM = 'http_request_duration_seconds';
/** Requests answered 429 by the backend's rate limiter (a counter). */
const RATE_LIMITED_COUNTER = 'http_requests_rate_limited_total';

export interface RateLimitedSample {
  windowMs: number;
  /** 429s answered in the window (the counter's increase). */
  rateLimited: number;
  /** Requests to /api routes in the window (the latency histogram's count). */
  requests: number;
  /** 429s per minute over the window. */
  perMinute: number;
}

export interface RateLimitedWait extends RateLimitedSample {
  belowThreshold: boolean;
  samples: number;
}
const SCRAPE_TIMEOUT_MS = 5_000;

export interface LatencySample {
  windowMs: number;
  routes: RouteLatency[];
  /** The slowest route's p95, in milliseconds (undefined when no request came in). */
  worstP95Ms?: number;
}

export interface LatencyWait extends LatencySample {
  belowThreshold: boolean;
  samples: number;
}

type BackendRef = TargetRef<'backend'>;

export function createMetricsActivities(config: Pick<Config, 'targets'>) {
  const metricsUrlOf = (target: BackendRef['target']) => {
    const url = targetConfig(config, target).metricsUrl;
    if (!url) throw ApplicationFailure.nonRetryable(`no metrics URL is configured for "${target}" (targets.${target}.metricsUrl)`, ActivityErrorType.targetNotConfigured);
    return url;
  };
  return {
    /** p95 per route over `windowMs`, from two scrapes of /metrics; heartbeats while it waits. Read-only. */
    async sampleLatency({ target, windowMs }: BackendRef & { windowMs: number }): Promise<LatencySample> {
      return sample(metricsUrlOf(target), windowMs);
    },

    /**
     * Samples windows of `windowMs` until the slowest route's p95 is at most `thresholdMs`, or `withinMs` passes.
     * A window without requests does not count as recovered. Read-only.
     */
    async waitForLatency({ target, windowMs, thresholdMs, withinMs }: BackendRef & { windowMs: number; thresholdMs: number; withinMs: number }): Promise<LatencyWait> {
      const url = metricsUrlOf(target);
      const deadline = Date.now() + withinMs;
      for (let samples = 1; ; samples++) {
        const result = await sample(url, windowMs);
        const belowThreshold = result.worstP95Ms !== undefined && result.worstP95Ms <= thresholdMs;
        if (belowThreshold || Date.now() + windowMs > deadline) return { ...result, belowThreshold, samples };
      }
    },

    /** 429s (and /api requests) over `windowMs`, from two scrapes of /metrics; heartbeats while it waits. Read-only. */
    async sampleRateLimited({ target, windowMs }: BackendRef & { windowMs: number }): Promise<RateLimitedSample> {
      return sampleLimited(metricsUrlOf(target), windowMs);
    },

    /** Samples windows of `windowMs` until 429s are at most `maxPerMinute`, or `withinMs` passes. Read-only. */
    async waitForRateLimited({ target, windowMs, maxPerMinute, withinMs }: BackendRef & { windowMs: number; maxPerMinute: number; withinMs: number }): Promise<RateLimitedWait> {
      const url = metricsUrlOf(target);
      const deadline = Date.now() + withinMs;
      for (let samples = 1; ; samples++) {
        const result = await sampleLimited(url, windowMs);
        const belowThreshold = result.perMinute <= maxPerMinute;
        if (belowThreshold || Date.now() + windowMs > deadline) return { ...result, belowThreshold, samples };
      }
    },
  };
}

export type MetricsActivities = ReturnType<typeof createMetricsActivities>;

async function sample(url: string, windowMs: number): Promise<LatencySample> {
  const before = windowMs > 0 ? await scrape(url) : [];
  const until = Date.now() + windowMs;
  while (Date.now() < until) {
    Context.current().heartbeat();
    await Context.current().sleep(Math.min(1_000, until - Date.now()));
  }
  const routes = latencyByRoute(before, await scrape(url));
  const worst = routes.find((r) => r.p95 !== undefined)?.p95;
  return { windowMs, routes, worstP95Ms: worst === undefined ? undefined : Math.round(worst * 1000) };
}

async function sampleLimited(url: string, windowMs: number): Promise<RateLimitedSample> {
  const window = Math.max(1_000, windowMs);
  const before = await scrapeText(url);
  const until = Date.now() + window;
  while (Date.now() < until) {
    Context.current().heartbeat();
    await Context.current().sleep(Math.min(1_000, until - Date.now()));
  }
  const after = await scrapeText(url);
  const api = (labels: Record<string, string>) => (labels.route ?? '').startsWith('/api');
  // A counter that went down means the backend restarted in the window: what it counted since is the increase.
  const increase = (a: number, b: number) => (b >= a ? b - a : b);
  const rateLimited = increase(await counterTotal(before, RATE_LIMITED_COUNTER), await counterTotal(after, RATE_LIMITED_COUNTER));
  const requestsOf = async (text: string) => (await histogramSeries(text, LATENCY_HISTOGRAM)).filter((s) => api(s.labels)).reduce((sum, s) => sum + s.count, 0);
  const requests = increase(await requestsOf(before), await requestsOf(after));
  return { windowMs: window, rateLimited, requests, perMinute: Math.round((rateLimited * 60_000) / window) };
}

async function scrapeText(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.text();
}

async function scrape(url: string) {
  const response = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return histogramSeries(await response.text(), LATENCY_HISTOGRAM);
}
