/**
 * The audit-app's ETL job (the runbook's §3 "ETL Job Failures"), run by this machine's `node` in the
 * `runbooks-audit-app-etl` image (bundled with contract.ts; `pg` comes from node_modules). contract.ts says what
 * each command does, the log lines, the exit codes and the JSON it prints; in short:
 *
 *   node /app/etl.js daemon                 PID 1 of the container (no init): logs that it is ready, idles until SIGTERM
 *   node /app/etl.js run [--county C]… [--year Y] [--from N] [--delay-ms D] [--records R] [--stop-when-stdin-closes]
 *   node /app/etl.js status | fault <name> [--min-delay-ms M] [--after N] | fault clear | clean-downloads
 *
 * The "source" is simulated here: each record is a page (a few KB of HTML) written to the downloads dir, parsed back,
 * upserted into `documents` and deleted. The faults (faults.json in the state dir) change what the source does:
 * answer 429, serve a page without the table the parser looks for, serve a page the parser crashes on; disk-full
 * fills the downloads dir (a small tmpfs in the container) so the next download fails with a real ENOSPC.
 *
 * Every log line goes to stdout and, in a process other than PID 1, to PID 1's stdout too (/proc/1/fd/1), which is
 * what `docker logs` shows: runs started by `docker exec` are in the container's log.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import {
  DEFAULT_ETL_CRASH_AFTER,
  DEFAULT_ETL_DELAY_MS,
  DEFAULT_ETL_MIN_DELAY_MS,
  DEFAULT_ETL_RECORDS,
  ETL_APPLICATION_NAME,
  ETL_COUNTIES,
  ETL_FAULTS,
  ETL_SOURCE_SELECTOR,
  EtlEnv,
  EtlExitCodes,
  EtlMetrics,
  EtlPaths,
  etlReportType,
  type EtlFaultState,
  type EtlRun,
  type EtlStatus,
} from './contract';

const DOWNLOADS_DIR = process.env[EtlEnv.downloadsDir] || EtlPaths.downloadsDir;
const STATE_DIR = process.env[EtlEnv.stateDir] || EtlPaths.stateDir;
const DATABASE_URL = process.env[EtlEnv.databaseUrl] || 'postgres://postgres@127.0.0.1:5432/audit_app';
const PUSHGATEWAY_URL = process.env[EtlEnv.pushgatewayUrl] || undefined;
const FAULTS_FILE = path.join(STATE_DIR, 'faults.json');
const STATE_FILE = path.join(STATE_DIR, 'state.json');
const LOCK_FILE = path.join(STATE_DIR, '.lock');
/** disk-full refuses to fill a downloads dir larger than this: it is meant for the container's small tmpfs. */
const MAX_FILLABLE_BYTES = 64 * 1024 * 1024;

// ---- logging ----------------------------------------------------------------------------------------------------

type Level = 'INFO' | 'WARN' | 'ERROR' | 'FATAL';

/** Writes all of `text` to `fd`, waiting out EAGAIN on a non-blocking pipe. */
function writeAll(fd: number, text: string): void {
  const buffer = Buffer.from(text);
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += fs.writeSync(fd, buffer, offset);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

/**
 * PID 1's stdout when PID 1 is this program's daemon (in the container) and we are not it: where `docker logs`
 * reads. Never anyone else's PID 1 (run outside the container, /proc/1 is the host's init).
 */
const containerLog: number | undefined = (() => {
  if (process.pid === 1) return undefined;
  try {
    const init = fs.readFileSync('/proc/1/cmdline', 'utf8').split('\0');
    if (!init.some((arg) => arg.endsWith('etl.js')) || !init.includes('daemon')) return undefined;
    return fs.openSync('/proc/1/fd/1', 'a');
  } catch {
    return undefined;
  }
})();

function logLine(level: Level, message: string): string {
  return `${new Date().toISOString()} ${level} ${message}\n`;
}

/** One log line on stdout and in the container's log. */
function log(level: Level, message: string): void {
  const line = logLine(level, message);
  try {
    writeAll(1, line);
  } catch {
    /* stdout gone (the exec's client left): the container's log still gets it */
  }
  if (process.pid !== 1) logToContainer(line);
}

/** The line in the container's log only (for commands whose stdout is their JSON). */
function logToContainer(line: string): void {
  if (containerLog === undefined) {
    if (process.pid === 1) writeAll(1, line);
    return;
  }
  try {
    writeAll(containerLog, line);
  } catch {
    /* PID 1 gone: the container is stopping */
  }
}

const kv = (pairs: Record<string, string | number>) =>
  Object.entries(pairs)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');

// ---- state: faults.json and state.json, under one lock ----------------------------------------------------------

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs `fn` holding the state dir's lock (an O_EXCL file; one older than 10 s is stale). */
function locked<T>(fn: () => T): T {
  fs.mkdirSync(STATE_DIR, { recursive: true });
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      fs.closeSync(fs.openSync(LOCK_FILE, 'wx'));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - fs.statSync(LOCK_FILE).mtimeMs > 10_000 || Date.now() > deadline) fs.rmSync(LOCK_FILE, { force: true });
      } catch {
        /* gone meanwhile */
      }
      sleepSync(10);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(LOCK_FILE, { force: true });
  }
}

function readJson<T>(file: string, fallback: T): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return fallback;
  }
}

function writeJson(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

const NO_FAULTS: EtlFaultState = { rateLimited: null, sourceChanged: false, diskFull: null, crash: null };

/** The faults now; a disk-full whose filler file is gone is over. */
function readFaults(): EtlFaultState {
  const faults = { ...NO_FAULTS, ...readJson<Partial<EtlFaultState>>(FAULTS_FILE, {}) };
  if (faults.diskFull && !fs.existsSync(faults.diskFull.file)) faults.diskFull = null;
  return faults;
}

function updateFaults(change: (faults: EtlFaultState) => void): EtlFaultState {
  return locked(() => {
    const faults = readFaults();
    change(faults);
    writeJson(FAULTS_FILE, faults);
    return faults;
  });
}

type RunningRun = EtlStatus['running'][number] & { procStart: string };

interface State {
  lastRun: EtlRun | null;
  lastSuccess: EtlRun | null;
  running: Record<string, RunningRun>;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks): tells a live run from a reused PID. */
function processStart(pid: number | 'self'): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function finishRun(state: State, run: EtlRun): void {
  delete state.running[run.id];
  if (!state.lastRun || state.lastRun.finishedAt <= run.finishedAt) state.lastRun = run;
  if (run.ok && (!state.lastSuccess || state.lastSuccess.finishedAt <= run.finishedAt)) state.lastSuccess = run;
}

/** state.json, with runs whose process died without finishing (SIGKILL, docker restart) recorded as killed. */
function readState(): State {
  const state: State = { lastRun: null, lastSuccess: null, running: {}, ...readJson<Partial<State>>(STATE_FILE, {}) };
  for (const entry of Object.values(state.running)) {
    if (processStart(entry.pid) === entry.procStart) continue;
    const { pid, id, startedAt, counties, year, from, records, delayMs, written } = entry;
    finishRun(state, {
      id,
      startedAt,
      finishedAt: new Date().toISOString(),
      ok: false,
      counties,
      year,
      from,
      records,
      delayMs,
      written,
      exitCode: null,
      error: `killed: its process (pid ${pid}) ended without finishing`,
    });
  }
  return state;
}

function updateState(change: (state: State) => void): State {
  return locked(() => {
    const state = readState();
    change(state);
    writeJson(STATE_FILE, state);
    return state;
  });
}

// ---- the source -------------------------------------------------------------------------------------------------

/** A failure the run reports with one line and its own exit code. */
class RunFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly level: Level = 'ERROR',
  ) {
    super(message);
  }
}

function digest(...parts: Array<string | number>): Buffer {
  return createHash('sha256').update(parts.join('|')).digest();
}

const OPINIONS = ['unqualified', 'qualified', 'adverse', 'disclaimer'] as const;
const AUDITORS = ['A. Wanjiku', 'B. Otieno', 'C. Mwangi', 'D. Achieng', 'E. Kiptoo'] as const;

/** The record's fields, deterministic from (county, year, record). */
function recordFields(county: string, year: number, record: number) {
  const d = digest(county, year, record);
  const amount = (d.readUInt32BE(0) % 900_000_000) / 100 + 1_000_000;
  return {
    title: `Report ${record} of the Auditor-General on ${county} County, FY ${year}/${year + 1}`,
    amount: Math.round(amount * 100) / 100,
    currency: 'KES',
    opinion: OPINIONS[d[4]! % OPINIONS.length]!,
    auditor: AUDITORS[d[5]! % AUDITORS.length]!,
    pages: 20 + (d[6]! % 180),
  };
}

function sourceUrl(county: string, year: number, record: number): string {
  return `https://reports.oag.example/counties/${county.toLowerCase()}/${year}/${etlReportType(record)}.html`;
}

/**
 * The source's page for a record: a few KB of HTML. `changed`: the site's new layout (no ETL_SOURCE_SELECTOR);
 * `broken`: the table is there but a row the parser relies on is not.
 */
function sourcePage(county: string, year: number, record: number, variant: 'ok' | 'changed' | 'broken'): string {
  const f = recordFields(county, year, record);
  const d = digest('items', county, year, record);
  const items = Array.from({ length: 24 }, (_, n) => {
    const value = (d.readUInt16BE(n % 30) * (n + 7)) / 10;
    return `  <li class="item"><span class="vote">Vote ${String(n + 1).padStart(2, '0')}</span> <span class="desc">Expenditure line ${n + 1} of ${county} County</span> <span class="kes">${value.toFixed(2)}</span></li>`;
  });
  const rows = [
    variant === 'broken' ? '' : `  <tr data-field="title"><th>Title</th><td>${f.title}</td></tr>`,
    `  <tr data-field="amount"><th>Amount audited (${f.currency})</th><td>${f.amount.toFixed(2)}</td></tr>`,
    `  <tr data-field="opinion"><th>Opinion</th><td>${f.opinion}</td></tr>`,
    `  <tr data-field="auditor"><th>Auditor</th><td>${f.auditor}</td></tr>`,
    `  <tr data-field="pages"><th>Pages</th><td>${f.pages}</td></tr>`,
  ].filter(Boolean);
  const table =
    variant === 'changed'
      ? `<div class="report-card" data-v="2">\n${rows.map((r) => r.replace(/<\/?tr/g, (t) => t.replace('tr', 'div'))).join('\n')}\n</div>`
      : `<table class="audit-reports">\n${rows.join('\n')}\n</table>`;
  return [
    '<!doctype html>',
    `<html lang="en"><head><meta charset="utf-8"><title>${f.title}</title></head>`,
    '<body>',
    `<h1>Office of the Auditor-General — ${county} County — FY ${year}/${year + 1}</h1>`,
    table,
    '<ul class="line-items">',
    ...items,
    '</ul>',
    `<footer>Source: ${sourceUrl(county, year, record)}</footer>`,
    '</body></html>',
    '',
  ].join('\n');
}

/** The value of a `<tr data-field="name">` row. */
function cell(html: string, name: string): string {
  const match = new RegExp(`<tr data-field="${name}"><th>[^<]*</th><td>([^<]*)</td></tr>`).exec(html);
  // No defensive check: the row is always there… until the source serves a page without it (the crash fault).
  return (match as RegExpExecArray)[1] as string;
}

/** Parses a downloaded page into the record's payload. */
function parsePage(html: string) {
  const [tag, cls] = ETL_SOURCE_SELECTOR.split('.') as [string, string];
  if (!html.includes(`<${tag} class="${cls}">`)) return undefined;
  const title = cell(html, 'title');
  return {
    title: title.trim(),
    amount: Number(cell(html, 'amount')),
    currency: 'KES',
    opinion: cell(html, 'opinion'),
    auditor: cell(html, 'auditor'),
    pages: Number(cell(html, 'pages')),
  };
}

// ---- run --------------------------------------------------------------------------------------------------------

class UsageError extends Error {}

interface RunOptions {
  counties: string[];
  year: number;
  from: number;
  delayMs: number;
  records: number;
  stopWhenStdinCloses: boolean;
}

function intOption(name: string, raw: string | undefined, min: number, max: number): number {
  if (raw === undefined || !/^\d+$/.test(raw)) throw new UsageError(`${name} needs a whole number`);
  const value = Number(raw);
  if (value < min || value > max) throw new UsageError(`${name} ${raw}: between ${min} and ${max}`);
  return value;
}

function parseRunOptions(args: string[]): RunOptions {
  const options: RunOptions = {
    counties: [],
    year: new Date().getUTCFullYear(),
    from: 1,
    delayMs: DEFAULT_ETL_DELAY_MS,
    records: DEFAULT_ETL_RECORDS,
    stopWhenStdinCloses: false,
  };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => inline ?? args[++i];
    switch (flag) {
      case '--county': {
        const raw = value();
        const county = ETL_COUNTIES.find((c) => c.toLowerCase() === raw?.toLowerCase());
        if (!county) throw new UsageError(`--county ${raw ?? ''}: the source has ${ETL_COUNTIES.join(', ')}`);
        if (!options.counties.includes(county)) options.counties.push(county);
        break;
      }
      case '--year':
        options.year = intOption('--year', value(), 1900, 2200);
        break;
      case '--from':
        options.from = intOption('--from', value(), 1, 999);
        break;
      case '--delay-ms':
        options.delayMs = intOption('--delay-ms', value(), 0, 600_000);
        break;
      case '--records':
        options.records = intOption('--records', value(), 1, 999);
        break;
      case '--stop-when-stdin-closes':
        options.stopWhenStdinCloses = true;
        break;
      default:
        throw new UsageError(`unknown option ${args[i]}`);
    }
  }
  if (options.counties.length === 0) options.counties = [...ETL_COUNTIES];
  if (options.from > options.records) throw new UsageError(`--from ${options.from} is past --records ${options.records}`);
  return options;
}

async function run(args: string[]): Promise<number> {
  const options = parseRunOptions(args);
  fs.mkdirSync(DOWNLOADS_DIR, { recursive: true });
  const started = Date.now();
  const base = {
    id: `${new Date(started).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`,
    startedAt: new Date(started).toISOString(),
    counties: options.counties,
    year: options.year,
    from: options.from,
    records: options.records,
    delayMs: options.delayMs,
  };
  let written = 0;
  let lastRecord = 0;
  updateState((state) => {
    state.running[base.id] = { ...base, written, pid: process.pid, procStart: processStart('self') ?? '' };
  });
  const finish = async (exitCode: number, error?: string) => {
    const { id, startedAt, ...rest } = base;
    const record: EtlRun = { id, startedAt, finishedAt: new Date().toISOString(), ok: exitCode === 0, ...rest, written, exitCode, ...(error ? { error } : {}) };
    let ended: Pick<State, 'lastRun' | 'lastSuccess'> = { lastRun: record, lastSuccess: null };
    updateState((state) => {
      finishRun(state, record);
      ended = { lastRun: state.lastRun, lastSuccess: state.lastSuccess };
    });
    if (PUSHGATEWAY_URL) await pushRunTimes(PUSHGATEWAY_URL, ended);
    return exitCode;
  };

  // Stopping when stdin ends: the exec's client (a worker) holds it open while it lives.
  let stopRequested = false;
  let wake: (() => void) | undefined;
  if (options.stopWhenStdinCloses) {
    const stop = () => {
      stopRequested = true;
      wake?.();
    };
    process.stdin.on('end', stop).on('close', stop).on('error', stop);
    process.stdin.resume();
  }
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopRequested || ms === 0) return resolve();
      const done = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wake = done;
    });

  log('INFO', `run started ${kv({ run: base.id, counties: options.counties.length, year: options.year, from: options.from, delay_ms: options.delayMs })}`);
  const db = new Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5_000, application_name: ETL_APPLICATION_NAME });
  db.on('error', () => {});
  try {
    try {
      await db.connect();
    } catch (err) {
      throw new RunFailure(`run failed: cannot connect to the database: ${(err as Error).message}`, EtlExitCodes.failed);
    }
    let processed = 0;
    for (const [index, county] of options.counties.entries()) {
      for (let record = index === 0 ? options.from : 1; record <= options.records; record++) {
        if (stopRequested) break;
        processed++;
        const where = kv({ county, year: options.year, record });
        const faults = readFaults();

        // Download.
        if (faults.rateLimited && processed >= 3 && options.delayMs < faults.rateLimited.minDelayMs) {
          throw new RunFailure(
            `rate limited by source: HTTP 429 Too Many Requests (delay_ms=${options.delayMs} is under the source's ${faults.rateLimited.minDelayMs} ms) ${where}`,
            EtlExitCodes.rateLimited,
          );
        }
        const crashNow = faults.crash !== null && written >= faults.crash.after;
        if (crashNow) updateFaults((f) => (f.crash = null)); // one-shot: it fires once
        const variant = faults.sourceChanged ? 'changed' : crashNow ? 'broken' : 'ok';
        const file = path.join(DOWNLOADS_DIR, `${county}-${options.year}-${record}.html`);
        try {
          fs.writeFileSync(file, sourcePage(county, options.year, record, variant));
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          if (e.code !== 'ENOSPC') throw err;
          fs.rmSync(file, { force: true });
          throw new RunFailure(`disk full: ${e.message.includes(file) ? e.message : `${e.message} '${file}'`}`, EtlExitCodes.diskFull);
        }

        // Parse, load, clean up.
        let payload: ReturnType<typeof parsePage>;
        try {
          payload = parsePage(fs.readFileSync(file, 'utf8'));
        } finally {
          fs.rmSync(file, { force: true });
        }
        if (!payload) throw new RunFailure(`source format changed: selector "${ETL_SOURCE_SELECTOR}" matched nothing ${where}`, EtlExitCodes.sourceChanged);
        try {
          await db.query(
            `INSERT INTO documents (county, year, report_type, payload) VALUES ($1, $2, $3, $4)
             ON CONFLICT ON CONSTRAINT documents_natural_key DO UPDATE SET payload = EXCLUDED.payload, updated_at = now()`,
            [county, options.year, etlReportType(record), { ...payload, source: sourceUrl(county, options.year, record), retrieved_at: new Date().toISOString() }],
          );
        } catch (err) {
          throw new RunFailure(`run failed: the upsert of ${where} failed: ${(err as Error).message}`, EtlExitCodes.failed);
        }
        written++;
        lastRecord = record;
        updateState((state) => {
          const running = state.running[base.id];
          if (running) running.written = written;
        });
        log('INFO', `wrote record ${kv({ county, year: options.year, record, of: options.records })}`);
        await pause(options.delayMs);
      }
      if (stopRequested) break;
    }
    if (stopRequested) {
      const message = `stdin closed: stopping after record=${lastRecord}`;
      log('WARN', message);
      return finish(EtlExitCodes.stopped, message);
    }
    log('INFO', `run finished ${kv({ run: base.id, written, seconds: ((Date.now() - started) / 1000).toFixed(1) })}`);
    return finish(EtlExitCodes.ok);
  } catch (err) {
    if (err instanceof RunFailure) {
      log(err.level, err.message);
      return finish(err.exitCode, err.message);
    }
    // Anything else is a bug in the pipeline: it crashes.
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    const message = `crashed: ${reason} after record=${lastRecord}`;
    log('FATAL', message);
    return finish(EtlExitCodes.crashed, message);
  } finally {
    await db.end().catch(() => {});
  }
}

const unixSeconds = (run: EtlRun | null) => (run ? Date.parse(run.finishedAt) / 1000 : 0);

/**
 * The latest run's and latest success's end times to the Pushgateway (EtlMetrics), replacing the group. A failed push
 * is logged and does not fail the run: the data is loaded either way, and the next run pushes again.
 */
async function pushRunTimes(pushgatewayUrl: string, { lastRun, lastSuccess }: Pick<State, 'lastRun' | 'lastSuccess'>): Promise<void> {
  const body = [
    `# TYPE ${EtlMetrics.lastRun} gauge`,
    `${EtlMetrics.lastRun} ${unixSeconds(lastRun)}`,
    `# TYPE ${EtlMetrics.lastSuccess} gauge`,
    `${EtlMetrics.lastSuccess} ${unixSeconds(lastSuccess)}`,
    '',
  ].join('\n');
  const url = `${pushgatewayUrl.replace(/\/+$/, '')}/metrics/job/${EtlMetrics.job}`;
  try {
    const response = await fetch(url, { method: 'PUT', body, headers: { 'content-type': 'text/plain; version=0.0.4' }, signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new Error(`HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
  } catch (err) {
    log('WARN', `could not push the run's times to ${url}: ${(err as Error).message}`);
  }
}

// ---- status, faults, clean-downloads ---------------------------------------------------------------------------

function downloads(): EtlStatus['downloads'] {
  fs.mkdirSync(DOWNLOADS_DIR, { recursive: true });
  const stat = fs.statfsSync(DOWNLOADS_DIR);
  return { dir: DOWNLOADS_DIR, freeBytes: stat.bavail * stat.bsize, totalBytes: stat.blocks * stat.bsize, files: fs.readdirSync(DOWNLOADS_DIR).length };
}

function status(): EtlStatus {
  const state = updateState(() => {});
  const running = Object.values(state.running).map(({ procStart: _procStart, ...run }) => run);
  return { lastRun: state.lastRun, lastSuccess: state.lastSuccess, running, downloads: downloads(), faults: readFaults() };
}

/** Writes a filler file into the downloads dir until the filesystem has no block left. */
function fillDownloads(): { file: string; bytes: number } {
  const before = downloads();
  if (before.totalBytes > MAX_FILLABLE_BYTES) {
    throw new Error(`${DOWNLOADS_DIR} is not a small tmpfs (${before.totalBytes} bytes): refusing to fill it`);
  }
  const file = path.join(DOWNLOADS_DIR, `leftover-${Date.now()}.part`);
  const fd = fs.openSync(file, 'a');
  let bytes = 0;
  try {
    for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 9, 1]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          bytes += fs.writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return { file, bytes };
}

function fault(args: string[]): EtlFaultState {
  const [name, ...rest] = args;
  const option = (flag: string, fallback: number, min: number, max: number): number => {
    let value = fallback;
    for (let i = 0; i < rest.length; i++) {
      const [key, inline] = rest[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
      if (key === flag) value = intOption(flag, inline ?? rest[++i], min, max);
      else throw new UsageError(`fault ${name}: unknown option ${rest[i]}`);
    }
    return value;
  };
  switch (name) {
    case 'clear':
      option('', 0, 0, 0);
      return updateFaults((f) => {
        if (f.diskFull) fs.rmSync(f.diskFull.file, { force: true });
        Object.assign(f, NO_FAULTS);
      });
    case 'rate-limited': {
      const minDelayMs = option('--min-delay-ms', DEFAULT_ETL_MIN_DELAY_MS, 1, 600_000);
      return updateFaults((f) => (f.rateLimited = { minDelayMs }));
    }
    case 'source-changed':
      option('', 0, 0, 0);
      return updateFaults((f) => (f.sourceChanged = true));
    case 'disk-full': {
      option('', 0, 0, 0);
      const filled = fillDownloads();
      return updateFaults((f) => (f.diskFull = filled));
    }
    case 'crash': {
      const after = option('--after', DEFAULT_ETL_CRASH_AFTER, 0, 999);
      return updateFaults((f) => (f.crash = { after }));
    }
    default:
      throw new UsageError(`fault ${name ?? ''}: one of ${ETL_FAULTS.join(', ')}, or clear`);
  }
}

function cleanDownloads(): { removed: number; freedBytes: number } {
  fs.mkdirSync(DOWNLOADS_DIR, { recursive: true });
  let removed = 0;
  let freedBytes = 0;
  const count = (target: string) => {
    const stat = fs.lstatSync(target);
    if (stat.isDirectory()) for (const entry of fs.readdirSync(target)) count(path.join(target, entry));
    else {
      removed++;
      freedBytes += stat.size;
    }
  };
  for (const entry of fs.readdirSync(DOWNLOADS_DIR)) {
    const target = path.join(DOWNLOADS_DIR, entry);
    count(target);
    fs.rmSync(target, { recursive: true, force: true });
  }
  updateFaults(() => {}); // a disk-full whose file is gone is over
  logToContainer(logLine('INFO', `cleaned downloads ${kv({ dir: DOWNLOADS_DIR, removed, freed_bytes: freedBytes })}`));
  return { removed, freedBytes };
}

// ---- daemon -----------------------------------------------------------------------------------------------------

function daemon(): Promise<number> {
  return new Promise((resolve) => {
    // PID 1 without an init: the kernel ignores signals it has no handler for, so SIGTERM needs one.
    const stop = (signal: NodeJS.Signals) => {
      log('INFO', `etl daemon stopping ${kv({ signal })}`);
      clearInterval(idle);
      resolve(0);
    };
    const idle = setInterval(() => {}, 1 << 30);
    process.once('SIGTERM', stop).once('SIGINT', stop);
    log('INFO', `etl daemon ready ${kv({ pid: process.pid, downloads: DOWNLOADS_DIR, state: STATE_DIR })}`);
  });
}

// ---- main -------------------------------------------------------------------------------------------------------

const USAGE = `usage: etl.js run [--county C]… [--year Y] [--from N] [--delay-ms D] [--records R] [--stop-when-stdin-closes]
       etl.js status | fault <${ETL_FAULTS.join('|')}|clear> [--min-delay-ms M] [--after N] | clean-downloads | daemon`;

const printJson = (value: unknown) => writeAll(1, `${JSON.stringify(value, null, 2)}\n`);

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'run':
        return await run(args);
      case 'status':
        if (args.length) throw new UsageError(`status takes no arguments`);
        printJson(status());
        return EtlExitCodes.ok;
      case 'fault':
        printJson(fault(args));
        return EtlExitCodes.ok;
      case 'clean-downloads':
        if (args.length) throw new UsageError(`clean-downloads takes no arguments`);
        printJson(cleanDownloads());
        return EtlExitCodes.ok;
      case 'daemon':
        return await daemon();
      default:
        throw new UsageError(command ? `unknown command ${command}` : 'a command is needed');
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`etl: ${err.message}\n${USAGE}\n`);
      return EtlExitCodes.usage;
    }
    process.stderr.write(`etl: ${err instanceof Error ? err.message : String(err)}\n`);
    return EtlExitCodes.failed;
  }
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
