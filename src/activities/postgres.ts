/**
 * The application's PostgreSQL (`targets.postgres`): reachability, connections and sessions, slow queries, and
 * the few changes the runbook allows. Every statement is parameterised; identifiers (tables, columns) are checked
 * against the catalogue before use. The URL may carry a password: it stays in the worker.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type Docker from 'dockerode';
import { Client, escapeIdentifier } from 'pg';
import type { Config } from '../config/schema';
import { ActivityErrorType } from '../runbooks/errorTypes';
import { checkLookupTarget } from '../security/address';
import { widestPrefixes } from '../security/denyList';
import { execInContainer } from './docker';
import { pollUntil } from './poll';
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

export interface QueryStats {
  query: string;
  calls: number;
  meanMs: number;
  maxMs: number;
}

export interface TopQueries {
  /** False when pg_stat_statements is not installed in the database: the finding says so. */
  enabled: boolean;
  queries: QueryStats[];
}

export interface HotTable {
  table: string;
  seqScans: number;
  seqRowsRead: number;
  indexScans: number;
  liveRows: number;
}

export interface IndexSuggestion {
  table: string;
  column: string;
  /** The slow query that filters on it. */
  because: string;
}

export interface TableReport {
  hot: HotTable[];
  suggestions: IndexSuggestion[];
}

export interface DatabaseSize {
  database: string;
  bytes: number;
  pretty: string;
}

export interface BackupResult {
  /** Inside the container: the dated dump, and the target's backup file (what a restore uses) now a copy of it. */
  file: string;
  backupFile: string;
  bytes: number;
}

export interface Freshness {
  table: string;
  column: string;
  /** `MAX(column)`, ISO 8601; null when the table is empty. */
  latest: string | null;
  /** Seconds from `latest` to the database's now(); null when the table is empty. */
  ageSeconds: number | null;
}

/** Runbook §7: `SELECT * FROM audit_log WHERE ip_address = …`, summarised (the sandbox's column is `ip inet`). */
export interface AuditLogEvidence {
  source: string;
  /** False when the database has no audit_log table (the error says so). */
  found: boolean;
  error?: string;
  rows: number;
  users: Array<{ user: string | null; count: number }>;
  actions: Array<{ action: string; count: number }>;
  firstSeen?: string;
  lastSeen?: string;
  /** Its latest rows, at most 10. */
  latest: Array<{ id: string; at: string; ip: string; user: string | null; action: string }>;
}

export interface RestoreResult {
  backupFile: string;
  output: string;
}


/** A dump made for the weekly restore check, with the row counts of its own snapshot. */
export interface RestoreCheckDump {
  database: string;
  /** Inside the container, beside the target's backup file. */
  file: string;
  bytes: number;
  /** Rows per table of the public schema, counted in the snapshot pg_dump dumped. */
  rowCounts: Record<string, number>;
}

/** The dump restored into a scratch database and its rows counted; the scratch database is gone afterwards. */
export interface RestoreCheck {
  database: string;
  scratch: string;
  file: string;
  restored: boolean;
  /** pg_restore's last lines when it failed. */
  error?: string;
  tables: Array<{ table: string; expected: number; restored: number | null }>;
  /** Tables whose restored row count differs from the dump's (or that are missing after the restore). */
  mismatches: string[];
}

export function createPostgresActivities(config: Pick<Config, 'targets' | 'policies'>, docker: Docker) {
  const urlOf = (target: PostgresRef['target']) => targetConfig(config, target).url;
  return {
    /**
     * `pg_restore --clean --if-exists` of the target's backup file inside its container (`docker exec`, an argv
     * array). Idempotent: a second restore of the same dump ends in the same state. A failed restore is permanent.
     */
    async restoreFromBackup({ target }: PostgresRef): Promise<RestoreResult> {
      const { container, url, backupFile } = targetConfig(config, target);
      const { user, database } = loginOf(url);
      const argv = ['pg_restore', '--clean', '--if-exists', '--no-owner', '--single-transaction', '-U', user, '-d', database, backupFile];
      const { exitCode, output } = await execInContainer(docker, container, argv);
      if (exitCode !== 0) {
        throw ApplicationFailure.nonRetryable(`pg_restore of ${backupFile} exited ${exitCode}: ${output.trim().split('\n').slice(-3).join(' ')}`, ActivityErrorType.restoreFailed);
      }
      return { backupFile, output };
    },

    /**
     * The weekly check's dump (runbook "Test backup restoration"): `pg_dump -Fc` of the application database in its
     * container (an argv array) to `restore-check.dump` beside the target's backup file, from a snapshot exported by a
     * repeatable-read transaction in which the rows of every public table are counted — so the counts are exactly
     * what the dump holds. A retry dumps again over the same file.
     */
    async dumpForRestoreCheck({ target }: PostgresRef): Promise<RestoreCheckDump> {
      const { container, url, backupFile } = targetConfig(config, target);
      const { user, database } = loginOf(url);
      const file = `${directoryOf(backupFile)}restore-check.dump`;
      return withDatabase(url, async (db) => {
        await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const snapshot = (await db.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0]!.id;
        const rowCounts = await countRows(db);
        const dump = await execInContainer(docker, container, ['pg_dump', '-Fc', '--snapshot', snapshot, '-U', user, '-f', file, database]);
        await db.query('COMMIT');
        if (dump.exitCode !== 0) throw new Error(`pg_dump exited ${dump.exitCode}: ${lastLines(dump.output)}`);
        const stat = await execInContainer(docker, container, ['stat', '-c', '%s', file]);
        return { database, file, bytes: Number(stat.output.trim()), rowCounts };
      });
    },

    /**
     * Restores a dump into a scratch database (`<database>_restore_check`), counts its rows per table against the
     * dump's, and drops the scratch database — also when the restore fails. Idempotent: it first drops a scratch
     * database an earlier attempt left. A failed restore is a result (the check fails with pg_restore's words), not
     * an error.
     */
    async restoreIntoScratch({ target, dump }: PostgresRef & { dump: Pick<RestoreCheckDump, 'file' | 'rowCounts'> }): Promise<RestoreCheck> {
      const { container, url } = targetConfig(config, target);
      if (!DUMP_FILE.test(dump.file)) throw ApplicationFailure.nonRetryable(`"${dump.file}" is not an absolute path of letters, digits, _ . / -`, ActivityErrorType.invalidInput);
      const { user, database } = loginOf(url);
      const scratch = `${database}_restore_check`.slice(0, 63);
      const dropScratch = () => withDatabase(url, (db) => db.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(scratch)} WITH (FORCE)`));
      const result: RestoreCheck = { database, scratch, file: dump.file, restored: false, tables: [], mismatches: [] };
      await dropScratch();
      await withDatabase(url, (db) => db.query(`CREATE DATABASE ${escapeIdentifier(scratch)}`));
      try {
        const restore = await execInContainer(docker, container, ['pg_restore', '--no-owner', '--exit-on-error', '-U', user, '-d', scratch, dump.file]);
        if (restore.exitCode !== 0) return { ...result, error: `pg_restore exited ${restore.exitCode}: ${lastLines(restore.output)}` };
        const restored = await withDatabase(withDatabaseName(url, scratch), countRows);
        const tables = Object.entries(dump.rowCounts).map(([table, expected]) => ({ table, expected, restored: restored[table] ?? null }));
        return { ...result, restored: true, tables, mismatches: tables.filter((t) => t.restored !== t.expected).map((t) => t.table) };
      } finally {
        await dropScratch();
      }
    },

    /** `SELECT 1` with short timeouts (the runbook's `pg_isready` / `psql -c "SELECT 1"`). Read-only. */
    /**
     * The audit_log rows of an address or network (`ip <<= $1::inet`, the source a bound parameter, never SQL
     * text): how many, which users and actions, first and last seen, the latest ten. Read-only.
     */
    async auditLogForSource({ target, source }: PostgresRef & { source: string }): Promise<AuditLogEvidence> {
      // The workflow checked it already; the worker checks again with its own config: never a look wider than the policy's.
      const parsed = checkLookupTarget(source, widestPrefixes(config));
      if (!parsed.ok) throw ApplicationFailure.nonRetryable(parsed.reason, ActivityErrorType.invalidInput);
      const cidr = parsed.network.text;
      const empty: AuditLogEvidence = { source: cidr, found: false, rows: 0, users: [], actions: [], latest: [] };
      return withDatabase(urlOf(target), async (db) => {
        const exists = await db.query<{ found: boolean }>(`SELECT to_regclass('audit_log') IS NOT NULL AS found`);
        if (!exists.rows[0]?.found) return { ...empty, error: 'the database has no audit_log table' };
        const where = 'FROM audit_log WHERE ip <<= $1::inet';
        const totals = await db.query<{ rows: number; first: Date | null; last: Date | null }>(`SELECT count(*)::int AS rows, min(at) AS first, max(at) AS last ${where}`, [cidr]);
        const users = await db.query<{ user: string | null; count: number }>(`SELECT user_id AS "user", count(*)::int AS count ${where} GROUP BY user_id ORDER BY count DESC, user_id LIMIT 20`, [cidr]);
        const actions = await db.query<{ action: string; count: number }>(`SELECT action, count(*)::int AS count ${where} GROUP BY action ORDER BY count DESC, action LIMIT 20`, [cidr]);
        const latest = await db.query<{ id: string; at: Date; ip: string; user: string | null; action: string }>(
          `SELECT id::text AS id, at, host(ip) AS ip, user_id AS "user", action ${where} ORDER BY at DESC, id DESC LIMIT 10`,
          [cidr],
        );
        const { rows, first, last } = totals.rows[0]!;
        return {
          source: cidr,
          found: true,
          rows,
          users: users.rows,
          actions: actions.rows,
          ...(first ? { firstSeen: first.toISOString() } : {}),
          ...(last ? { lastSeen: last.toISOString() } : {}),
          latest: latest.rows.map((r) => ({ ...r, at: r.at.toISOString() })),
        };
      });
    },

    async checkDatabase({ target }: PostgresRef): Promise<DatabaseCheck> {
      return check(urlOf(target));
    },

    /** Polls `SELECT 1` until it answers or `withinMs` passes; heartbeats. Read-only. */
    async waitForDatabase({ target, withinMs }: PostgresRef & { withinMs: number }): Promise<DatabaseCheck & { attempts: number }> {
      const url = urlOf(target);
      return pollUntil(withinMs, () => check(url), (r) => r.reachable);
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
     * How fresh a table's data is: `SELECT MAX(<column>) FROM <table>` (runbook §3: `MAX(updated_at)` of
     * `documents`), the age measured by the database's own clock. Both names are checked against the catalogue and
     * the column must be a timestamp. Read-only.
     */
    async dataFreshness({ target, table, column }: PostgresRef & { table: string; column: string }): Promise<Freshness> {
      return withDatabase(urlOf(target), async (db) => {
        const quotedTable = await checkedIdentifier(db, 'table', table);
        const quotedColumn = await checkedIdentifier(db, 'column', column, table);
        const { rows: types } = await db.query<{ data_type: string }>(
          `SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2`,
          [table, column],
        );
        if (!/^timestamp/.test(types[0]?.data_type ?? '')) {
          throw ApplicationFailure.nonRetryable(`column "${column}" of "${table}" is ${types[0]?.data_type}, not a timestamp`, ActivityErrorType.invalidInput);
        }
        const { rows } = await db.query<{ latest: Date | null; age: number | null }>(
          `SELECT max(${quotedColumn}) AS latest, extract(epoch FROM now() - max(${quotedColumn}))::float8 AS age FROM ${quotedTable}`,
        );
        const { latest, age } = rows[0]!;
        return { table, column, latest: latest ? latest.toISOString() : null, ageSeconds: age === null ? null : Math.round(age) };
      });
    },

    /** `pg_size_pretty(pg_database_size(current_database()))`. Read-only: a retry reads it again. */
    async databaseSize({ target }: PostgresRef): Promise<DatabaseSize> {
      return withDatabase(urlOf(target), async (db) => {
        const { rows } = await db.query<{ database: string; bytes: string; pretty: string }>(
          'SELECT current_database() AS database, pg_database_size(current_database()) AS bytes, pg_size_pretty(pg_database_size(current_database())) AS pretty',
        );
        return { database: rows[0]!.database, bytes: Number(rows[0]!.bytes), pretty: rows[0]!.pretty };
      });
    },

    /**
     * `pg_dump -Fc` inside the target's container to `<dir of backupFile>/backup_<YYYYMMDD-HHMMSS>.dump`, then
     * copied over the target's backup file (what `restoreFromBackup` restores). Argv arrays only. A retry makes a
     * new dump (a file name with the time), which is harmless.
     */
    async exportBackup({ target }: PostgresRef): Promise<BackupResult> {
      const { container, url, backupFile } = targetConfig(config, target);
      const { user, database } = loginOf(url);
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
      const file = `${directoryOf(backupFile)}backup_${stamp}.dump`;
      const run = async (argv: string[]) => {
        const result = await execInContainer(docker, container, argv);
        if (result.exitCode !== 0) throw new Error(`${argv[0]} exited ${result.exitCode}: ${result.output.trim().split('\n').slice(-2).join(' ')}`);
        return result.output;
      };
      await run(['pg_dump', '-Fc', '-U', user, '-f', file, database]);
      await run(['cp', file, backupFile]);
      const bytes = Number((await run(['stat', '-c', '%s', file])).trim());
      return { file, backupFile, bytes };
    },

    /** The slowest statements by mean time (the runbook's pg_stat_statements query). Read-only. */
    async topQueries({ target, limit = 10 }: PostgresRef & { limit?: number }): Promise<TopQueries> {
      return withDatabase(urlOf(target), async (db) => {
        if (!(await statementsEnabled(db))) return { enabled: false, queries: [] };
        const { rows } = await db.query<{ query: string; calls: string; mean: number; max: number }>(
          `SELECT left(s.query, ${QUERY_TEXT_MAX}) AS query, s.calls, s.mean_exec_time AS mean, s.max_exec_time AS max
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
           WHERE d.datname = current_database() AND s.query NOT ILIKE '%pg_stat_statements%'
           ORDER BY s.mean_exec_time DESC LIMIT $1`,
          [Math.min(Math.max(1, limit), 50)],
        );
        return { enabled: true, queries: rows.map((r) => ({ query: r.query, calls: Number(r.calls), meanMs: round(r.mean), maxMs: round(r.max) })) };
      });
    },

    /**
     * Tables read mostly by sequential scans (pg_stat_user_tables), and for each a column that a slow query of
     * pg_stat_statements filters on (`WHERE col =`, `AND col =`) and that no index leads with. Read-only.
     */
    async inspectTables({ target, minSeqScans = 50 }: PostgresRef & { minSeqScans?: number }): Promise<TableReport> {
      return withDatabase(urlOf(target), async (db) => {
        const { rows } = await db.query<{ relname: string; seq_scan: string; seq_tup_read: string; idx_scan: string | null; n_live_tup: string }>(
          `SELECT relname, seq_scan, seq_tup_read, idx_scan, n_live_tup FROM pg_stat_user_tables
           WHERE schemaname = 'public' AND seq_scan >= $1 AND seq_scan > coalesce(idx_scan, 0)
           ORDER BY seq_tup_read DESC LIMIT 5`,
          [minSeqScans],
        );
        const hot = rows.map((r) => ({ table: r.relname, seqScans: Number(r.seq_scan), seqRowsRead: Number(r.seq_tup_read), indexScans: Number(r.idx_scan ?? 0), liveRows: Number(r.n_live_tup) }));
        const suggestions: IndexSuggestion[] = [];
        const enabled = hot.length > 0 && (await statementsEnabled(db));
        for (const table of enabled ? hot : []) {
          const unindexed = await db.query<{ column_name: string }>(
            `SELECT c.column_name FROM information_schema.columns c
             WHERE c.table_schema = 'public' AND c.table_name = $1
               AND NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                               WHERE i.indrelid = ('public.' || quote_ident($1))::regclass AND a.attname = c.column_name)`,
            [table.table],
          );
          const slow = await db.query<{ query: string }>(
            `SELECT s.query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
             WHERE d.datname = current_database() AND s.query ~* ('\\mfrom\\s+(public\\.)?' || $1 || '\\M') ORDER BY s.mean_exec_time DESC LIMIT 5`,
            [table.table],
          );
          for (const { column_name: column } of unindexed.rows) {
            const filter = new RegExp(`\\b(where|and)\\s+("?${escapeRegExp(column)}"?)\\s*=`, 'i');
            const because = slow.rows.find((q) => filter.test(q.query));
            if (because) suggestions.push({ table: table.table, column, because: because.query.slice(0, QUERY_TEXT_MAX) });
          }
        }
        return { hot, suggestions };
      });
    },

    /**
     * `VACUUM ANALYZE` of the named tables, each checked against pg_tables first. Harmless to repeat.
     * Not retried mid-way: a retry vacuums every table again, which only costs time.
     */
    async vacuumAnalyze({ target, tables }: PostgresRef & { tables: string[] }): Promise<{ vacuumed: string[] }> {
      return withDatabase(urlOf(target), async (db) => {
        const vacuumed: string[] = [];
        for (const table of tables) {
          await db.query(`VACUUM ANALYZE ${await checkedIdentifier(db, 'table', table)}`);
          vacuumed.push(table);
        }
        return { vacuumed };
      });
    },

    /**
     * `CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_<table>_<column>` after checking both names against the
     * catalogue. Idempotent: an existing valid index is kept; an invalid one left by an interrupted attempt is
     * dropped and built again.
     */
    async createIndex({ target, table, column }: PostgresRef & { table: string; column: string }): Promise<{ index: string; created: boolean }> {
      return withDatabase(urlOf(target), async (db) => {
        const quotedTable = await checkedIdentifier(db, 'table', table);
        const quotedColumn = await checkedIdentifier(db, 'column', column, table);
        const index = `idx_${table}_${column}`.slice(0, 63);
        const existing = await db.query<{ valid: boolean }>(
          `SELECT i.indisvalid AS valid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = $1 AND c.relnamespace = 'public'::regnamespace`,
          [index],
        );
        if (existing.rows[0]?.valid) return { index, created: false };
        if (existing.rows[0]) await db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${escapeIdentifier(index)}`);
        await db.query('SET statement_timeout = 0');
        await db.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${escapeIdentifier(index)} ON ${quotedTable} (${quotedColumn})`);
        return { index, created: true };
      });
    },

    /**
     * `pg_terminate_backend` for client sessions of the application database idle in a transaction for longer
     * than `olderThanMs` — never our own session, never another runbooks session, never a replication or
     * background process. Safe to retry: a second run finds nothing left to terminate.
     */
    async terminateIdleSessions({ target, olderThanMs }: PostgresRef & { olderThanMs: number }): Promise<TerminatedSessions> {
      return withDatabase(urlOf(target), async (db) => {
        // A guarantee, not a filter of convenience: `backend_type = 'client backend'` leaves out walsenders (replication
        // connections, physical or logical, even one idle in a transaction), the pid <> check our own session, and
        // the application_name every other runbooks session.
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

/** pg_stat_statements answers only when the extension exists in the database and the server preloads it. */
async function statementsEnabled(db: Client): Promise<boolean> {
  const { rows } = await db.query<{ enabled: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')
        AND current_setting('shared_preload_libraries') ~ 'pg_stat_statements' AS enabled`,
  );
  return rows[0]?.enabled ?? false;
}

/** A table or column name, checked against the catalogue before it goes into SQL, and quoted. */
async function checkedIdentifier(db: Client, kind: 'table' | 'column', name: string, table?: string): Promise<string> {
  const found =
    kind === 'table'
      ? await db.query(`SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = 'public' AND tablename = $1`, [name])
      : await db.query(`SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2`, [table, name]);
  if (found.rowCount === 0) {
    throw ApplicationFailure.nonRetryable(`no ${kind} "${name}"${table ? ` in table "${table}"` : ''} in the database`, ActivityErrorType.unknownIdentifier);
  }
  return escapeIdentifier(name);
}

/** Who the URL logs in as and to which database (the `-U` and `-d` of the client tools in the container). */
function loginOf(url: string): { user: string; database: string } {
  const { username, pathname } = new URL(url);
  return { user: decodeURIComponent(username) || 'postgres', database: decodeURIComponent(pathname.slice(1)) || 'postgres' };
}

function withDatabaseName(url: string, database: string): string {
  const other = new URL(url);
  other.pathname = `/${encodeURIComponent(database)}`;
  return other.toString();
}

/** `/backups/latest.dump` → `/backups/` */
function directoryOf(file: string): string {
  return file.slice(0, file.lastIndexOf('/') + 1);
}

const DUMP_FILE = /^\/[A-Za-z0-9_./-]{1,255}$/;

/** Rows of every table of the public schema; the names come from the catalogue itself and are quoted. */
async function countRows(db: Client): Promise<Record<string, number>> {
  const { rows: tables } = await db.query<{ tablename: string }>(`SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
  const counts: Record<string, number> = {};
  for (const { tablename } of tables) {
    const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM public.${escapeIdentifier(tablename)}`);
    counts[tablename] = Number(rows[0]!.n);
  }
  return counts;
}

function lastLines(output: string, n = 3): string {
  return output.trim().split('\n').slice(-n).join(' ');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function describePgError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ? `${e.code}: ${e.message}` : (e.message ?? String(err));
}
