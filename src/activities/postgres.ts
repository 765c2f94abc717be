/**
 * The application's PostgreSQL (`targets.postgres`): reachability, connections and sessions, slow queries, and
 * the few changes the runbook allows. Every statement is parameterised; identifiers (tables, columns) are checked
 * against the catalogue before use. The URL may carry a password: it stays in the worker.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type Docker from 'dockerode';
import { Client } from 'pg';
import type { Config } from '../config/schema';
import { ActivityErrorType } from '../runbooks/errorTypes';
import { execInContainer } from './docker';
import { targetConfig, type TargetRef } from './targets';

type PostgresRef = TargetRef<'postgres'>;

/** Our own sessions carry this application_name: the runbook never terminates itself. */
export const RUNBOOKS_APPLICATION_NAME = 'runbooks';
const CONNECT_TIMEOUT_MS = 3_000;
const STATEMENT_TIMEOUT_MS = 10_000;
const QUERY_TEXT_MAX = 200;

export interface DatabaseCheck {
  reachable: boolean;
  latencyMs: number;
  error?: string;
}

export interface Session {
  pid: number;
  user: string | null;
  application: string | null;
  client: string | null;
  state: string | null;
  /** Seconds in the current state (idle in transaction) or running the current query (active). */
  seconds: number;
  query: string;
}

export interface LockWait extends Session {
  blockedBy: number[];
}

export interface ConnectionReport {
  database: string;
  connections: number;
  maxConnections: number;
  /** connections / max_connections */
  usage: number;
  byState: Record<string, number>;
  idleInTransaction: Session[];
  longQueries: Session[];
  lockWaits: LockWait[];
}

export interface TerminatedSessions {
  terminated: Session[];
}

export interface RestoreResult {
  backupFile: string;
  output: string;
}

export function createPostgresActivities(config: Pick<Config, 'targets'>, docker: Docker) {
  const urlOf = (target: PostgresRef['target']) => targetConfig(config, target).url;
  return {
    /**
     * `pg_restore --clean --if-exists` of the target's backup file inside its container (`docker exec`, an argv
     * array). Idempotent: a second restore of the same dump ends in the same state. A failed restore is permanent.
     */
    async restoreFromBackup({ target }: PostgresRef): Promise<RestoreResult> {
      const { container, url, backupFile } = targetConfig(config, target);
      const { username, pathname } = new URL(url);
      const database = decodeURIComponent(pathname.slice(1)) || 'postgres';
      const argv = ['pg_restore', '--clean', '--if-exists', '--no-owner', '--single-transaction', '-U', decodeURIComponent(username) || 'postgres', '-d', database, backupFile];
      const { exitCode, output } = await execInContainer(docker, container, argv);
      if (exitCode !== 0) {
        throw ApplicationFailure.nonRetryable(`pg_restore of ${backupFile} exited ${exitCode}: ${output.trim().split('\n').slice(-3).join(' ')}`, ActivityErrorType.restoreFailed);
      }
      return { backupFile, output };
    },

    /** `SELECT 1` with short timeouts (the runbook's `pg_isready` / `psql -c "SELECT 1"`). Read-only. */
    async checkDatabase({ target }: PostgresRef): Promise<DatabaseCheck> {
      return check(urlOf(target));
    },

    /** Polls `SELECT 1` until it answers or `withinMs` passes; heartbeats. Read-only. */
    async waitForDatabase({ target, withinMs }: PostgresRef & { withinMs: number }): Promise<DatabaseCheck & { attempts: number }> {
      const url = urlOf(target);
      const deadline = Date.now() + withinMs;
      for (let attempts = 1; ; attempts++) {
        Context.current().heartbeat(attempts);
        const result = await check(url);
        if (result.reachable || Date.now() + 500 > deadline) return { ...result, attempts };
        await Context.current().sleep(500);
      }
    },

    /**
     * Connections to the application database against `max_connections`, sessions idle in a transaction for
     * longer than `idleInTransactionMs`, queries active for longer than `longQueryMs`, and lock waits. Read-only.
     */
    async inspectConnections({ target, idleInTransactionMs, longQueryMs }: PostgresRef & { idleInTransactionMs: number; longQueryMs: number }): Promise<ConnectionReport> {
      return withDatabase(urlOf(target), async (db) => {
        const database = (await db.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
        const max = Number((await db.query<{ max: string }>(`SELECT setting AS max FROM pg_settings WHERE name = 'max_connections'`)).rows[0]!.max);
        const states = await db.query<{ state: string | null; n: string }>(
          `SELECT state, count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' GROUP BY state`,
          [database],
        );
        const byState = Object.fromEntries(states.rows.map((r) => [r.state ?? 'unknown', Number(r.n)]));
        const connections = Object.values(byState).reduce((a, b) => a + b, 0);
        const idleInTransaction = await sessions(
          db,
          `state = 'idle in transaction' AND state_change < now() - $2 * interval '1 millisecond'`,
          'state_change',
          [database, idleInTransactionMs],
        );
        const longQueries = await sessions(db, `state = 'active' AND query_start < now() - $2 * interval '1 millisecond'`, 'query_start', [
          database,
          longQueryMs,
        ]);
        const waits = await db.query<SessionRow & { blocked_by: number[] }>(
          `SELECT ${SESSION_COLUMNS('query_start')}, pg_blocking_pids(pid) AS blocked_by FROM pg_stat_activity
           WHERE datname = $1 AND cardinality(pg_blocking_pids(pid)) > 0 ORDER BY query_start LIMIT 20`,
          [database],
        );
        return {
          database,
          connections,
          maxConnections: max,
          usage: max > 0 ? connections / max : 0,
          byState,
          idleInTransaction,
          longQueries,
          lockWaits: waits.rows.map((row) => ({ ...toSession(row), blockedBy: row.blocked_by })),
        };
      });
    },

    /**
     * `pg_terminate_backend` for client sessions of the application database idle in a transaction for longer
     * than `olderThanMs` — never our own session, never another runbooks session, never a replication or
     * background process. Safe to retry: a second run finds nothing left to terminate.
     */
    async terminateIdleSessions({ target, olderThanMs }: PostgresRef & { olderThanMs: number }): Promise<TerminatedSessions> {
      return withDatabase(urlOf(target), async (db) => {
        const { rows } = await db.query<SessionRow & { terminated: boolean }>(
          `SELECT ${SESSION_COLUMNS('state_change')}, pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
           WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
             AND coalesce(application_name, '') NOT LIKE $2
             AND state = 'idle in transaction' AND state_change < now() - $1 * interval '1 millisecond'`,
          [olderThanMs, `${RUNBOOKS_APPLICATION_NAME}%`],
        );
        return { terminated: rows.filter((r) => r.terminated).map(toSession) };
      });
    },
  };
}

export type PostgresActivities = ReturnType<typeof createPostgresActivities>;

interface SessionRow {
  pid: number;
  usename: string | null;
  application_name: string | null;
  client_addr: string | null;
  state: string | null;
  seconds: number;
  query: string | null;
}

/** The session columns, with `seconds` measured from the given timestamp column (a fixed name, never input). */
const SESSION_COLUMNS = (since: 'state_change' | 'query_start') =>
  `pid, usename, application_name, host(client_addr) AS client_addr, state,
   floor(extract(epoch FROM now() - ${since}))::int AS seconds, left(query, ${QUERY_TEXT_MAX}) AS query`;

async function sessions(db: Client, condition: string, since: 'state_change' | 'query_start', params: unknown[]): Promise<Session[]> {
  const { rows } = await db.query<SessionRow>(
    `SELECT ${SESSION_COLUMNS(since)} FROM pg_stat_activity
     WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND ${condition}
     ORDER BY ${since} LIMIT 50`,
    params,
  );
  return rows.map(toSession);
}

function toSession(row: SessionRow): Session {
  return {
    pid: row.pid,
    user: row.usename,
    application: row.application_name,
    client: row.client_addr,
    state: row.state,
    seconds: row.seconds,
    query: row.query ?? '',
  };
}

async function check(url: string): Promise<DatabaseCheck> {
  const started = Date.now();
  try {
    await withDatabase(url, (db) => db.query('SELECT 1'));
    return { reachable: true, latencyMs: Date.now() - started };
  } catch (err) {
    return { reachable: false, latencyMs: Date.now() - started, error: describePgError(err) };
  }
}

/** A short-lived connection per call, named so that nobody (us included) terminates it by mistake. */
async function withDatabase<T>(url: string, use: (db: Client) => Promise<T>): Promise<T> {
  const db = new Client({
    connectionString: url,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: RUNBOOKS_APPLICATION_NAME,
  });
  db.on('error', () => undefined); // surfaced through the failing query instead
  await db.connect();
  try {
    return await use(db);
  } finally {
    await db.end().catch(() => undefined);
  }
}

function describePgError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ? `${e.code}: ${e.message}` : (e.message ?? String(err));
}
