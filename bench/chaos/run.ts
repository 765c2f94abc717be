/**
 * One chaos run of a demo scenario: break the sandbox, fire the scenario's alert, keep a worker running (replacing one
 * that died, approving what asks as `chaos`), optionally inject one fault, and observe the outcome from the outside —
 * the timeline, the audit trail in Postgres, and what the Docker engine saw done to the sandbox's containers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import type { Config } from '../../src/config/schema';
import type { IncidentOutcome } from '../../src/incidents/model';
import { actOnIncident } from '../../src/incidents/operations';
import { ingestAlert } from '../../src/intake/ingest';
import { sandboxBreak } from '../../src/sandbox/commands';
import type { AlertScenario } from '../../src/sandbox/scenarios';
import { reportsRetriesOf } from '../../src/worker/retryReporter';
import { statusQuery } from '../../src/workflows/lifecycle/definitions';
import type { KillPoint } from './worker';

const WORKER = path.resolve(__dirname, 'worker.ts');
export const CHAOS_APPROVER = 'chaos';
/** Container events that change something; the ones a run's remediation causes are counted. */
const ACTIONS = new Set(['create', 'destroy', 'restart', 'rename', 'kill', 'stop', 'start', 'die']);

export interface ChaosEnv {
  client: Client;
  config: Config;
  docker: Docker;
  dockerHost: string;
  prefix: string;
  /** Where the config JSON, worker logs and kept histories go. */
  dir: string;
}

export interface Fault {
  /** Worker SIGKILLed at an activity boundary. */
  kill?: KillPoint;
  /** Something done to a component while the incident runs, after `afterMs`. */
  during?: { afterMs: number; act: () => Promise<void> };
}

export interface Observation {
  workflowId: string;
  resolution: string;
  /** Timeline messages with numbers masked ("times aside"), retries aside (a fault adds those). */
  timeline: string[];
  /** The retries the timeline reports, as `<activityType> attempt <n>`. */
  timelineRetries: string[];
  /** Audit rows per timeline event (1 = exactly once). */
  auditCopies: number[];
  auditMissing: number;
  /** Container events during the incident, by `<role> <action>`. */
  dockerActions: Record<string, number>;
  workersStarted: number;
  /** Activities that needed more than one attempt, with the failure before the last: what a fault made retry. */
  retried: string[];
  /** The same from the history, as `<activityType> attempt <n>`: each runbook step's must be on the timeline too. */
  retriedAttempts: string[];
  history: unknown;
}

/** Runs the scenario once (with `fault`, if any) and reports what was observed. */
export async function runScenario(env: ChaosEnv, scenario: AlertScenario, fault: Fault = {}, timeoutMs = 600_000): Promise<Observation> {
  const { client, config } = env;
  if (scenario.fault) await sandboxBreak({ dockerHost: env.dockerHost, prefix: env.prefix, fault: scenario.fault.name, ...scenario.fault.options });
  // The engine logs a stop a moment after its API call returns: let the break's own events fall before `since`.
  await sleep(1000);
  const since = Date.now() / 1000;
  const configFile = path.join(env.dir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify(config));

  let worker = spawnWorker(env, configFile, fault.kill);
  let workersStarted = 1;
  const fingerprint = randomBytes(8).toString('hex');
  const severity = 'critical';
  const intake = await ingestAlert(client, config, {
    status: 'firing',
    labels: { ...scenario.labels, alertname: scenario.alertname, severity, service: 'audit-app' },
    annotations: { summary: 'npm run chaos' },
    startsAt: new Date().toISOString(),
    generatorURL: '',
    fingerprint,
  });
  const handle = client.workflow.getHandle(intake.workflowId);
  const during = fault.during ? sleep(fault.during.afterMs).then(fault.during.act) : Promise.resolve();
  let closed = false;
  const result = handle.result().then(
    (outcome: IncidentOutcome) => ((closed = true), outcome),
    (err: unknown) => ((closed = true), Promise.reject(err)),
  );
  const deadline = Date.now() + timeoutMs;
  try {
    while (!closed) {
      if (Date.now() > deadline) throw new Error(`${intake.workflowId} not closed within ${timeoutMs / 1000} s`);
      if (worker.exitCode !== null || worker.signalCode !== null) {
        worker = spawnWorker(env, configFile);
        workersStarted += 1;
      }
      await approvePending(client, intake.workflowId);
      await Promise.race([result.catch(() => {}), sleep(250)]);
    }
    const outcome = await result;
    await during;
    const until = Date.now() / 1000;
    const audit = await auditCopies(config, intake.workflowId, outcome.timeline.map((e) => e.seq));
    return {
      workflowId: intake.workflowId,
      resolution: outcome.resolution,
      timeline: outcome.timeline.filter((e) => e.kind !== 'activity-retried').map((e) => timesAside(e.message, intake.workflowId)),
      timelineRetries: outcome.timeline.filter((e) => e.kind === 'activity-retried').map((e) => `${String(e.data?.activityType)} attempt ${String(e.data?.attempt)}`),
      auditCopies: audit.copies,
      auditMissing: audit.missing,
      dockerActions: await containerActions(env, since, until),
      workersStarted,
      ...(await historyAndRetries(handle)),
    };
  } finally {
    worker.kill('SIGTERM');
    if (worker.exitCode === null && worker.signalCode === null) await new Promise((resolve) => worker.once('exit', resolve));
  }
}

async function historyAndRetries(handle: ReturnType<Client['workflow']['getHandle']>): Promise<Pick<Observation, 'history' | 'retried' | 'retriedAttempts'>> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, string>();
  const retried: string[] = [];
  const retriedAttempts: string[] = [];
  for (const event of history.events ?? []) {
    const type = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (type) scheduled.set(String(event.eventId), type);
    const started = event.activityTaskStartedEventAttributes;
    if (started && (started.attempt ?? 1) > 1) {
      const why = started.lastFailure?.message ?? started.lastFailure?.cause?.message ?? 'no failure recorded (a timeout)';
      const type = scheduled.get(String(started.scheduledEventId)) ?? '?';
      const attempt = `${type} attempt ${started.attempt}`;
      retried.push(`${attempt} after "${why.slice(0, 120)}"`);
      if (reportsRetriesOf(type)) retriedAttempts.push(attempt);
    }
  }
  return { history, retried, retriedAttempts };
}

/**
 * A timeline message without what differs from run to run: the incident's id, container ids, numbers, and the list of
 * slowest statements (pg_stat_statements keeps every earlier run's statements too, so its top five drift between runs).
 */
function timesAside(message: string, workflowId: string): string {
  return message
    .replace(/^(Slowest statements by mean time: )[\s\S]*$/, '$1<statements>')
    .split(workflowId)
    .join('<incident>')
    .replace(/\b[0-9a-f]{12,64}\b/g, '<id>')
    .replace(/\d+(\.\d+)?/g, '#');
}

/** Chaos workers still running, for a signal handler to end. */
export const runningWorkers = new Set<ChildProcess>();

function spawnWorker(env: ChaosEnv, configFile: string, kill?: KillPoint): ChildProcess {
  const log = fs.openSync(path.join(env.dir, 'workers.log'), 'a');
  const child = spawn(process.execPath, [require.resolve('tsx/cli'), WORKER, configFile], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...(kill ? { CHAOS_KILL_AT: JSON.stringify(kill) } : { CHAOS_KILL_AT: '' }) },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  runningWorkers.add(child);
  child.once('exit', () => runningWorkers.delete(child));
  return child;
}

async function approvePending(client: Client, workflowId: string): Promise<void> {
  const status = await client.workflow.getHandle(workflowId).query(statusQuery).catch(() => undefined);
  for (const pending of status?.pendingApprovals ?? []) {
    await actOnIncident(client, workflowId, { kind: 'approve', step: pending.step, by: CHAOS_APPROVER, reason: 'npm run chaos' }).catch(() => {});
  }
  for (const task of (status?.tasks ?? []).filter((t) => t.state === 'open')) {
    await actOnIncident(client, workflowId, { kind: 'complete-task', task: task.id, by: CHAOS_APPROVER, note: 'npm run chaos' }).catch(() => {});
  }
}

/** How many audit rows each timeline event has (by its seq), and how many audit rows match no event. */
async function auditCopies(config: Config, workflowId: string, seqs: number[]): Promise<{ copies: number[]; missing: number }> {
  const pg = new PgClient({ connectionString: config.audit.databaseUrl });
  await pg.connect();
  try {
    const schema = config.audit.schema;
    // The audit writer may still be catching up after an outage: wait until it has every event (or give up after 60 s).
    for (let waited = 0; ; waited += 500) {
      const { rows } = await pg.query<{ seq: number }>(
        `SELECT e.seq FROM "${schema}".incident_events e JOIN "${schema}".incidents i USING (run_id) WHERE i.workflow_id = $1`,
        [workflowId],
      );
      const counts = new Map<number, number>();
      for (const r of rows) counts.set(r.seq, (counts.get(r.seq) ?? 0) + 1);
      const copies = seqs.map((seq) => counts.get(seq) ?? 0);
      if (copies.every((c) => c > 0) || waited >= 60_000) return { copies, missing: rows.filter((r) => !seqs.includes(r.seq)).length };
      await sleep(500);
    }
  } finally {
    await pg.end();
  }
}

/** Container events the Docker engine recorded for the sandbox between two times, by `<role> <action>`. */
async function containerActions(env: ChaosEnv, since: number, until: number): Promise<Record<string, number>> {
  const stream = (await env.docker.getEvents({ since: Math.floor(since), until: Math.ceil(until) + 1, filters: JSON.stringify({ type: ['container'] }) } as never)) as unknown as NodeJS.ReadableStream;
  const text = await new Promise<string>((resolve, reject) => {
    let data = '';
    stream.on('data', (chunk: Buffer) => (data += chunk.toString('utf8')));
    stream.on('end', () => resolve(data));
    stream.on('error', reject);
  });
  const counts: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as { Action: string; timeNano?: number; Actor?: { Attributes?: { name?: string } } };
    // The engine filters by whole seconds: the sandbox's own break, a moment before `since`, must not count.
    if ((event.timeNano ?? 0) / 1e9 < since || (event.timeNano ?? 0) / 1e9 > until) continue;
    const name = event.Actor?.Attributes?.name ?? '';
    if (!name.startsWith(env.prefix) || !ACTIONS.has(event.Action)) continue;
    const role = name.slice(env.prefix.length).replace(/-replaced-.*$/, '-replaced');
    counts[`${role} ${event.Action}`] = (counts[`${role} ${event.Action}`] ?? 0) + 1;
  }
  return counts;
}

/** Where a disturbed run differs from the undisturbed one; empty when it passed. */
export function differences(undisturbed: Observation, run: Observation): string[] {
  const found: string[] = [];
  if (run.resolution !== undisturbed.resolution) found.push(`resolution ${run.resolution}, undisturbed ${undisturbed.resolution}`);
  const dup = run.timeline.filter((m, i) => run.timeline.indexOf(m) !== i && !undisturbed.timeline.filter((u) => u === m).length);
  if (dup.length) found.push(`duplicate timeline events: ${dup.join(' | ')}`);
  const missing = undisturbed.timeline.filter((m) => !run.timeline.includes(m));
  const extra = run.timeline.filter((m) => !undisturbed.timeline.includes(m));
  if (missing.length) found.push(`timeline lacks: ${missing.join(' | ')}`);
  if (extra.length) found.push(`timeline has extra: ${extra.join(' | ')}`);
  const unreported = run.retriedAttempts.filter((a) => !run.timelineRetries.includes(a));
  if (unreported.length) found.push(`retried but not on the timeline: ${unreported.join(' | ')}`);
  const notOnce = run.auditCopies.filter((c) => c !== 1).length;
  if (notOnce || run.auditMissing) found.push(`audit trail: ${notOnce} event(s) not exactly once, ${run.auditMissing} row(s) with no event`);
  const keys = new Set([...Object.keys(undisturbed.dockerActions), ...Object.keys(run.dockerActions)]);
  for (const key of keys) {
    const a = undisturbed.dockerActions[key] ?? 0;
    const b = run.dockerActions[key] ?? 0;
    if (a !== b) found.push(`docker "${key}" ${b}×, undisturbed ${a}×`);
  }
  return found;
}
