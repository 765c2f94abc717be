// The backfill against the real sandbox ETL (its pipeline in the etl container writing to the sandbox's PostgreSQL)
// and real Temporal, proven with crashes: a worker process SIGKILLed in the middle of a chunk, the Temporal dev
// server SIGKILLed and restarted on its state file; and pause / resume / cancel holding for real.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import { stringify } from 'yaml';
import { dockerClient } from '../src/activities';
import { actOnBackfill, getBackfill, type BackfillView } from '../src/backfills/operations';
import type { BackfillOutcome } from '../src/backfills/model';
import { parseConfig } from '../src/config/load';
import type { Config, ConfigInput } from '../src/config/schema';
import { startBackfill } from '../src/intake/backfill';
import { auditAppTargets, etlLog, EtlLogPatterns, etlWrites, removeAuditApp, type AuditApp } from '../src/sandbox/auditApp';
import { startDevServer, type DevServer } from './harness/temporal';
import { freePort, isAlive, LOG_DIR } from './harness/util';
import { cliWorkspace } from './support/cli';
import { dropAuditSchema } from './support/audit';
import { testConfigInput } from './support/config';
import { requireEnv } from './support/env';
import { startTestAuditApp } from './support/sandbox';
import { recordHistoryIfAsked } from './support/histories';
import { waitFor } from './support/wait';
import { startWorker } from './support/worker';

const CLI = path.resolve(__dirname, '../bin/runbooks.js');
const COUNTIES = ['Kisumu', 'Nairobi'];
/** 40 records per county-year at 100 ms: a chunk takes about 4 s, long enough to be killed in the middle. */
const DELAY_MS = 100;
const DELAY = `${DELAY_MS}ms`;
const RECORDS_PER_CHUNK = 40;
/** The worker's maxHeartbeatThrottleInterval: a cursor reaches the server at most this late. */
const HEARTBEAT_THROTTLE_MS = 1_000;
/** Records written in one heartbeat interval, and the one being written when the heartbeat left. */
const ONE_HEARTBEAT_OF_RECORDS = HEARTBEAT_THROTTLE_MS / DELAY_MS + 1;

describe('a backfill against the sandbox ETL, through crashes', { timeout: 290_000 }, () => {
  let docker: Docker;
  let app: AuditApp;
  const prefix = `bf-${randomBytes(3).toString('hex')}-`;
  const scratch = mkdtempSync(path.join(tmpdir(), 'runbooks-backfill-'));
  const stops: Array<() => Promise<unknown>> = [];

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    app = await startTestAuditApp(docker, prefix);
  });

  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await removeAuditApp(docker, prefix);
    rmSync(scratch, { recursive: true, force: true });
  });

  /** Each backfill of this file loads its own years, so row counts and log lines never mix. */
  function configInput(overrides: Partial<ConfigInput> = {}): ConfigInput {
    return testConfigInput({ ...auditAppTargets(app), backfill: { counties: COUNTIES, delay: DELAY, chunksPerRun: 2 }, ...overrides });
  }

  async function rows(years: number[]): Promise<Array<{ county: string; year: number; n: number }>> {
    const pg = new PgClient({ connectionString: app.urls.database });
    await pg.connect();
    try {
      const { rows: found } = await pg.query<{ county: string; year: number; n: number }>(
        `SELECT county, year, count(*)::int AS n FROM documents WHERE year = ANY($1) AND report_type LIKE 'report-%' GROUP BY county, year ORDER BY year, county`,
        [years],
      );
      return found;
    } finally {
      await pg.end();
    }
  }

  const everyChunkOnce = (years: number[]) => years.flatMap((year) => COUNTIES.map((county) => ({ county, year, n: RECORDS_PER_CHUNK })));

  async function progress(client: Client, workflowId: string, what: string, until: (view: BackfillView) => boolean, timeoutMs = 120_000): Promise<BackfillView> {
    let last: BackfillView | undefined;
    return waitFor(
      what,
      async () => {
        last = await getBackfill(client, workflowId).catch(() => last);
        return last && until(last) ? last : undefined;
      },
      timeoutMs,
    ).catch((err: Error) => assert.fail(`${err.message}; last status: ${JSON.stringify(last)}; worker processes printed: ${workerOutput.join('').slice(-2000)}`));
  }

  /** A real `runbooks worker` process, as production runs it; what it prints is kept for failure messages. */
  const workerOutput: string[] = [];
  function spawnWorker(configFile: string): ChildProcess {
    const child = spawn(process.execPath, [CLI, 'worker', '--config', configFile], { env: { ...process.env, LOG_LEVEL: 'error' }, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (d: Buffer) => workerOutput.push(d.toString()));
    stops.push(async () => child.kill('SIGKILL'));
    return child;
  }

  test('a worker SIGKILLed in the middle of a chunk: a new worker resumes it from the last heartbeat; every record is there once, and only the records since that heartbeat were written twice', async () => {
    const years = [2001, 2002];
    const input = configInput();
    const config = parseConfig(input);
    const configFile = path.join(scratch, 'worker-crash.yaml');
    writeFileSync(configFile, stringify(input));
    stops.push(() => dropAuditSchema(config));
    const connection = await Connection.connect({ address: config.temporal.address });
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace: config.temporal.namespace });

    const first = spawnWorker(configFile);
    const { handle } = await startBackfill(client, config, { from: years[0], to: years[1], by: 'erin' });
    const midChunk = await progress(client, handle.workflowId, 'the second chunk half-way', (v) => v.chunksDone === 1 && (v.cursor?.lastRecord ?? 0) >= 15);
    first.kill('SIGKILL');
    await waitFor('the worker to be gone', async () => (isAlive(first.pid!) ? undefined : true));
    const crashed = midChunk.current!;
    const crashedChunk = `${crashed.county} ${crashed.year}`;
    // The status's pace, for real: records of ≈ the total, records/s of loading, an ETA.
    assert.equal(midChunk.recordsSoFar, RECORDS_PER_CHUNK + midChunk.cursor!.lastRecord);
    assert.deepEqual({ total: midChunk.recordsTotal, estimated: midChunk.recordsTotalEstimated }, { total: 4 * RECORDS_PER_CHUNK, estimated: true });
    assert.ok(midChunk.recordsPerSecond > 0 && midChunk.recordsPerSecond <= 1000 / DELAY_MS, `records/s: ${midChunk.recordsPerSecond}`);
    assert.ok(midChunk.etaSeconds !== undefined && midChunk.etaSeconds > 0, `ETA: ${midChunk.etaSeconds}`);

    spawnWorker(configFile);
    const outcome: BackfillOutcome = await handle.result();
    assert.deepEqual({ ...outcome, runs: undefined }, { cancelled: false, chunksDone: 4, recordsWritten: outcome.recordsWritten, skipped: [], runs: undefined });
    assert.equal(outcome.runs, 2, 'chunksPerRun 2: the backfill continued as new once');
    assert.deepEqual(await rows(years), everyChunkOnce(years), 'every county-year record is in documents exactly once');

    const log = await etlLog(docker, app);
    // The retry's run: the one run of the crashed chunk's year that did not start at record 1. It starts after the
    // cursor of the last heartbeat the server had, which is at least the one the status showed before the kill.
    const resumed = log.flatMap((line, index) => {
      const started = EtlLogPatterns.runStarted.exec(line);
      return started && Number(started[3]) === crashed.year && Number(started[4]) > 1 ? [{ index, from: Number(started[4]) }] : [];
    });
    assert.equal(resumed.length, 1, `one resumed run: ${JSON.stringify(resumed)}`);
    const { index: resumedAt, from } = resumed[0]!;
    assert.ok(from > midChunk.cursor!.lastRecord, `resumed from #${from}, after the cursor #${midChunk.cursor!.lastRecord} the server had before the kill`);
    const killedAttempt = [...etlWrites(log.slice(0, resumedAt), [crashed.year]).keys()].filter((key) => key.startsWith(`${crashedChunk} `));
    const lastWritten = Math.max(...killedAttempt.map((key) => Number(key.split('#')[1])));

    const counts = etlWrites(log, years);
    const twice = [...counts.entries()].filter(([, n]) => n > 1).map(([key]) => key);
    const recordsAfterCursor = Array.from({ length: Math.max(0, lastWritten - from + 1) }, (_, i) => `${crashedChunk} #${from + i}`);
    assert.deepEqual(twice.sort(), recordsAfterCursor.sort(), `written twice: exactly the records after the resumed cursor (#${from - 1}) up to the last one the killed attempt wrote (#${lastWritten})`);
    assert.ok(twice.length <= ONE_HEARTBEAT_OF_RECORDS, `at most one heartbeat's worth of records written twice (${ONE_HEARTBEAT_OF_RECORDS}): ${twice.length}`);
    assert.ok([...counts.values()].every((n) => n <= 2), 'nothing written more than twice');
    assert.equal(counts.size, years.length * COUNTIES.length * RECORDS_PER_CHUNK, 'every record was written');
    const done = await getBackfill(client, handle.workflowId);
    console.log(`# worker crash: killed at ${crashedChunk} #${lastWritten}, resumed from #${from}; records written twice: ${twice.length}; chunk ${RECORDS_PER_CHUNK} records, delay ${DELAY}, heartbeats every ${HEARTBEAT_THROTTLE_MS} ms at most`);
    console.log(`# worker crash: ${done.recordsPerSecond} records/s of loading time, the crash's wait for the heartbeat timeout included (mid-chunk before the kill: ${midChunk.recordsPerSecond}/s, ETA ${midChunk.etaSeconds} s)`);
    await recordHistoryIfAsked(handle.workflowId, 'backfill-worker-crash-continued-as-new', { runId: handle.firstExecutionRunId });
  });

  test('the Temporal dev server SIGKILLed mid-backfill and restarted on its state file: the backfill completes, every record once', async () => {
    const years = [2003, 2004];
    const stateDir = mkdtempSync(path.join(tmpdir(), 'runbooks-backfill-server-'));
    stops.push(async () => rmSync(stateDir, { recursive: true, force: true }));
    const serverOptions = { dbFile: path.join(stateDir, 'temporal.db'), port: await freePort(), logFile: path.join(LOG_DIR, 'temporal-backfill-crash.log') };
    let server: DevServer = await startDevServer(serverOptions);
    stops.push(() => server.stop());
    const config = parseConfig(configInput({ temporal: { address: server.address } }));
    stops.push(() => dropAuditSchema(config));
    const worker = await startWorker(config, { logLevel: 'error' });
    stops.push(() => worker.stop());

    const { handle } = await startBackfill(worker.client, config, { from: years[0], to: years[1], by: 'erin' });
    await progress(worker.client, handle.workflowId, 'the first chunk under way', (v) => (v.cursor?.lastRecord ?? 0) >= 10);
    process.kill(server.pid, 'SIGKILL');
    await waitFor('the server to be gone', async () => (isAlive(server.pid) ? undefined : true));
    server = await startDevServer(serverOptions);

    const done = await progress(worker.client, handle.workflowId, 'the backfill to finish after the restart', (v) => v.phase === 'done', 180_000);
    assert.equal(done.chunksDone, 4);
    assert.deepEqual(await rows(years), everyChunkOnce(years));
  });

  test('pause: no chunk starts and the rows stay constant while paused; resume finishes it; cancel stops after the current chunk', async () => {
    const config = parseConfig(configInput());
    stops.push(() => dropAuditSchema(config));
    const worker = await startWorker(config);
    stops.push(() => worker.stop());

    const years = [2005, 2006];
    const { handle } = await startBackfill(worker.client, config, { from: years[0], to: years[1], by: 'erin' });
    await progress(worker.client, handle.workflowId, 'the first chunk under way', (v) => (v.cursor?.lastRecord ?? 0) >= 5);
    await actOnBackfill(worker.client, handle.workflowId, 'pause', { by: 'erin' });
    const paused = await progress(worker.client, handle.workflowId, 'the current chunk to finish', (v) => v.phase === 'paused' && v.current === undefined);
    const held = await rows(years);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.deepEqual(await rows(years), held, 'no record is written while paused');
    assert.equal((await getBackfill(worker.client, handle.workflowId)).chunksDone, paused.chunksDone);

    await actOnBackfill(worker.client, handle.workflowId, 'resume', { by: 'erin' });
    const done = await progress(worker.client, handle.workflowId, 'the backfill to finish', (v) => v.phase === 'done');
    assert.equal(done.chunksDone, 4);
    assert.deepEqual(await rows(years), everyChunkOnce(years));
    console.log(`# pause/resume: ${done.recordsPerSecond} records/s of loading time (the pause left out), ${done.recordsWritten} records in ${done.chunksDone} chunks of ${RECORDS_PER_CHUNK}, delay ${DELAY}`);

    const cancelYears = [2007, 2008];
    const second = await startBackfill(worker.client, config, { from: cancelYears[0], to: cancelYears[1], by: 'erin' });
    await progress(worker.client, second.handle.workflowId, 'the first chunk under way', (v) => (v.cursor?.lastRecord ?? 0) >= 5);
    await actOnBackfill(worker.client, second.handle.workflowId, 'cancel', { by: 'erin', reason: 'wrong range' });
    const outcome: BackfillOutcome = await second.handle.result();
    assert.deepEqual({ cancelled: outcome.cancelled, chunksDone: outcome.chunksDone, recordsWritten: outcome.recordsWritten }, { cancelled: true, chunksDone: 1, recordsWritten: RECORDS_PER_CHUNK });
    assert.deepEqual(await rows(cancelYears), [{ county: COUNTIES[0], year: cancelYears[0], n: RECORDS_PER_CHUNK }], 'the current chunk finished, nothing after it');
  });

  test('the CLI starts one with a progress line per change and --follow to the end; a second start while it runs is refused naming it', async () => {
    const workspace = cliWorkspace('backfill-cli');
    stops.push(async () => workspace.remove());
    const input = configInput();
    const config: Config = parseConfig(input);
    stops.push(() => dropAuditSchema(config));
    const worker = await startWorker(config);
    stops.push(() => worker.stop());
    const configFile = workspace.writeConfig(input);

    const follow = workspace.spawn(['--config', configFile, 'backfill', '--from', '2009', '--to', '2010', '--county', 'Nairobi', '--by', 'erin', '--follow']);
    await waitFor('the start line', async () => (/^started backfill-/m.test(follow.stdout) || follow.child.exitCode !== null ? true : undefined));
    // Held while the second start is tried: two chunks of 4 s could otherwise be done before a slow CLI starts (pausing
    // during the last chunk would not hold it: a pause stops the next chunk, not the current one).
    const first = /^started (backfill-\S+):/m.exec(follow.stdout)![1]!;
    await actOnBackfill(worker.client, first, 'pause', { by: 'erin' });
    const refused = await workspace.run(['--config', configFile, 'backfill', '--from', '2010', '--by', 'dana']);
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(refused.stderr, new RegExp(`a backfill is already running on ${prefix}etl: backfill-${prefix}etl \\(2009–2010, \\d of 2 chunk\\(s\\) done, \\S+, started by erin\\)`));
    await actOnBackfill(worker.client, first, 'resume', { by: 'erin' });
    const code = await new Promise((resolve) => follow.child.on('exit', resolve));
    assert.equal(code, 0, `${follow.stdout}\n${follow.stderr}`);
    assert.match(follow.stdout, /^started backfill-\S+: 2009–2010, 2 chunk\(s\) \(Nairobi\), delay 100 ms per record$/m);
    assert.match(follow.stdout, /^\d+% 0\/2 chunks, \d+ of ≈80 records, [\d.]+\/s, ETA \d+ s, Nairobi 2009 record \d+$/m);
    assert.match(follow.stdout, /done: Done: 2 of 2 chunk\(s\), 80 record\(s\) written\.$/m);
    const status = await workspace.run(['--config', configFile, 'backfill', 'status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^ {2}chunks {3}2 of 2 done$/m);
  });
});
