/**
 * The benchmark rows of issue 10: each measures ours and the bare baseline in the same run, on the same Temporal server
 * with the same worker running, and states the target. Only ratios are judged; absolute numbers drift on a shared machine.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { Config } from '../src/config/schema';
import type { Alert } from '../src/intake/alertmanager';
import { incidentStartOptions } from '../src/intake/ingest';
import { routeAlert } from '../src/intake/route';
import { alertFiringSignal } from '../src/workflows/lifecycle/definitions';
import { counterTotal, histogramSeries } from '../src/metrics/histogram';
import { postJson, runLoad, type LoadResult } from './load';
import { BENCH_TOKEN, countWorkflows, terminateAll } from './stack';

export interface Row {
  row: string;
  ours: string;
  baseline: string;
  ratio: number | null;
  target: string;
  met: boolean;
  /** Numbers behind the row, for --json. */
  figures: Record<string, number | string>;
  /** Where the time goes, when the target is missed. */
  notes?: string[];
}

/** One firing alert in an Alertmanager v4 notification (the shape Alertmanager 0.25 sends), routed to no runbook. */
export function notification(alertname: string, fingerprint: string, status: 'firing' | 'resolved' = 'firing') {
  const labels = { alertname, service: 'bench', severity: 'medium' };
  return {
    receiver: 'runbooks',
    status,
    alerts: [{ status, labels, annotations: { summary: 'bench' }, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint }],
    groupLabels: { alertname },
    commonLabels: labels,
    commonAnnotations: { summary: 'bench' },
    externalURL: 'http://alertmanager:9093',
    version: '4',
    groupKey: `{}:{alertname="${alertname}"}`,
    truncatedAlerts: 0,
  };
}

const fingerprint = () => randomBytes(8).toString('hex');

function asAlert(body: ReturnType<typeof notification>): Alert {
  return body.alerts[0]! as Alert;
}

export const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const throughput = (r: LoadResult) => `${fmt(r.perSecond)}/s, p50 ${fmt(r.p50Ms, 1)} ms, p99 ${fmt(r.p99Ms, 1)} ms`;

export interface Stack {
  client: Client;
  config: Config;
  /** Base URL of the webhook (one server), or several to spread over. */
  urls: string[];
}

/**
 * Alert ingestion: unique firing alerts through `POST /alerts` against raw `client.workflow.start` of the same workflow
 * type and input, both at `concurrency`, alternated over `rounds` so drift hits both alike; the best round of each.
 */
export async function ingestionRow(stack: Stack, label: string, total: number, concurrency = 32, rounds = 2): Promise<Row> {
  const { client, config, urls } = stack;
  const ours: LoadResult[] = [];
  const bare: LoadResult[] = [];
  let profileNotes: string[] = [];
  for (let round = 0; round < rounds; round++) {
    bare.push(
      await runLoad(total, concurrency, async () => {
        const routed = routeAlert(asAlert(notification('BenchIngest', fingerprint())), config);
        await client.workflow.start(routed.workflowType, incidentStartOptions(routed, config));
      }),
    );
    const profile = await profiled(urls, () => runLoad(total, concurrency, (i) => postJson(`${urls[i % urls.length]}/alerts`, notification('BenchIngest', fingerprint()), BENCH_TOKEN).then(() => {})));
    ours.push(profile.result);
    profileNotes = profile.notes;
  }
  await terminateAll(client, config.temporal.taskQueue);
  const best = (results: LoadResult[]) => results.reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
  const o = best(ours);
  const b = best(bare);
  const ratio = o.perSecond / b.perSecond;
  const p99Ratio = o.p99Ms / b.p99Ms;
  const errors = ours.reduce((n, r) => n + r.errors, 0) + bare.reduce((n, r) => n + r.errors, 0);
  return {
    row: label,
    ours: throughput(o),
    baseline: throughput(b),
    ratio,
    target: '≥ 0.95× throughput, p99 ≤ 1.10×',
    met: ratio >= 0.95 && p99Ratio <= 1.1 && errors === 0,
    figures: { total, concurrency, rounds, oursPerSecond: o.perSecond, oursP50Ms: o.p50Ms, oursP99Ms: o.p99Ms, barePerSecond: b.perSecond, bareP50Ms: b.p50Ms, bareP99Ms: b.p99Ms, p99Ratio, errors },
    notes: [`p99 ratio ${fmt(p99Ratio, 2)}×`, ...profileNotes, ...(errors ? [`${errors} error(s): ${[...ours, ...bare].flatMap((r) => r.errorSamples)[0]}`] : [])],
  };
}

/**
 * Alert storm: `fingerprints` alerts each sent `sendsPerFingerprint` times (the first a new firing, the rest Alertmanager's
 * re-sends), shuffled so some re-sends race their first, at `concurrency`. Exactly one incident per fingerprint, none lost,
 * every other send answered `signalled`; drain rate against raw signal-with-start of the same sequence.
 */
export async function stormRow(stack: Stack, label: string, fingerprints: number, sendsPerFingerprint = 5, concurrency = 50, keepOpen = true): Promise<Row & { open: number }> {
  const { client, config, urls } = stack;
  const sequence = shuffled(Array.from({ length: fingerprints * sendsPerFingerprint }, (_, i) => i % fingerprints));

  const bareNames = Array.from({ length: fingerprints }, fingerprint);
  const bare = await runLoad(sequence.length, concurrency, async (i) => {
    const routed = routeAlert(asAlert(notification('BenchStormBare', bareNames[sequence[i]!]!)), config);
    const { workflowId, ...options } = incidentStartOptions(routed, config);
    await client.workflow.signalWithStart(routed.workflowType, { ...options, workflowId, signal: alertFiringSignal, signalArgs: [{ at: new Date().toISOString() }] });
  });
  await terminateAll(client, config.temporal.taskQueue);

  const names = Array.from({ length: fingerprints }, fingerprint);
  const actions = new Map<string, string[]>();
  const { result: ours, notes: profileNotes } = await profiled(urls, () =>
    runLoad(sequence.length, concurrency, async (i) => {
      const fp = names[sequence[i]!]!;
      const answer = (await postJson(`${urls[i % urls.length]}/alerts`, notification('BenchStorm', fp), BENCH_TOKEN)) as { results: Array<{ action: string }> };
      actions.set(fp, [...(actions.get(fp) ?? []), answer.results[0]!.action]);
    }),
  );
  const incidents = await countWorkflows(client, config.temporal.taskQueue, `AlertName = 'BenchStorm'`);
  const started = [...actions.values()].map((a) => a.filter((x) => x === 'started').length);
  const lost = names.filter((fp) => !actions.get(fp)?.includes('started')).length;
  const duplicates = started.reduce((n, s) => n + Math.max(0, s - 1), 0) + Math.max(0, incidents - fingerprints);
  const notSignalled = [...actions.values()].reduce((n, a) => n + a.filter((x) => x !== 'started' && x !== 'signalled').length, 0);
  const ratio = ours.perSecond / bare.perSecond;
  if (!keepOpen) await terminateAll(client, config.temporal.taskQueue);
  return {
    row: label,
    ours: `${ours.operations} sends → ${incidents} incidents, ${lost} lost, ${duplicates} dup; ${fmt(ours.perSecond)}/s`,
    baseline: `signal-with-start ${fmt(bare.perSecond)}/s`,
    ratio,
    target: `exactly ${fingerprints} incidents, 0 lost, 0 dup, re-sends signalled; ≥ 0.9× drain`,
    met: incidents === fingerprints && lost === 0 && duplicates === 0 && notSignalled === 0 && ours.errors === 0 && ratio >= 0.9,
    figures: { sends: ours.operations, fingerprints, incidents, lost, duplicates, notSignalled, errors: ours.errors, oursPerSecond: ours.perSecond, barePerSecond: bare.perSecond },
    notes: [...profileNotes, ...(ours.errors ? [`${ours.errors} error(s): ${ours.errorSamples[0]}`] : [])],
    open: incidents,
  };
}

interface ServerCounters {
  cpuSeconds: number;
  alertsSeconds: number;
  alertsRequests: number;
  started: number;
  signalled: number;
  ignored: number;
}

/** What the webhook processes' own /metrics say (summed over `urls`). */
async function serverCounters(urls: string[]): Promise<ServerCounters> {
  const totals: ServerCounters = { cpuSeconds: 0, alertsSeconds: 0, alertsRequests: 0, started: 0, signalled: 0, ignored: 0 };
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    totals.cpuSeconds += await counterTotal(text, 'process_cpu_seconds_total');
    for (const series of await histogramSeries(text, 'runbooks_http_request_duration_seconds')) {
      if (series.labels.route !== '/alerts') continue;
      totals.alertsSeconds += series.sum ?? 0;
      totals.alertsRequests += series.count;
    }
    for (const action of ['started', 'signalled', 'ignored'] as const) totals[action] += await counterTotal(text, 'runbooks_alert_signals_total', (l) => l.action === action);
  }
  return totals;
}

/**
 * Where a webhook request's time goes, from the servers' metrics over a run: CPU per alert in the webhook process, the
 * time the server spent on it against what the client saw (the rest is the network, the client and queueing), and the
 * Temporal round trips per alert (one each: signal-with-start for a firing alert, new or re-sent; a signal for a
 * resolved one).
 */
async function profiled<T extends LoadResult>(urls: string[], run: () => Promise<T>): Promise<{ result: T; notes: string[] }> {
  const before = await serverCounters(urls);
  const result = await run();
  const after = await serverCounters(urls);
  const alerts = after.started + after.signalled + after.ignored - (before.started + before.signalled + before.ignored);
  const requests = after.alertsRequests - before.alertsRequests;
  if (alerts <= 0 || requests <= 0) return { result, notes: [] };
  const started = after.started - before.started;
  const signalled = after.signalled - before.signalled;
  const serverMs = ((after.alertsSeconds - before.alertsSeconds) / requests) * 1000;
  const cpuMs = ((after.cpuSeconds - before.cpuSeconds) / alerts) * 1000;
  return {
    result,
    notes: [
      `webhook CPU ${fmt(cpuMs, 2)} ms/alert`,
      `server-side ${fmt(serverMs, 1)} ms of a mean ${fmt(result.meanMs, 1)} ms seen by the client`,
      `1 Temporal round trip per alert (${started} started, ${signalled} signalled)`,
    ],
  };
}

/** `POST /alerts` latency at low concurrency (new alerts), for the open-incidents row. */
export async function probeLatency(stack: Stack, requests: number): Promise<LoadResult> {
  const result = await runLoad(requests, 4, (i) => postJson(`${stack.urls[i % stack.urls.length]}/alerts`, notification('BenchProbe', fingerprint()), BENCH_TOKEN).then(() => {}));
  return result;
}

/** Open incidents: the worker's RSS and the webhook's p99 with `open` incidents waiting on escalation timers, against idle. */
export function openIncidentsRow(open: number, idle: { rssBytes: number; probe: LoadResult }, loaded: { rssBytes: number; probe: LoadResult }): Row {
  const mb = (bytes: number) => bytes / 1024 / 1024;
  const p99Ratio = loaded.probe.p99Ms / idle.probe.p99Ms;
  return {
    row: `open incidents (${open} waiting)`,
    ours: `worker RSS ${fmt(mb(loaded.rssBytes))} MB, POST /alerts p99 ${fmt(loaded.probe.p99Ms, 1)} ms`,
    baseline: `idle: RSS ${fmt(mb(idle.rssBytes))} MB, p99 ${fmt(idle.probe.p99Ms, 1)} ms`,
    ratio: p99Ratio,
    target: 'RSS ≤ 400 MB; p99 ≤ 1.2× idle',
    met: mb(loaded.rssBytes) <= 400 && p99Ratio <= 1.2,
    figures: { open, rssMb: mb(loaded.rssBytes), idleRssMb: mb(idle.rssBytes), p99Ms: loaded.probe.p99Ms, idleP99Ms: idle.probe.p99Ms, p99Ratio },
  };
}

/** Resolves every open BenchStorm incident by its resolved notification and waits until none is running. */
export async function resolveAll(stack: Stack, alertname: string, timeoutMs = 300_000): Promise<{ closed: number; stillRunning: number }> {
  const { client, config, urls } = stack;
  const open: string[] = [];
  for await (const e of client.workflow.list({ query: `TaskQueue = '${config.temporal.taskQueue}' AND AlertName = '${alertname}' AND ExecutionStatus = 'Running'` })) open.push(e.workflowId);
  await runLoad(open.length, 16, (i) => postJson(`${urls[i % urls.length]}/alerts`, notification(alertname, open[i]!.split('-').pop()!, 'resolved'), BENCH_TOKEN).then(() => {}));
  const deadline = Date.now() + timeoutMs;
  let stillRunning = open.length;
  while (Date.now() < deadline) {
    stillRunning = (await client.workflow.count(`TaskQueue = '${config.temporal.taskQueue}' AND AlertName = '${alertname}' AND ExecutionStatus = 'Running'`)).count;
    if (stillRunning === 0) break;
    await sleep(1000);
  }
  return { closed: open.length - stillRunning, stillRunning };
}

function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
