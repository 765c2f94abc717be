/**
 * `npm run chaos [-- --runbook NAME] [--faults worker,server,audit,engine] [--json FILE] [--fuzz-runs N] [--fuzz-seed S]`: for each runbook with a demo scenario, one
 * undisturbed run on the audit-app sandbox, then the same scenario again under each fault, each judged against the
 * undisturbed run from the outside (src: bench/chaos/run.ts):
 *   worker   — the worker SIGKILLed at every activity boundary of the undisturbed history (before the activity runs,
 *              half-way through it, after it returned but before the server heard), a new worker started at once;
 *   server   — the Temporal dev server SIGKILLed at a random point and restarted on its state file;
 *   audit    — PostgreSQL (the audit trail) unreachable for 30 s mid-incident (a proxy drops every connection);
 *   engine   — the sandbox's own Docker engine stopped for 5 s mid-incident and started again (its containers keep
 *              running: --live-restore); not tried when the sandbox runs on an engine that is not its own;
 * then the HTTP API fuzzed with `--fuzz-runs` requests (bench/fuzz.ts; default 10,000). Prints runbook × fault → tried,
 * passed, failed; a failing run's history is kept for replay. Chaos config: the chaos workers' sticky queue times out
 * after 2 s (production: 10 s); activity timeouts are production's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Command } from 'commander';
import pino from 'pino';
import { dockerClient } from '../../src/activities';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { breakSandbox } from '../../src/cli/demoSandbox';
import { restartSandboxEngine, sandboxDown, sandboxUp } from '../../src/sandbox/commands';
import { buildHttpServer } from '../../src/http/server';
import { catalog, runbookNames, type RunbookName } from '../../src/runbooks/catalog';
import { demoScenarios, type AlertScenario } from '../../src/sandbox/scenarios';
import { startTemporalDevServer } from '../../src/temporal/devServer';
import { freePorts } from '../../test/harness/util';
import { formatFuzzReport, fuzzHttp } from '../fuzz';
import { BENCH_DIR, BENCH_TOKEN, BENCH_TOKEN_CONFIG, bundleWorkflowsOnce, terminateAll } from '../stack';
import { startProxy, type CuttableProxy } from './proxy';
import { CHAOS_APPROVER, differences, runningWorkers, runScenario, type ChaosEnv, type Fault, type Observation } from './run';
import type { KillPoint } from './worker';

const FAULTS = ['worker', 'server', 'audit', 'engine'] as const;
type FaultName = (typeof FAULTS)[number];

interface Tally {
  runbook: string;
  fault: string;
  tried: number;
  passed: number;
  failed: string[];
}

/** The demo scenario of each runbook: the first whose alert routes to it and that breaks the sandbox with a fault. */
function scenarioOf(runbook: RunbookName): { name: string; scenario: AlertScenario } | undefined {
  for (const [name, scenario] of Object.entries(demoScenarios)) {
    if ('alertname' in scenario && scenario.alertname in catalog[runbook].alerts) return { name, scenario: scenario as AlertScenario };
  }
  return undefined;
}

async function main(): Promise<void> {
  const options = new Command()
    .option('--runbook <name>', 'only this runbook (default: every runbook with a demo scenario)')
    .option('--json <file>', 'also write the table as JSON')
    .option('--fuzz-runs <n>', 'requests the HTTP fuzzer sends (0: none)', '10000')
    .option('--faults <list>', `comma-separated faults to inject: ${FAULTS.join(', ')} (default: all)`)
    .option('--fuzz-seed <n>', "the fuzzer's seed, to replay a run it printed (default: a new one)")
    .option('--first-of-each', "kill the worker only around each activity type's first execution, not every one (CI's shorter run)")
    .parse()
    .opts<{ runbook?: string; json?: string; fuzzRuns: string; fuzzSeed?: string; faults?: string; firstOfEach?: boolean }>();
  const faults = (options.faults?.split(',') ?? FAULTS) as FaultName[];
  for (const f of faults) if (!FAULTS.includes(f)) throw new Error(`--faults ${f}: the faults are ${FAULTS.join(', ')}`);
  const fuzzSeed = options.fuzzSeed === undefined ? Date.now() % 1_000_000 : Number(options.fuzzSeed);
  if (!Number.isInteger(fuzzSeed)) throw new Error(`--fuzz-seed ${options.fuzzSeed}: a whole number`);
  const runbooks = options.runbook ? [options.runbook as RunbookName] : runbookNames.filter((r) => scenarioOf(r));
  for (const r of runbooks) if (!runbookNames.includes(r) || !scenarioOf(r)) throw new Error(`no runbook "${r}" with a demo scenario (${runbookNames.filter((n) => scenarioOf(n)).join(', ')})`);

  await bundleWorkflowsOnce();
  process.env.RUNBOOKS_WORKFLOW_BUNDLE = path.join(BENCH_DIR, 'workflow-bundle.js');
  const [port, httpPort, metricsPort, backend, admin, postgres, redis] = (await freePorts(7)) as number[] as [number, number, number, number, number, number, number];
  const serverOptions = { port, httpPort, metricsPort, dbFile: path.join(BENCH_DIR, 'chaos-temporal.db'), logFile: path.join(BENCH_DIR, 'chaos-temporal.log'), appendToLog: true };
  let server = await startTemporalDevServer(serverOptions);
  // Interrupted: end what this process started (the dev server leads its own process group).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      server.kill();
      for (const worker of runningWorkers) worker.kill('SIGKILL');
      process.exit(130);
    });
  }
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: 'default' });
  const proxy = await startProxy('127.0.0.1', 5432);
  const tallies: Tally[] = [];
  const sandboxes: Array<{ dockerHost: string; prefix: string; stopEngine: boolean }> = [];
  let fuzzLine = '';
  try {
    for (const runbook of runbooks) {
      const { name, scenario } = scenarioOf(runbook)!;
      const prefix = 'chaos-';
      const sandbox = await sandboxUp({ dockerHost: process.env.DOCKER_HOST, prefix, ports: { backend, admin, postgres, redis } });
      sandboxes.push({ dockerHost: sandbox.engine.dockerHost, prefix, stopEngine: sandbox.engine.origin === 'started' });
      const config = chaosConfig(server.address, proxy, runbook, scenario, sandbox.targets);
      const env: ChaosEnv = { client, config, docker: dockerClient(sandbox.engine.dockerHost), dockerHost: sandbox.engine.dockerHost, prefix, dir: fs.mkdtempSync(path.join(BENCH_DIR, `chaos-${runbook}-`)) };
      const place = { prefix, ports: { backend, admin, postgres, redis } };
      const once = async (fault?: Fault) => {
        const broken = await breakSandbox({ scenario, place, dockerHost: sandbox.engine.dockerHost, log: () => {} });
        try {
          // breakSandbox broke it: the run only fires the alert.
          return await runScenario(env, { ...scenario, fault: undefined, deploy: undefined }, fault);
        } finally {
          await broken.cleanUp(true);
        }
      };
      process.stdout.write(`${runbook} (scenario ${name}): undisturbed run…\n`);
      const undisturbed = await once();
      const judge = async (fault: string, label: string, disturbed: Fault) => {
        const tally = tallyFor(tallies, runbook, fault);
        tally.tried += 1;
        let problems: string[];
        let run: Observation | undefined;
        try {
          run = await once(disturbed);
          problems = differences(undisturbed, run);
        } catch (err) {
          problems = [err instanceof Error ? err.message : String(err)];
        }
        if (problems.length === 0) tally.passed += 1;
        else {
          const kept = path.join(env.dir, `failed-${tally.tried}.history.json`);
          if (run) fs.writeFileSync(kept, JSON.stringify(run.history));
          tally.failed.push(`${label}: ${problems.join('; ')}${run ? ` (history: ${kept})` : ''}`);
        }
        const retries = run?.retried.length ? ` (retried: ${run.retried.join('; ')})` : '';
        process.stdout.write(`  ${fault} ${label}: ${problems.length ? `FAILED — ${problems.join('; ')}` : 'passed'}${retries}\n`);
      };

      const points = faults.includes('worker') ? boundaries(undisturbed).filter((p) => !options.firstOfEach || p.occurrence === 1) : [];
      for (const point of points) await judge('worker SIGKILL', `${point.phase} ${point.activityType} #${point.occurrence}`, { kill: point });
      const span = durationMs(undisturbed);
      if (faults.includes('server')) await judge('Temporal server SIGKILL', 'restarted on its state file', {
        during: {
          afterMs: Math.round(span * (0.2 + 0.6 * Math.random())),
          act: async () => {
            process.kill(server.pid, 'SIGKILL');
            await new Promise((resolve) => setTimeout(resolve, 1000));
            server = await startTemporalDevServer(serverOptions);
          },
        },
      });
      if (faults.includes('audit')) await judge('audit Postgres unreachable 30 s', 'caught up', { during: { afterMs: Math.round(span * 0.3), act: () => proxy.cut(30_000) } });
      const ownEngine = sandbox.engine.origin === 'started' || sandbox.engine.origin === 'reused';
      if (faults.includes('engine') && ownEngine) {
        await judge('Docker engine restarted', 'down 5 s mid-incident', { during: { afterMs: Math.round(span * 0.3), act: () => restartSandboxEngine({ downMs: 5_000 }) } });
      } else if (faults.includes('engine')) {
        process.stdout.write(`  Docker engine restarted: not tried — the sandbox runs on ${sandbox.engine.dockerHost}, not on an engine of its own\n`);
      }
    }
    const fuzzRuns = Number(options.fuzzRuns);
    if (fuzzRuns > 0) fuzzLine = await fuzz(server.address, fuzzRuns, fuzzSeed);
  } finally {
    for (const sandbox of sandboxes) await sandboxDown(sandbox).catch((err: unknown) => process.stderr.write(`could not remove the chaos sandbox: ${String(err)}\n`));
    await proxy.close();
    await connection.close();
    await server.stop();
  }
  process.stdout.write(`\n${formatTable(tallies)}\n${fuzzLine}\n(files: ${BENCH_DIR})\n`);
  if (options.json) fs.writeFileSync(options.json, `${JSON.stringify({ at: new Date().toISOString(), tallies }, null, 2)}\n`);
  if (tallies.some((t) => t.failed.length) || /FAILED/.test(fuzzLine)) process.exitCode = 1;
}

function chaosConfig(address: string, proxy: CuttableProxy, runbook: RunbookName, scenario: AlertScenario, targets: Awaited<ReturnType<typeof sandboxUp>>['targets']): Config {
  const id = Math.random().toString(16).slice(2, 10);
  return parseConfig({
    temporal: { address, namespace: 'default', taskQueue: `chaos-${runbook}-${id}` },
    audit: { databaseUrl: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`, schema: `chaos_${id}` },
    ...targets,
    approvers: Object.fromEntries(catalog[runbook].approvalKinds.map((kind) => [kind, [CHAOS_APPROVER]])),
    ...(scenario.policies ? { policies: scenario.policies } : {}),
  });
}

/** Every activity execution of the undisturbed history, at each of the three boundaries. */
function boundaries(run: Observation): KillPoint[] {
  const events = (run.history as { events: Array<Record<string, unknown>> }).events;
  const seen = new Map<string, number>();
  const points: KillPoint[] = [];
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes as { activityType?: { name?: string }; } | undefined;
    if (!scheduled?.activityType?.name) continue;
    const type = scheduled.activityType.name;
    const occurrence = (seen.get(type) ?? 0) + 1;
    seen.set(type, occurrence);
    const ms = activityMs(events, event.eventId);
    for (const phase of ['before', 'mid', 'after'] as const) points.push({ activityType: type, occurrence, phase, ...(phase === 'mid' ? { delayMs: Math.max(1, Math.round(ms / 2)) } : {}) });
  }
  return points;
}

/** How long the activity scheduled by event `scheduledId` ran (started → completed). */
function activityMs(events: Array<Record<string, unknown>>, scheduledId: unknown): number {
  const id = String(scheduledId);
  const time = (e?: Record<string, unknown>) => (e ? Date.parse(String(e.eventTime)) : Number.NaN);
  const started = events.find((e) => String((e.activityTaskStartedEventAttributes as { scheduledEventId?: unknown } | undefined)?.scheduledEventId) === id);
  const completed = events.find((e) => String((e.activityTaskCompletedEventAttributes as { scheduledEventId?: unknown } | undefined)?.scheduledEventId) === id);
  const ms = time(completed) - time(started);
  return Number.isFinite(ms) ? ms : 0;
}

function durationMs(run: Observation): number {
  const events = (run.history as { events: Array<{ eventTime?: unknown }> }).events;
  return Date.parse(String(events.at(-1)?.eventTime)) - Date.parse(String(events[0]?.eventTime));
}

function tallyFor(tallies: Tally[], runbook: string, fault: string): Tally {
  let tally = tallies.find((t) => t.runbook === runbook && t.fault === fault);
  if (!tally) tallies.push((tally = { runbook, fault, tried: 0, passed: 0, failed: [] }));
  return tally;
}

async function fuzz(address: string, runs: number, seed: number): Promise<string> {
  const config = parseConfig({
    temporal: { address, namespace: 'default', taskQueue: `chaos-fuzz-${Date.now()}` },
    tokens: [BENCH_TOKEN_CONFIG],
  });
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: 'default' });
  const app = await buildHttpServer({ config, client, logger: pino({ level: 'silent' }) });
  try {
    // Incident actions are aimed at IDs that do not exist as well as made-up ones: no worker is needed for 404s and 4xx.
    const report = await fuzzHttp({ app, client, taskQueue: config.temporal.taskQueue, alertsToken: BENCH_TOKEN, incidentsToken: BENCH_TOKEN, incidentIds: [] }, { runs, seed });
    await terminateAll(client, config.temporal.taskQueue);
    return formatFuzzReport(report);
  } finally {
    await app.close();
    await connection.close();
  }
}

function formatTable(tallies: Tally[]): string {
  const rows = tallies.map((t) => `| ${t.runbook} | ${t.fault} | ${t.tried} | ${t.passed} | ${t.failed.length} |`);
  const failures = tallies.flatMap((t) => t.failed.map((f) => `- ${t.runbook}, ${t.fault}, ${f}`));
  return ['| runbook | fault | tried | passed | failed |', '| --- | --- | --- | --- | --- |', ...rows, ...(failures.length ? ['', ...failures] : [])].join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
