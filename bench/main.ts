/**
 * `npm run bench [-- --json FILE] [--quick]`: the webhook and the worker as production runs them (`runbooks server` +
 * `runbooks worker`, separate processes) on a Temporal dev server of the bench's own, each row against its bare
 * baseline in the same run; on an audit-app sandbox, API-down MTTR and the backfill; then `runbooks dev` (one process),
 * and two workers + two servers (scale-out). Prints a table of ours, baseline, ratio and target. `--quick` is the smoke
 * run `npm test` does so the bench cannot rot; `--only` runs some parts.
 */
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { freePorts } from '../test/harness/util';
import { sandboxDown, sandboxUp } from '../src/sandbox/commands';
import { backfillRow, mttrRow, type SandboxStack } from './procedures';
import { ingestionRow, openIncidentsRow, probeLatency, resolveAll, stormRow, type Row, type Stack } from './rows';
import { BENCH_DIR, benchConfig, bundleWorkflowsOnce, writeConfigFile, startBenchTemporal, startDevProcess, startServerProcess, startWorkerProcess, terminateAll, type BenchProcess, type BenchTemporal } from './stack';

interface Sizes {
  ingest: number;
  stormFingerprints: number;
  probe: number;
  mttrRounds: number;
  backfillYears: number;
}

const FULL: Sizes = { ingest: 2000, stormFingerprints: 1000, probe: 300, mttrRounds: 5, backfillYears: 3 };
const QUICK: Sizes = { ingest: 40, stormFingerprints: 30, probe: 20, mttrRounds: 1, backfillYears: 1 };

/** The bench's parts, each selectable with --only. */
const PARTS = ['ingestion', 'storm', 'sandbox', 'dev', 'scale-out'] as const;
type Part = (typeof PARTS)[number];

async function main(): Promise<void> {
  const options = new Command()
    .option('--quick', 'a smoke run with tiny sizes (what npm test runs)')
    .option('--json <file>', 'also write the rows as JSON')
    .option('--only <parts>', `comma-separated parts to run: ${PARTS.join(', ')} (default: all)`)
    .parse()
    .opts<{ quick?: boolean; json?: string; only?: string }>();
  const sizes = options.quick ? QUICK : FULL;
  const only = (options.only?.split(',') ?? PARTS) as Part[];
  for (const part of only) if (!PARTS.includes(part)) throw new Error(`--only ${part}: the parts are ${PARTS.join(', ')}`);
  await bundleWorkflowsOnce();
  const temporal = await startBenchTemporal();
  const rows: Row[] = [];
  try {
    // Each row is printed as soon as it is measured: a part that fails later does not lose the earlier ones.
    const done = (measured: Row[]) => {
      for (const row of measured) process.stdout.write(`measured: ${JSON.stringify(row)}\n`);
      rows.push(...measured);
    };
    if (only.includes('ingestion') || only.includes('storm')) done(await separateProcesses(temporal, sizes, only));
    if (only.includes('sandbox')) done(await onTheSandbox(temporal, sizes));
    if (only.includes('dev')) done([await oneProcess(temporal, sizes)]);
    if (only.includes('scale-out')) done([await scaleOut(temporal, sizes)]);
  } finally {
    await temporal.stop();
  }
  process.stdout.write(`${formatTable(rows)}\n(logs: ${BENCH_DIR})\n`);
  if (options.json) fs.writeFileSync(options.json, `${JSON.stringify({ at: new Date().toISOString(), quick: !!options.quick, rows }, null, 2)}\n`);
}

/** Ingestion, storm and open incidents against `runbooks server` + `runbooks worker`. */
async function separateProcesses(temporal: BenchTemporal, sizes: Sizes, only: Part[]): Promise<Row[]> {
  const [port] = (await freePorts(1)) as [number];
  const { config, file } = benchConfig(temporal.address, { http: { port } });
  const running: BenchProcess[] = [];
  try {
    const worker = await startWorkerProcess('worker', file, config, temporal.client);
    running.push(worker);
    const server = await startServerProcess('server', file, port);
    running.push(server);
    const stack: Stack = { client: temporal.client, config, urls: [server.url] };

    await probeLatency(stack, 10); // warm-up: connections, the workflow cache's first entries
    await terminateAll(temporal.client, config.temporal.taskQueue);
    await sleep(2000);
    const idle = { rssBytes: worker.rssBytes(), probe: await probeLatency(stack, sizes.probe) };
    await terminateAll(temporal.client, config.temporal.taskQueue);

    const rows: Row[] = [];
    if (only.includes('ingestion')) rows.push(await ingestionRow(stack, 'alert ingestion (server + worker)', sizes.ingest));
    if (!only.includes('storm')) return rows;
    const storm = await stormRow(stack, 'alert storm', sizes.stormFingerprints);
    await sleep(5000); // the storm's incidents reach their escalation timers
    const loaded = { rssBytes: worker.rssBytes(), probe: await probeLatency(stack, sizes.probe) };
    await terminateAll(temporal.client, config.temporal.taskQueue);
    return [...rows, storm, openIncidentsRow(storm.open, idle, loaded)];
  } finally {
    for (const p of running.reverse()) await p.kill();
  }
}

/** API-down MTTR and the backfill, on an audit-app sandbox of the bench's own (a private Docker engine if none answers). */
async function onTheSandbox(temporal: BenchTemporal, sizes: Sizes): Promise<Row[]> {
  const [port, backend, admin, postgres, redis] = (await freePorts(5)) as [number, number, number, number, number];
  const prefix = 'bench-';
  const up = await sandboxUp({ dockerHost: process.env.DOCKER_HOST, prefix, ports: { backend, admin, postgres, redis } });
  const { config, file } = benchConfig(temporal.address, { http: { port }, ...up.targets });
  const running: BenchProcess[] = [];
  try {
    const startWorker = async () => {
      const worker = await startWorkerProcess('sandbox-worker', file, config, temporal.client);
      running.push(worker);
      return worker;
    };
    const worker = await startWorker();
    const server = await startServerProcess('sandbox-server', file, port);
    running.push(server);
    const stack: SandboxStack = { client: temporal.client, config, configFile: file, url: server.url, app: up.app, dockerHost: up.engine.dockerHost, worker };
    return [await mttrRow(stack, sizes.mttrRounds), await backfillRow(stack, sizes.backfillYears, startWorker)];
  } finally {
    for (const p of running.reverse()) await p.kill();
    await sandboxDown({ dockerHost: up.engine.dockerHost, prefix, stopEngine: up.engine.origin === 'started' });
  }
}

/** Ingestion against `runbooks dev`: worker and webhook in one process. */
async function oneProcess(temporal: BenchTemporal, sizes: Sizes): Promise<Row> {
  const [port] = (await freePorts(1)) as [number];
  const { config, file } = benchConfig(temporal.address, { http: { port } });
  const dev = await startDevProcess('dev', file, config, temporal.client, port);
  try {
    return await ingestionRow({ client: temporal.client, config, urls: [dev.url] }, 'alert ingestion (runbooks dev, one process)', sizes.ingest);
  } finally {
    await dev.kill();
  }
}

/**
 * Two workers and two servers on one task queue: the storm spread across both servers, one worker SIGKILLed half-way;
 * still one incident per fingerprint, and the other worker closes every one when the alerts resolve.
 */
async function scaleOut(temporal: BenchTemporal, sizes: Sizes): Promise<Row> {
  const [portA, portB] = (await freePorts(2)) as [number, number];
  const a = benchConfig(temporal.address, { http: { port: portA } });
  // One deployment: the second server's config is the first's with its own port (same task queue, same audit schema).
  const bFile = writeConfigFile({ ...a.input, http: { port: portB } }, 'scale-server-b');
  const running: BenchProcess[] = [];
  try {
    const workerA = await startWorkerProcess('scale-worker-a', a.file, a.config, temporal.client);
    running.push(workerA);
    running.push(await startWorkerProcess('scale-worker-b', a.file, a.config, temporal.client));
    const serverA = await startServerProcess('scale-server-a', a.file, portA);
    running.push(serverA);
    const serverB = await startServerProcess('scale-server-b', bFile, portB);
    running.push(serverB);
    const stack: Stack = { client: temporal.client, config: a.config, urls: [serverA.url, serverB.url] };
    const killed = sleep(1500).then(() => workerA.kill('SIGKILL'));
    const storm = await stormRow(stack, 'scale-out: 2 servers, 2 workers, one SIGKILLed', sizes.stormFingerprints);
    await killed;
    const closing = await resolveAll(stack, 'BenchStorm');
    const met = storm.figures.incidents === sizes.stormFingerprints && storm.figures.lost === 0 && storm.figures.duplicates === 0 && closing.stillRunning === 0;
    return {
      ...storm,
      ours: `${storm.ours}; after the SIGKILL the other worker closed ${closing.closed}, ${closing.stillRunning} still open`,
      target: `exactly ${sizes.stormFingerprints} incidents across both servers; every one closed by the surviving worker`,
      met,
      figures: { ...storm.figures, closed: closing.closed, stillRunning: closing.stillRunning },
    };
  } finally {
    for (const p of running.reverse()) await p.kill();
  }
}

function formatTable(rows: Row[]): string {
  const header = ['row', 'ours', 'baseline in the same run', 'ratio', 'target', 'met'];
  const lines = rows.map((r) => [r.row, r.ours, r.baseline, r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`, r.target, r.met ? 'yes' : 'NO']);
  const table = [header, header.map(() => '---'), ...lines].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
  const notes = rows.flatMap((r) => (r.notes?.length ? [`- ${r.row}: ${r.notes.join('; ')}`] : []));
  return notes.length ? `${table}\n\n${notes.join('\n')}` : table;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
