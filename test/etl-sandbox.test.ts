// The audit-app's ETL container for real: `node /app/etl.js daemon` is PID 1 of <prefix>etl, the pipeline runs by
// `docker exec` (as a runbook or a backfill worker runs it), writes `documents` in the sandbox's PostgreSQL, and its
// log lines reach `docker logs`. Each fault is broken for real and seen the way an operator sees it: exit code,
// the ERROR line in the container's log, `etl.js status`, the rows of `documents`.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import { demultiplex, execInContainer } from '../src/activities/docker';
import { targetConfig } from '../src/activities/targets';
import { parseConfig } from '../src/config/load';
import {
  DEFAULT_ETL_RECORDS,
  ETL_IMAGE,
  EtlExitCodes,
  EtlLogPatterns,
  EtlPaths,
  auditAppTargets,
  breakAuditApp,
  removeAuditApp,
  startAuditApp,
  type AuditApp,
  type EtlFaultState,
  type EtlStatus,
} from '../src/sandbox/auditApp';
import { TEST_LABEL } from './harness/dockerd';
import { freePorts } from './harness/util';
import { testDocker } from './support/sandbox';

const YEAR = new Date().getUTCFullYear();

describe('the audit-app ETL container, for real', () => {
  let docker: Docker;
  let app: AuditApp;
  let pg: PgClient;
  const prefix = `etl-${randomBytes(3).toString('hex')}-`;

  const etl = (...args: string[]) => execInContainer(docker, app.containers.etl, [...EtlPaths.argv, ...args]);
  const etlJson = async <T>(...args: string[]): Promise<T> => {
    const { exitCode, output } = await etl(...args);
    assert.equal(exitCode, 0, output);
    return JSON.parse(output) as T;
  };
  const status = () => etlJson<EtlStatus>('status');
  /** Every line of `docker logs <prefix>etl`. */
  const logLines = async () => {
    const raw = await docker.getContainer(app.containers.etl).logs({ stdout: true, stderr: true, follow: false });
    return demultiplex(raw).toString('utf8').split('\n').filter(Boolean);
  };
  const rows = async (county: string, year: number) =>
    (
      await pg.query<{ report_type: string; updated_at: Date; payload: Record<string, unknown> }>(
        "SELECT report_type, updated_at, payload FROM documents WHERE county = $1 AND year = $2 AND report_type LIKE 'report-%' ORDER BY report_type",
        [county, year],
      )
    ).rows;
  const reportTypes = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `report-${String(from + i).padStart(3, '0')}`);

  before(async () => {
    docker = testDocker();
    const [backend, admin, postgres, redis] = await freePorts(4);
    app = await startAuditApp(docker, {
      prefix,
      ports: { backend: backend!, admin: admin!, postgres: postgres!, redis: redis! },
      labels: { [TEST_LABEL]: 'true' },
    });
    pg = new PgClient({ connectionString: app.urls.database, application_name: 'etl-sandbox-test' });
    pg.on('error', () => {});
    await pg.connect();
  });

  after(async () => {
    await pg?.end().catch(() => {});
    await removeAuditApp(docker, prefix);
  });

  test('the container: PID 1 is `node /app/etl.js daemon` as app (no init), ready in its log, downloads on a small tmpfs; the config takes the target', async () => {
    const info = await docker.getContainer(app.containers.etl).inspect();
    assert.equal(info.Config.Image, ETL_IMAGE);
    assert.equal(info.HostConfig.Init, false);
    assert.equal(info.HostConfig.NetworkMode, 'host');
    assert.ok(info.Config.Env.includes(`DATABASE_URL=${app.urls.database}`) && info.Config.Env.includes(`ETL_DOWNLOADS_DIR=${EtlPaths.downloadsDir}`));
    const pid1 = await execInContainer(docker, app.containers.etl, ['sh', '-c', 'id -u; tr "\\0" " " </proc/1/cmdline | sed "s/ $//"; echo; stat -c %u /tmp/etl_downloads']);
    assert.deepEqual(pid1.output.trim().split('\n'), ['10001', '/usr/bin/node /app/etl.js daemon', '10001']);
    assert.ok((await logLines()).some((l) => EtlLogPatterns.daemonReady.test(l) && EtlLogPatterns.line.test(l)));

    const config = parseConfig(auditAppTargets(app));
    assert.deepEqual(targetConfig(config, 'etl'), { container: app.containers.etl, downloadsDir: '/tmp/etl_downloads', program: ['node', '/app/etl.js'], healthyWithin: 30_000 });
  });

  test('a run writes R records of a county-year exactly once; a second run updates the same rows (updated_at advances); docker logs shows the lines of a run started by docker exec', async () => {
    const first = await etl('run', '--county', 'Nairobi', '--year', '2019', '--records', '12', '--delay-ms', '5');
    assert.equal(first.exitCode, 0, first.output);
    const runId = EtlLogPatterns.runStarted.exec(first.output)?.[1];
    assert.ok(runId, first.output);
    assert.match(first.output, new RegExp(`INFO run started run=${runId} counties=1 year=2019 from=1 delay_ms=5`));
    assert.match(first.output, new RegExp(`INFO run finished run=${runId} written=12 seconds=[\\d.]+`));
    const written = await rows('Nairobi', 2019);
    assert.deepEqual(written.map((r) => r.report_type), reportTypes(1, 12));
    const lastWrite = Math.max(...written.map((r) => r.updated_at.getTime()));

    const second = await etl('run', '--county', 'nairobi', '--year', '2019', '--records', '12', '--delay-ms', '5');
    assert.equal(second.exitCode, 0, second.output);
    const rewritten = await rows('Nairobi', 2019);
    assert.deepEqual(rewritten.map((r) => r.report_type), reportTypes(1, 12), 'no row twice');
    assert.ok(Math.min(...rewritten.map((r) => r.updated_at.getTime())) > lastWrite, 'every row was written again');
    // The payload is the record's (the same title), fetched again (a new retrieved_at).
    assert.equal(rewritten[6]!.payload.title, written[6]!.payload.title);
    assert.match(String(rewritten[6]!.payload.title), /^Report 7 of the Auditor-General on Nairobi County, FY 2019\/2020$/);
    assert.notEqual(rewritten[6]!.payload.retrieved_at, written[6]!.payload.retrieved_at);
    const maxUpdated = await pg.query<{ max: Date }>('SELECT MAX(updated_at) AS max FROM documents');
    assert.ok(maxUpdated.rows[0]!.max.getTime() >= Math.max(...rewritten.map((r) => r.updated_at.getTime())));

    // The exec's own output went to its caller; the same lines are in the container's log.
    const logs = await logLines();
    const wrote = logs.filter((l) => /INFO wrote record county=Nairobi year=2019 record=\d+ of=12$/.test(l));
    assert.equal(wrote.length, 24, logs.slice(-30).join('\n'));
    for (const line of first.output.trim().split('\n')) assert.ok(logs.includes(line), `not in docker logs: ${line}`);
    assert.ok(logs.every((l) => EtlLogPatterns.line.test(l)), 'every line is <time> <LEVEL> <message>');
  });

  test('--from N writes only records N..R (a resumed chunk skips what was written)', async () => {
    const run = await etl('run', '--county', 'Kisumu', '--year', '2018', '--records', '10', '--from', '7', '--delay-ms', '0');
    assert.equal(run.exitCode, 0, run.output);
    assert.deepEqual((await rows('Kisumu', 2018)).map((r) => r.report_type), reportTypes(7, 10));
    assert.deepEqual(
      [...run.output.matchAll(new RegExp(EtlLogPatterns.wroteRecord, 'g'))].map((m) => Number(m[3])),
      [7, 8, 9, 10],
    );
    assert.match(run.output, /INFO run finished run=\S+ written=4 /);
    const usage = await etl('run', '--county', 'Atlantis');
    assert.equal(usage.exitCode, EtlExitCodes.usage);
    assert.match(usage.output, /--county Atlantis: the source has Kisumu, Machakos, Mombasa, Nairobi, Nakuru, Turkana/);
  });

  /** A run by `docker exec` with stdin attached, held open; resolves once it wrote `records` records. */
  async function runHoldingStdin(args: string[], records: number) {
    const exec = await docker.getContainer(app.containers.etl).exec({
      Cmd: [...EtlPaths.argv, 'run', ...args, '--stop-when-stdin-closes'],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: true });
    const chunks: Buffer[] = [];
    const text = () => demultiplex(Buffer.concat(chunks)).toString('utf8');
    const ended = new Promise<void>((resolve) => stream.on('end', resolve).on('close', resolve).on('error', () => resolve()));
    await new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if ((text().match(/wrote record/g) ?? []).length >= records) resolve();
      });
    });
    return { exec, stream, text, ended };
  }

  test('--stop-when-stdin-closes: the run stops after its current record when the exec client closes stdin (exit 75), or goes away', async () => {
    const { exec, stream, text, ended } = await runHoldingStdin(['--county', 'Machakos', '--year', '2017', '--delay-ms', '100'], 3);
    const closed = Date.now();
    stream.end(); // half-close: the exec's stdin ends, as when the worker holding it dies
    await ended;
    const stoppedWithinMs = Date.now() - closed;
    const output = text();
    const { ExitCode } = await exec.inspect();
    assert.equal(ExitCode, EtlExitCodes.stopped, output);
    const stop = EtlLogPatterns.stopped.exec(output);
    assert.ok(stop, output);
    const last = Number(stop[1]);
    assert.ok(last >= 3 && last < DEFAULT_ETL_RECORDS, output);
    assert.ok(stoppedWithinMs < 2_000, `stopped ${stoppedWithinMs} ms after stdin closed`);
    assert.deepEqual((await rows('Machakos', 2017)).map((r) => r.report_type), reportTypes(1, last));
    assert.ok((await logLines()).some((l) => l.endsWith(`WARN stdin closed: stopping after record=${last}`)));
    const { lastRun } = await status();
    assert.deepEqual([lastRun?.ok, lastRun?.exitCode, lastRun?.written, lastRun?.counties], [false, EtlExitCodes.stopped, last, ['Machakos']]);

    // The client gone without a word (a worker killed): the connection drops, and the run stops all the same.
    const gone = await runHoldingStdin(['--county', 'Machakos', '--year', '2017', '--from', String(last + 1), '--delay-ms', '100'], 2);
    gone.stream.destroy();
    let inspected = await gone.exec.inspect();
    for (const deadline = Date.now() + 5_000; inspected.Running && Date.now() < deadline; inspected = await gone.exec.inspect()) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(inspected.Running, false);
    // The engine reports such an exec as failed (ExitCode 126: its attach broke); the run's own exit is in status.
    const resumed = (await status()).lastRun;
    assert.ok(resumed && resumed.exitCode === EtlExitCodes.stopped && resumed.from === last + 1 && resumed.written >= 2, JSON.stringify(resumed));
    assert.deepEqual((await rows('Machakos', 2017)).map((r) => r.report_type), reportTypes(1, last + resumed.written));
    assert.ok((await logLines()).some((l) => l.endsWith(`WARN stdin closed: stopping after record=${last + resumed.written}`)));
  });

  test('etl-rate-limited: runs under the minimum delay get HTTP 429 on their 3rd record (exit 3); a run with a long enough delay succeeds', async () => {
    const broken = await breakAuditApp(docker, app, 'etl-rate-limited', { ms: 60 });
    assert.match(broken.description, /rate limited by source: HTTP 429 Too Many Requests \(delay_ms=20 is under the source's 60 ms\) county=Nairobi/);
    const logs = await logLines();
    const line = logs.find((l) => EtlLogPatterns.rateLimited.test(l));
    assert.ok(line, logs.slice(-5).join('\n'));
    assert.deepEqual(EtlLogPatterns.rateLimited.exec(line)!.slice(1), ['20', '60', 'Nairobi', String(YEAR), '3']);
    const { lastRun, faults } = await status();
    assert.deepEqual([lastRun?.ok, lastRun?.exitCode, lastRun?.written], [false, EtlExitCodes.rateLimited, 2]);
    assert.deepEqual(faults.rateLimited, { minDelayMs: 60 });

    const again = await etl('run', '--county', 'Mombasa', '--year', '2016', '--records', '4', '--delay-ms', '5');
    assert.equal(again.exitCode, EtlExitCodes.rateLimited, again.output);
    const slower = await etl('run', '--county', 'Mombasa', '--year', '2016', '--records', '4', '--delay-ms', '60');
    assert.equal(slower.exitCode, 0, slower.output);
    assert.equal((await rows('Mombasa', 2016)).length, 4);
    assert.deepEqual(await etlJson<EtlFaultState>('fault', 'clear'), { rateLimited: null, sourceChanged: false, diskFull: null, crash: null });
  });

  test('etl-source-changed: every run fails on its first record (exit 4) until the fault is cleared', async () => {
    const broken = await breakAuditApp(docker, app, 'etl-source-changed');
    assert.match(broken.description, /source format changed: selector "table\.audit-reports" matched nothing county=Nairobi year=\d+ record=1/);
    assert.ok((await logLines()).some((l) => EtlLogPatterns.sourceChanged.test(l)));
    assert.deepEqual([(await status()).lastRun?.ok, (await status()).lastRun?.exitCode], [false, EtlExitCodes.sourceChanged]);
    const again = await etl('run', '--county', 'Nakuru', '--year', '2015', '--records', '3');
    assert.equal(again.exitCode, EtlExitCodes.sourceChanged, again.output);
    assert.match(again.output, /ERROR source format changed: selector "table\.audit-reports" matched nothing county=Nakuru year=2015 record=1$/m);
    assert.equal((await rows('Nakuru', 2015)).length, 0);
    await etlJson('fault', 'clear');
    assert.equal((await etl('run', '--county', 'Nakuru', '--year', '2015', '--records', '3', '--delay-ms', '0')).exitCode, 0);
  });

  test('etl-disk-full: a real ENOSPC (exit 5) until clean-downloads frees the space; then the next run succeeds', async () => {
    const broken = await breakAuditApp(docker, app, 'etl-disk-full');
    assert.match(broken.description, /disk full: ENOSPC: no space left on device, write '\/tmp\/etl_downloads\/Nairobi-\d+-1\.html'/);
    const full = await status();
    assert.deepEqual([full.lastRun?.ok, full.lastRun?.exitCode], [false, EtlExitCodes.diskFull]);
    assert.equal(full.downloads.freeBytes, 0);
    assert.equal(full.downloads.files, 1);
    assert.ok(full.faults.diskFull && full.faults.diskFull.bytes > 3_000_000, JSON.stringify(full.faults));
    assert.ok((await logLines()).some((l) => EtlLogPatterns.diskFull.test(l)));
    assert.equal((await etl('run', '--county', 'Turkana', '--year', '2014', '--records', '2')).exitCode, EtlExitCodes.diskFull);

    const cleaned = await etlJson<{ removed: number; freedBytes: number }>('clean-downloads');
    assert.equal(cleaned.removed, 1);
    assert.equal(cleaned.freedBytes, full.faults.diskFull.bytes);
    const freed = await status();
    assert.equal(freed.downloads.freeBytes, freed.downloads.totalBytes);
    assert.equal(freed.faults.diskFull, null);
    assert.ok((await logLines()).some((l) => /INFO cleaned downloads dir=\/tmp\/etl_downloads removed=1 freed_bytes=\d+$/.test(l)));
    const run = await etl('run', '--county', 'Turkana', '--year', '2014', '--records', '2', '--delay-ms', '0');
    assert.equal(run.exitCode, 0, run.output);
  });

  test('etl-crash: the next run crashes after N records (exit 70, FATAL in the log); the fault is one-shot', async () => {
    await pg.query("DELETE FROM documents WHERE county = 'Nairobi' AND year = $1 AND report_type LIKE 'report-%'", [YEAR]);
    const broken = await breakAuditApp(docker, app, 'etl-crash', { count: 4 });
    assert.match(broken.description, /crashed after writing 4 record\(s\) \(exit 70\), its log says "FATAL crashed: TypeError: .* after record=4"/);
    assert.deepEqual((await rows('Nairobi', YEAR)).map((r) => r.report_type), reportTypes(1, 4));
    const crashed = await status();
    assert.deepEqual([crashed.lastRun?.ok, crashed.lastRun?.exitCode, crashed.lastRun?.written, crashed.faults.crash], [false, EtlExitCodes.crashed, 4, null]);
    assert.ok((await logLines()).some((l) => EtlLogPatterns.crashed.test(l)));
    const next = await etl('run', '--county', 'Nairobi', '--records', '6', '--from', '5', '--delay-ms', '0');
    assert.equal(next.exitCode, 0, next.output);
    assert.deepEqual((await rows('Nairobi', YEAR)).map((r) => r.report_type), reportTypes(1, 6));
  });

  test('status shows the last success and the free space; both survive docker restart (SIGTERM ends the daemon at once)', async () => {
    const before = await status();
    assert.equal(before.lastSuccess?.ok, true);
    assert.equal(before.lastSuccess?.exitCode, 0);
    assert.deepEqual([before.lastSuccess?.counties, before.lastSuccess?.from, before.lastSuccess?.written], [['Nairobi'], 5, 2]);
    assert.ok(before.lastSuccess && before.lastSuccess.finishedAt >= before.lastSuccess.startedAt);
    assert.equal(before.downloads.dir, EtlPaths.downloadsDir);
    assert.ok(before.downloads.totalBytes >= 4 * 1024 * 1024 && before.downloads.totalBytes < 8 * 1024 * 1024, JSON.stringify(before.downloads));
    assert.equal(before.downloads.freeBytes, before.downloads.totalBytes);
    assert.equal(before.downloads.files, 0);
    assert.deepEqual(before.running, []);

    const started = Date.now();
    await docker.getContainer(app.containers.etl).restart({ t: 10 });
    assert.ok(Date.now() - started < 5_000, `docker restart took ${Date.now() - started} ms`);
    assert.ok((await logLines()).some((l) => /INFO etl daemon stopping signal=SIGTERM$/.test(l)));
    const after = await status();
    assert.deepEqual([after.lastRun?.id, after.lastSuccess?.id], [before.lastRun?.id, before.lastSuccess?.id]);
  });
});
