/**
 * Breaking the audit-app for real, the ways the runbook's incidents happen. Each fault returns once it is
 * observable (a container exited, a session shows in pg_stat_activity…), with one sentence saying what it did.
 *
 *   backend-stopped      docker stop <prefix>backend                            (§1 API Service Down)
 *   backend-crash        the backend exits non-zero (exit code 1 by default)   (§1)
 *   slow-route           a route answers N ms slower (/api/v1/documents, 1500)  (§4 High Response Times)
 *   leak-connections     the backend's pool connections checked out idle in transaction and never returned:
 *                        the pool is exhausted, requests wait and fail, /health 503  (§2 pool exhausted)
 *   db-stopped           docker stop <prefix>postgres: /health 503              (§2 database down)
 *   redis-stopped        docker stop <prefix>redis: rate limiting falls back to in-memory  (§6)
 *   idle-in-transaction  N sessions (3) of the backend idle in transaction      (§2 "Kill long-running queries")
 *   slow-query           a real `SELECT pg_sleep(N)` (600 s) running in audit_app (§2 slow queries, §4)
 *   db-corrupted         a good backup first (`pg_dump -Fc` to /backups/latest.dump, the file a restore reads by
 *                        default), then `DROP TABLE documents` and docker stop <prefix>postgres: restarted, the
 *                        database answers SELECT 1 but /health stays 503 until the dump is restored
 *                        (§2 "restore from backup if data corrupted")
 *   etl-rate-limited     `etl.js fault rate-limited` (runs under --ms, 200 ms between records, get HTTP 429 on their
 *                        3rd record), then one run for Nairobi this year, which fails so (§3 "Rate limited")
 *   etl-source-changed   `etl.js fault source-changed`, then a run that fails on its first record: the page has no
 *                        table.audit-reports any more (§3 "Source changed")
 *   etl-disk-full        `etl.js fault disk-full` fills the downloads tmpfs, then a run fails with ENOSPC (§3 "Disk full")
 *   etl-crash            `etl.js fault crash --after N` (5), then a run crashes after N records (exit 70); one-shot
 *   brute-force          N (30) failed logins from one client (`POST /api/v1/audit` {action: login-failed} with
 *                        X-Forwarded-For: --ip, 203.0.113.66 by default, as the backend's trusted proxy would send):
 *                        N rows of audit_log with that ip and N request lines of it in the backend's log (§7)
 * The etl-* faults stay set (except the one-shot crash) until `etl.js fault clear` (or, for disk-full, the downloads
 * dir is cleaned): each leaves its run's failure line in `docker logs <prefix>etl`.
 */
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import { execInContainer } from '../../activities/docker';
import {
  AdminRoutes,
  BRUTE_FORCE,
  DEFAULT_ETL_CRASH_AFTER,
  DEFAULT_ETL_MIN_DELAY_MS,
  EtlExitCodes,
  EtlLogPatterns,
  ApiRoutes,
  BACKEND_APPLICATION_NAME,
  DATABASE_NAME,
  LATEST_BACKUP_FILE,
  SLOW_QUERY_APPLICATION_NAME,
  type AuditAppFault,
  type BackendFaultState,
} from './contract';
import { containerLogTail, type AuditApp } from './stack';


export interface FaultOptions {
  /** slow-route: the route (default /api/v1/documents; "*" for every /api route). */
  route?: string;
  /** slow-route: added milliseconds (default 1500). etl-rate-limited: the source's minimum delay between records (default 200). */
  ms?: number;
  /** leak-connections: how many pool connections (default: the whole pool). etl-crash: records written before the crash (default 5). */
  count?: number;
  /** idle-in-transaction: how many sessions (default 3). */
  sessions?: number;
  /** slow-query: how long pg_sleep runs (default 600 s). */
  seconds?: number;
  /** backend-crash: the exit code (default 1). */
  exitCode?: number;
  /** brute-force: the client's address (default 203.0.113.66). */
  ip?: string;
}

export interface FaultResult {
  fault: AuditAppFault;
  /** One sentence: what was done and how it shows. */
  description: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** POSTs a fault knob on the backend's admin port; returns the backend's fault state after it. */
export async function postFaultKnob(app: AuditApp, route: string, body: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<BackendFaultState> {
  let response: Response;
  try {
    response = await fetch(`${app.urls.admin}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const why = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
    throw new Error(`the backend's admin port ${app.urls.admin} does not answer (${why}) — is ${app.containers.backend} running?`, { cause: err });
  }
  const answer = (await response.json().catch(() => ({}))) as BackendFaultState & { error?: string };
  if (!response.ok) throw new Error(`${route} answered HTTP ${response.status}: ${answer.error ?? 'no reason given'}`);
  return answer;
}

/** The backend's fault state (GET /faults on the admin port). */
export async function backendFaults(app: AuditApp): Promise<BackendFaultState> {
  const response = await fetch(`${app.urls.admin}${AdminRoutes.faults}`, { signal: AbortSignal.timeout(5_000) });
  return (await response.json()) as BackendFaultState;
}

/** Clears every fault knob of the backend (not stopped containers or running queries). */
export function resetBackendFaults(app: AuditApp): Promise<BackendFaultState> {
  return postFaultKnob(app, AdminRoutes.reset);
}

async function stopContainer(docker: Docker, name: string): Promise<void> {
  const container = docker.getContainer(name);
  await container.stop({ t: 10 }).catch((err: { statusCode?: number }) => {
    if (err.statusCode !== 304) throw err; // 304: already stopped
  });
}

async function waitForExit(docker: Docker, name: string, withinMs: number): Promise<number> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const info = await docker.getContainer(name).inspect();
    if (!info.State.Running) return info.State.ExitCode;
    if (Date.now() > deadline) throw new Error(`${name} is still running ${withinMs / 1000} s after the crash knob`);
    await sleep(100);
  }
}

/** Rows of pg_stat_activity in audit_app matching `where`, over a short-lived connection. */
export async function activityCount(app: AuditApp, where: string, params: unknown[] = []): Promise<number> {
  const client = new PgClient({ connectionString: app.urls.database, connectionTimeoutMillis: 5_000, application_name: 'runbooks-sandbox' });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND ${where}`, params);
    return rows[0]?.n ?? 0;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Starts a real `SELECT pg_sleep(seconds)` inside the postgres container (docker exec, detached), and waits until it runs. */
async function startSlowQuery(docker: Docker, app: AuditApp, seconds: number): Promise<void> {
  const exec = await docker.getContainer(app.containers.postgres).exec({
    Cmd: ['psql', '-X', '-q', '-d', 'audit_app', '-c', `SELECT pg_sleep(${seconds}) /* audit-app: slow report */`],
    Env: [`PGAPPNAME=${SLOW_QUERY_APPLICATION_NAME}`],
    AttachStdout: false,
    AttachStderr: false,
  });
  // Detached: the answer is an empty stream that must still be read and closed, or its socket stays open.
  const answer = (await exec.start({ Detach: true })) as NodeJS.ReadableStream & { destroy?: () => void };
  await new Promise<void>((resolve) => {
    answer.on('end', resolve).on('close', resolve).on('error', () => resolve());
    answer.resume();
  });
  answer.destroy?.();
  const deadline = Date.now() + 10_000;
  while ((await activityCount(app, "state = 'active' AND application_name = $1", [SLOW_QUERY_APPLICATION_NAME])) === 0) {
    if (Date.now() > deadline) throw new Error('the slow query did not show up in pg_stat_activity within 10 s');
    await sleep(100);
  }
}

/** `docker exec` of `argv` in the postgres container; its output, or an error with the last lines of it. */
async function inPostgres(docker: Docker, app: AuditApp, argv: string[]): Promise<string> {
  const { exitCode, output } = await execInContainer(docker, app.containers.postgres, argv).catch((err: Error & { statusCode?: number }) => {
    if (err.statusCode === 409) throw new Error(`${app.containers.postgres} is not running: start it first`, { cause: err });
    throw err;
  });
  if (exitCode !== 0) throw new Error(`${argv[0]} in ${app.containers.postgres} exited ${exitCode}: ${output.trim().split('\n').slice(-2).join(' ')}`);
  return output;
}

/**
 * A good backup, then the data lost, then the database down. A `documents` already gone is refused: dumping it
 * would overwrite the good backup with the broken database.
 */
async function corruptDatabase(docker: Docker, app: AuditApp): Promise<void> {
  const psql = ['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-U', 'postgres', '-d', DATABASE_NAME];
  const present = (await inPostgres(docker, app, [...psql, '-c', "SELECT to_regclass('public.documents') IS NOT NULL"])).trim();
  if (present !== 't') throw new Error(`documents is already gone from ${DATABASE_NAME}: restore ${LATEST_BACKUP_FILE} first (it is left as it is)`);
  await inPostgres(docker, app, ['pg_dump', '-Fc', '-U', 'postgres', '-f', LATEST_BACKUP_FILE, DATABASE_NAME]);
  // A session holding a lock on the table (leak-connections) makes the DROP fail after 10 s instead of hanging.
  await inPostgres(docker, app, [...psql, '-c', "SET lock_timeout = '10s'", '-c', 'DROP TABLE documents']);
  await stopContainer(docker, app.containers.postgres);
}

/** `docker exec` of `node /app/etl.js <args>` in the etl container: its exit code and output. */
async function inEtl(docker: Docker, app: AuditApp, args: string[]): Promise<{ exitCode: number; output: string }> {
  return execInContainer(docker, app.containers.etl, [...app.etl.program, ...args]).catch((err: Error & { statusCode?: number }) => {
    if (err.statusCode === 409) throw new Error(`${app.containers.etl} is not running: start it first`, { cause: err });
    throw err;
  });
}

/**
 * Sets an ETL fault, runs the pipeline once for Nairobi this year, and waits until its failure line (`expect`) is
 * in the container's log. Returns that line.
 */
async function breakEtl(docker: Docker, app: AuditApp, fault: string[], exitCode: number, expect: RegExp): Promise<string> {
  const set = await inEtl(docker, app, ['fault', ...fault]);
  if (set.exitCode !== 0) throw new Error(`etl.js fault ${fault.join(' ')} in ${app.containers.etl} exited ${set.exitCode}: ${set.output.trim().split('\n').slice(-2).join(' ')}`);
  const year = String(new Date().getUTCFullYear());
  const run = await inEtl(docker, app, ['run', '--county', 'Nairobi', '--year', year]);
  const line = run.output.split('\n').find((l) => expect.test(l));
  if (run.exitCode !== exitCode || !line) {
    throw new Error(`the ETL run did not fail as ${fault[0]} should (exit ${run.exitCode}, wanted ${exitCode}): ${run.output.trim().split('\n').slice(-2).join(' | ')}`);
  }
  const deadline = Date.now() + 10_000;
  while (!(await containerLogTail(docker, app.containers.etl, 200)).includes(line.trim())) {
    if (Date.now() > deadline) throw new Error(`the failure line is not in docker logs ${app.containers.etl} within 10 s: ${line.trim()}`);
    await sleep(100);
  }
  return line.trim().replace(/^\S+ /, '');
}

/** Breaks the app the way `fault` says; resolves once the fault is observable. */
export async function breakAuditApp(docker: Docker, app: AuditApp, fault: AuditAppFault, options: FaultOptions = {}): Promise<FaultResult> {
  const done = (description: string): FaultResult => ({ fault, description });
  switch (fault) {
    case 'backend-stopped':
      await stopContainer(docker, app.containers.backend);
      return done(`stopped ${app.containers.backend}: ${app.urls.health} does not answer`);
    case 'backend-crash': {
      await postFaultKnob(app, AdminRoutes.crash, { exitCode: options.exitCode ?? 1 });
      const exitCode = await waitForExit(docker, app.containers.backend, 10_000);
      return done(`${app.containers.backend} crashed: it exited with code ${exitCode}`);
    }
    case 'slow-route': {
      const route = options.route ?? ApiRoutes.documents;
      const ms = options.ms ?? 1_500;
      await postFaultKnob(app, AdminRoutes.slow, { route, ms });
      return done(`${route} answers ${ms} ms slower (see http_request_duration_seconds at ${app.urls.metrics})`);
    }
    case 'leak-connections': {
      const state = await postFaultKnob(app, AdminRoutes.leakConnections, options.count === undefined ? {} : { count: options.count });
      return done(
        `${app.containers.backend} leaked ${state.leakedConnections} of its ${state.pool.max} pool connection(s), idle in transaction: requests wait for the pool and fail, /health answers 503`,
      );
    }
    case 'db-stopped':
      await stopContainer(docker, app.containers.postgres);
      return done(`stopped ${app.containers.postgres}: ${app.urls.health} answers 503`);
    case 'redis-stopped':
      await stopContainer(docker, app.containers.redis);
      return done(`stopped ${app.containers.redis}: the backend rate-limits in memory`);
    case 'idle-in-transaction': {
      const sessions = options.sessions ?? 3;
      const state = await postFaultKnob(app, AdminRoutes.idleInTransaction, { sessions });
      const idle = await activityCount(app, "state = 'idle in transaction' AND application_name = $1", [BACKEND_APPLICATION_NAME]);
      return done(`${state.idleInTransactionSessions} session(s) of ${app.containers.backend} are idle in transaction (${idle} in pg_stat_activity)`);
    }
    case 'slow-query': {
      const seconds = options.seconds ?? 600;
      await startSlowQuery(docker, app, seconds);
      return done(`SELECT pg_sleep(${seconds}) runs in ${app.containers.postgres} (application_name ${SLOW_QUERY_APPLICATION_NAME}, state active in pg_stat_activity)`);
    }
    case 'db-corrupted':
      await corruptDatabase(docker, app);
      return done(
        `backed up ${DATABASE_NAME} to ${LATEST_BACKUP_FILE}, dropped the documents table and stopped ${app.containers.postgres}: restarted, it answers SELECT 1 but ${app.urls.health} stays 503 until the backup is restored`,
      );
    case 'etl-rate-limited': {
      const ms = options.ms ?? DEFAULT_ETL_MIN_DELAY_MS;
      const line = await breakEtl(docker, app, ['rate-limited', '--min-delay-ms', String(ms)], EtlExitCodes.rateLimited, EtlLogPatterns.rateLimited);
      return done(`the ETL's source answers 429 to runs with under ${ms} ms between records: a run in ${app.containers.etl} failed (exit ${EtlExitCodes.rateLimited}), its log says "${line}"`);
    }
    case 'etl-source-changed': {
      const line = await breakEtl(docker, app, ['source-changed'], EtlExitCodes.sourceChanged, EtlLogPatterns.sourceChanged);
      return done(`the ETL's source changed its page format: a run in ${app.containers.etl} failed (exit ${EtlExitCodes.sourceChanged}), its log says "${line}"`);
    }
    case 'etl-disk-full': {
      const line = await breakEtl(docker, app, ['disk-full'], EtlExitCodes.diskFull, EtlLogPatterns.diskFull);
      return done(`filled ${app.etl.downloadsDir} in ${app.containers.etl}: a run failed (exit ${EtlExitCodes.diskFull}), its log says "${line}"`);
    }
    case 'etl-crash': {
      const after = options.count ?? DEFAULT_ETL_CRASH_AFTER;
      const line = await breakEtl(docker, app, ['crash', '--after', String(after)], EtlExitCodes.crashed, EtlLogPatterns.crashed);
      return done(`a run in ${app.containers.etl} crashed after writing ${after} record(s) (exit ${EtlExitCodes.crashed}), its log says "${line}"`);
    }
    case 'brute-force': {
      const ip = options.ip ?? BRUTE_FORCE.ip;
      const attempts = options.count ?? BRUTE_FORCE.attempts;
      await bruteForce(app, ip, attempts);
      return done(`${attempts} failed logins from ${ip} (POST ${ApiRoutes.audit}, X-Forwarded-For: ${ip}) as ${BRUTE_FORCE.users.join(', ')}: ${attempts} audit_log row(s) with ip ${ip}`);
    }
  }
}

/** Failed logins from one client, through the backend's trusted proxy (127.0.0.1 + X-Forwarded-For); each must land. */
export async function bruteForce(app: AuditApp, ip: string, attempts: number): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    const user = BRUTE_FORCE.users[i % BRUTE_FORCE.users.length]!;
    const response = await fetch(`${app.urls.api}${ApiRoutes.audit}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': ip, 'x-user-id': user },
      body: JSON.stringify({ action: BRUTE_FORCE.action, details: { attempt: i + 1, reason: 'bad password' } }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (response.status !== 201) throw new Error(`brute-force: login attempt ${i + 1} from ${ip} answered ${response.status}: ${text.slice(0, 200)}`);
  }
}
