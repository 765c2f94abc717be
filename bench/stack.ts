/**
 * What the benchmarks run on, as production runs it: one Temporal dev server of their own, and `runbooks worker` and
 * `runbooks server` as separate processes (or `runbooks dev` as one), each with a YAML config of its own task queue.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import pino from 'pino';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load';
import type { Config, ConfigInput } from '../src/config/schema';
import { startTemporalDevServer, stopChild } from '../src/temporal/devServer';
import { writeWorkflowBundle } from '../src/worker/bundle';
import { freePorts } from '../test/harness/util';

const CLI = path.resolve(__dirname, '..', 'bin', 'runbooks.js');
export const BENCH_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'runbooks-bench-'));
/** The webhook's token in every bench config (a config without tokens makes `runbooks dev` invent one). */
export const BENCH_TOKEN = randomBytes(16).toString('hex');
/** That token as a config's `tokens` entry. */
export const BENCH_TOKEN_CONFIG = { name: 'bench', sha256: createHash('sha256').update(BENCH_TOKEN).digest('hex'), scopes: ['alerts' as const, 'incidents' as const] };
const WORKFLOW_BUNDLE = path.join(BENCH_DIR, 'workflow-bundle.js');

/** The workflows bundled once, as a production image does, so no process pays for (or measures) the bundler. */
export async function bundleWorkflowsOnce(): Promise<void> {
  await writeWorkflowBundle(WORKFLOW_BUNDLE, pino({ level: 'warn' }));
}

export interface BenchTemporal {
  address: string;
  client: Client;
  stop(): Promise<void>;
}

/** A dev server on free ports with a throwaway state file, and a client of it. */
export async function startBenchTemporal(): Promise<BenchTemporal> {
  const [port, httpPort, metricsPort] = (await freePorts(3)) as [number, number, number];
  const server = await startTemporalDevServer({
    port,
    httpPort,
    metricsPort,
    dbFile: path.join(BENCH_DIR, 'temporal.db'),
    logFile: path.join(BENCH_DIR, 'temporal.log'),
  });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: server.namespace });
  return {
    address: server.address,
    client,
    async stop() {
      await connection.close();
      await server.stop();
    },
  };
}

/** A config of its own task queue and audit schema, on the bench's Temporal; written to a file for the processes. */
export function benchConfig(address: string, overrides: Partial<ConfigInput> = {}): { config: Config; file: string; input: ConfigInput } {
  const id = randomBytes(4).toString('hex');
  const input: ConfigInput = {
    ...overrides,
    tokens: [BENCH_TOKEN_CONFIG],
    temporal: { address, namespace: 'default', taskQueue: `bench-${id}` },
    audit: { databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', schema: `bench_${id}` },
  };
  return { config: parseConfig(input), file: writeConfigFile(input, id), input };
}

/** The config as YAML in the bench's directory, for `--config`. */
export function writeConfigFile(input: ConfigInput, name: string): string {
  const file = path.join(BENCH_DIR, `runbooks-${name}.yaml`);
  fs.writeFileSync(file, stringify(input));
  return file;
}

export interface BenchProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Resident set size now, from /proc. */
  rssBytes(): number;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Environment variables src/config/load.ts lets override the config file. */
const CONFIG_OVERRIDES = ['RUNBOOKS_CONFIG', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'DATABASE_URL', 'DOCKER_HOST', 'HOST', 'PORT', 'REDIS_URL'];

function spawnCli(name: string, args: string[], env: NodeJS.ProcessEnv = {}): BenchProcess {
  const log = fs.openSync(path.join(BENCH_DIR, `${name}.log`), 'a');
  // The config file is the whole truth: environment overrides (a test harness's TEMPORAL_ADDRESS, PORT…) are dropped.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !CONFIG_OVERRIDES.includes(key)));
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...inherited, LOG_LEVEL: 'warn', RUNBOOKS_WORKFLOW_BUNDLE: WORKFLOW_BUNDLE, ...env }, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  return {
    name,
    child,
    pid: child.pid!,
    rssBytes: () => rssOf(child.pid!),
    kill: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (signal === 'SIGKILL') {
        child.kill('SIGKILL');
        if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
        return;
      }
      await stopChild(child, 15_000);
    },
  };
}

/** `runbooks worker`, resolved once it polls its task queue. */
export async function startWorkerProcess(name: string, configFile: string, config: Config, client: Client): Promise<BenchProcess> {
  const worker = spawnCli(name, ['worker', '--config', configFile]);
  await until(`${name} polling ${config.temporal.taskQueue}`, worker, () => hasPoller(client, config.temporal.taskQueue));
  return worker;
}

/** `runbooks server` on `port`, resolved once /healthz answers. */
export async function startServerProcess(name: string, configFile: string, port: number): Promise<BenchProcess & { url: string }> {
  const server = spawnCli(name, ['server', '--config', configFile]);
  const url = `http://127.0.0.1:${port}`;
  await until(`${name} answering ${url}/healthz`, server, () => answers(`${url}/healthz`));
  return { ...server, url };
}

/** `runbooks dev` on an existing Temporal (TEMPORAL_ADDRESS): worker and server in one process. */
export async function startDevProcess(name: string, configFile: string, config: Config, client: Client, port: number): Promise<BenchProcess & { url: string }> {
  const dev = spawnCli(name, ['dev', '--config', configFile], { TEMPORAL_ADDRESS: config.temporal.address });
  const url = `http://127.0.0.1:${port}`;
  await until(`${name} answering and polling`, dev, async () => (await answers(`${url}/healthz`)) && (await hasPoller(client, config.temporal.taskQueue)));
  return { ...dev, url };
}

async function until(what: string, process: BenchProcess, ready: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process.child.exitCode !== null || process.child.signalCode !== null) {
      throw new Error(`${process.name} exited before ${what} — see ${path.join(BENCH_DIR, `${process.name}.log`)}`);
    }
    if (await ready().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`no ${what} within ${timeoutMs / 1000} s — see ${path.join(BENCH_DIR, `${process.name}.log`)}`);
}

async function hasPoller(client: Client, taskQueue: string): Promise<boolean> {
  const response = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (response.pollers?.length ?? 0) > 0;
}

async function answers(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
  return response.ok;
}

function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0);
  return kb * 1024;
}

/** Workflows on a task queue, counted through visibility once it has caught up (the count stops changing). */
export async function countWorkflows(client: Client, taskQueue: string, extra = ''): Promise<number> {
  const query = `TaskQueue = '${taskQueue}'${extra ? ` AND ${extra}` : ''}`;
  let last = -1;
  for (let stable = 0; stable < 3; ) {
    const { count } = await client.workflow.count(query);
    stable = count === last ? stable + 1 : 0;
    last = count;
    if (stable < 3) await sleep(300);
  }
  return last;
}

/** Terminates every running workflow on a task queue (what a bench row leaves behind). */
export async function terminateAll(client: Client, taskQueue: string): Promise<number> {
  let terminated = 0;
  for await (const execution of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
    await client.workflow.getHandle(execution.workflowId, execution.runId).terminate('bench cleanup').then(() => terminated++, () => {});
  }
  return terminated;
}
