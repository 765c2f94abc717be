/**
 * Prometheus in tests (Debian `prometheus`): a text exposition judged by promtool and its samples read; a real Prometheus
 * running the shipped config (deploy/prometheus/) and what it says of its alerts.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { startDaemon, type RunningDaemon } from './daemon';
import { requireEnv } from './env';

export interface PromtoolVerdict {
  /** 0: all good. `check metrics`: 3 valid with lint problems, 1 not the Prometheus text format. */
  exitCode: number;
  /** What it said, one line each (lint findings, the parse error, a failed unit test). */
  problems: string[];
}

/** `promtool check metrics` with `text` on stdin. */
export async function promtoolCheckMetrics(text: string): Promise<PromtoolVerdict> {
  return promtool(['check', 'metrics'], text);
}

/** promtool with `args` (and `stdin`, if any): its exit code and every non-empty line it wrote. */
export function promtool(args: string[], stdin = ''): Promise<PromtoolVerdict> {
  const bin = requireEnv('PROMTOOL_BIN');
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ exitCode: code ?? -1, problems: output.split('\n').filter((l) => l.trim() !== '') }));
    child.stdin.end(stdin);
  });
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Every sample line of an exposition (comments skipped). */
export function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(LABEL)) labels[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample named `name` whose labels include `labels`; undefined when there is none. */
export function sampleValue(all: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = all.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

export const SHIPPED_PROMETHEUS_DIR = path.resolve(__dirname, '../../deploy/prometheus');

interface PrometheusConfig {
  global?: Record<string, unknown>;
  rule_files: string[];
  alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
  scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
}

/**
 * The shipped prometheus.yml with only the test's addresses and intervals: each scrape job's target from `targets` (every
 * job must be given one), the Alertmanager's, the rule files where they are shipped, scrape and evaluation every second.
 */
function testPrometheusConfig(targets: Record<string, string>, alertmanager: string): PrometheusConfig {
  const config = parse(readFileSync(path.join(SHIPPED_PROMETHEUS_DIR, 'prometheus.yml'), 'utf8')) as PrometheusConfig;
  const unplaced = config.scrape_configs.map((job) => job.job_name).filter((name) => !Object.hasOwn(targets, name));
  if (unplaced.length > 0) throw new Error(`no test address for the shipped scrape jobs ${unplaced.join(', ')}`);
  config.global = { ...config.global, scrape_interval: '1s', evaluation_interval: '1s' };
  config.rule_files = config.rule_files.map((file) => path.resolve(SHIPPED_PROMETHEUS_DIR, file));
  config.alerting.alertmanagers = [{ static_configs: [{ targets: [alertmanager] }] }];
  for (const job of config.scrape_configs) job.static_configs = [{ targets: [targets[job.job_name]!] }];
  return config;
}

/** A real Prometheus 2.42 on the shipped config and rules, scraping `targets` (job name → host:port), alerting `alertmanager`. */
export function startPrometheus({ targets, alertmanager }: { targets: Record<string, string>; alertmanager: string }): Promise<RunningDaemon> {
  return startDaemon({
    name: 'Prometheus',
    bin: requireEnv('PROMETHEUS_BIN'),
    prepare: (dir) => writeFileSync(path.join(dir, 'prometheus.yml'), stringify(testPrometheusConfig(targets, alertmanager))),
    args: (dir, listen) => [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=${listen}`, '--log.level=error'],
    readyPath: '/-/ready',
  });
}

/** A real Prometheus Pushgateway (Debian `prometheus-pushgateway`), where the sandbox ETL pushes its runs' times. */
export function startPushgateway(): Promise<RunningDaemon> {
  return startDaemon({
    name: 'Pushgateway',
    bin: requireEnv('PUSHGATEWAY_BIN'),
    args: (_dir, listen) => [`--web.listen-address=${listen}`, '--log.level=warn'],
    readyPath: '/-/ready',
  });
}

export interface PrometheusAlert {
  labels: Record<string, string>;
  /** pending | firing */
  state: string;
}

/** An instant query's vector: each series' labels and value. */
export async function instantQuery(prometheusUrl: string, promql: string): Promise<{ labels: Record<string, string>; value: number }[]> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query: promql })}`);
  if (!response.ok) throw new Error(`Prometheus query ${promql} answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.data.resultType !== 'vector') throw new Error(`Prometheus query ${promql}: a ${body.data.resultType}, not a vector`);
  return body.data.result.map(({ metric, value }) => ({ labels: metric, value: Number(value[1]) }));
}

/** The alerts named `alertname` that Prometheus holds now, from its `ALERTS` series (none once resolved). */
export async function alertsInPrometheus(prometheusUrl: string, alertname: string): Promise<PrometheusAlert[]> {
  const series = await instantQuery(prometheusUrl, `ALERTS{alertname="${alertname}"}`);
  return series.map(({ labels: { alertstate, __name__: _name, ...labels } }) => ({ labels, state: alertstate ?? 'unknown' }));
}
