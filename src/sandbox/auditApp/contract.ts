/**
 * What the audit-app's backend (server.ts, which runs in its container) and the code that drives it from outside
 * (stack.ts, faults.ts, the CLI, the tests, later runbooks; the config's default backup file) agree on: environment
 * variables, Redis keys, admin routes, fault names, defaults. No imports: server.ts is bundled with this file alone,
 * and the CLI and the config read it without loading Docker or pg.
 */

/** Environment of the backend container. */
export const BackendEnv = {
  /** API port on 127.0.0.1 (default 8080). */
  port: 'PORT',
  /** Admin (fault knob) port on 127.0.0.1 (default PORT + 1). */
  adminPort: 'ADMIN_PORT',
  databaseUrl: 'DATABASE_URL',
  redisUrl: 'REDIS_URL',
  /** Size of the pg pool (default 5). */
  poolSize: 'DB_POOL_SIZE',
  /** How long a request waits for a pool connection before failing (default 2000 ms). */
  poolTimeoutMs: 'DB_POOL_TIMEOUT_MS',
  /** How long /health waits for its read of `documents` (`SELECT 1 FROM documents LIMIT 1`; default 1000 ms). */
  healthTimeoutMs: 'HEALTH_TIMEOUT_MS',
  /** Requests per window per client when Redis holds no limit (default 120). */
  rateLimit: 'RATE_LIMIT_DEFAULT',
  rateLimitWindowSeconds: 'RATE_LIMIT_WINDOW_SECONDS',
  /** Overrides the image's /app/VERSION. */
  version: 'APP_VERSION',
  /** Faults present from the start (an image can carry them: a bad deploy). */
  faultHealthStatus: 'FAULT_HEALTH_STATUS',
  faultSlowMs: 'FAULT_SLOW_MS',
  faultSlowRoute: 'FAULT_SLOW_ROUTE',
  faultCrashAfterMs: 'FAULT_CRASH_AFTER_MS',
  /** `fail`: this image's `migrate up` has a migration that fails (a bad deploy's schema change). */
  faultMigration: 'FAULT_MIGRATION',
} as const;

/**
 * The backend's schema migrations, as a deployment runs them in a one-off container of the new image:
 * `node /app/server.js migrate up | down --to N | current`; each prints `schema revision <N>` last (exit 0), or
 * fails non-zero with the failed migration rolled back (each migration is one transaction).
 */
export const BackendMigrate = {
  up: ['/usr/bin/node', '/app/server.js', 'migrate', 'up'],
  down: ['/usr/bin/node', '/app/server.js', 'migrate', 'down', '--to', '{revision}'],
  current: ['/usr/bin/node', '/app/server.js', 'migrate', 'current'],
} as const;

/** The sandbox's `deploy` config: a version is the running image committed with its /app/VERSION, migrations as above. */
export const SANDBOX_DEPLOY = {
  build: { versionFile: '/app/VERSION' },
  migrate: { up: [...BackendMigrate.up], down: [...BackendMigrate.down], current: [...BackendMigrate.current] },
};

export const DEFAULT_POOL_SIZE = 5;
export const DEFAULT_RATE_LIMIT = 120;
export const DEFAULT_RATE_LIMIT_WINDOW_SECONDS = 60;
export const DATABASE_NAME = 'audit_app';
/** Inside the postgres container: where `pg_dump -Fc -f /backups/…` writes and `pg_restore` reads. */
export const BACKUP_DIR = '/backups';
/**
 * The dump the runbook restores from unless `targets.postgres.backupFile` says otherwise (the config's default), and
 * the good backup the `db-corrupted` fault takes before it drops the table.
 */
export const LATEST_BACKUP_FILE = `${BACKUP_DIR}/latest.dump`;
/** `application_name` of the backend's database sessions (pool and fault sessions alike). */
export const BACKEND_APPLICATION_NAME = 'audit-app-backend';
/** `application_name` of the slow-query fault's session. */
export const SLOW_QUERY_APPLICATION_NAME = 'audit-app-report';

/**
 * Redis keys. Only per-client counters match `rate_limit:*`, so the runbook's
 * `redis-cli --scan --pattern "rate_limit:*" | wc -l` counts clients.
 */
export const RedisKeys = {
  /** INCR + EXPIRE per client and window: `rate_limit:<client ip>`. */
  rateLimit: (client: string) => `rate_limit:${client}`,
  /** The limit per window (an integer); absent: RATE_LIMIT_DEFAULT. A runbook raises it with SET. */
  rateLimitConfig: 'config:rate_limit:limit',
  /** A set of client IPs answered 403. */
  blocklist: 'blocklist:ips',
  /** A set of client IPs never rate-limited. */
  allowlist: 'allowlist:ips',
} as const;

/** Routes of the API (the `route` label of http_request_duration_seconds; anything else is `unmatched`). */
export const ApiRoutes = {
  health: '/health',
  metrics: '/metrics',
  documents: '/api/v1/documents',
  counties: '/api/v1/counties',
  /** POST: writes a row of audit_log with the client IP and the X-User-Id header. */
  audit: '/api/v1/audit',
} as const;

/** Routes of the admin port (POST, JSON body), each one fault knob; GET /faults shows them all. */
export const AdminRoutes = {
  faults: '/faults',
  /** { route?: string (an ApiRoutes value or "*"; default /api/v1/documents), ms: number (0 clears) } */
  slow: '/faults/slow',
  /** { status: number (e.g. 500; 0 clears) }: /health answers it whatever the database says. */
  health: '/faults/health',
  /** { count?: number (default: the pool size) }: pool connections checked out `idle in transaction` and never returned. */
  leakConnections: '/faults/leak-connections',
  /** { sessions?: number (default 3) }: sessions outside the pool, each `idle in transaction`. */
  idleInTransaction: '/faults/idle-in-transaction',
  /** { exitCode?: number (default 1) }: the process exits with it, right after answering. */
  crash: '/faults/crash',
  /** Clears every fault: slow routes, health status, leaked connections and idle sessions. */
  reset: '/faults/reset',
} as const;

export interface BackendFaultState {
  version: string;
  slowRoutes: Record<string, number>;
  healthStatus: number | null;
  leakedConnections: number;
  idleInTransactionSessions: number;
  pool: { max: number; total: number; idle: number; waiting: number };
  rateLimiter: 'redis' | 'memory';
}

/** The faults `breakAuditApp` / `runbooks sandbox break` know (faults.ts says what each does). */
export const AUDIT_APP_FAULTS = [
  'backend-stopped',
  'backend-crash',
  'slow-route',
  'leak-connections',
  'db-stopped',
  'redis-stopped',
  'idle-in-transaction',
  'slow-query',
  'db-corrupted',
  'etl-rate-limited',
  'etl-source-changed',
  'etl-disk-full',
  'etl-crash',
  'brute-force',
] as const;
export type AuditAppFault = (typeof AUDIT_APP_FAULTS)[number];

/** Container names are `<prefix>backend`, `<prefix>postgres`, `<prefix>redis`, `<prefix>etl`. */
export const DEFAULT_PREFIX = 'audit-app-';
/** Ports on 127.0.0.1 (host network): the API, the backend's fault knobs, PostgreSQL, Redis. */
export const DEFAULT_PORTS = { backend: 18180, admin: 18181, postgres: 15432, redis: 16379 } as const;

/** Metric names the tests and runbooks read. */
export const Metrics = {
  requestDuration: 'http_request_duration_seconds',
  rateLimited: 'http_requests_rate_limited_total',
  blocked: 'http_requests_blocked_total',
  info: 'audit_app_info',
  poolConnections: 'db_pool_connections',
  rateLimitInMemory: 'rate_limit_in_memory',
  dependencyUp: 'audit_app_dependency_up',
  documentsLastUpdated: 'audit_app_documents_last_updated_timestamp_seconds',
  failedLogins: 'audit_app_failed_logins_total',
} as const;

// ---- the ETL job (etl.ts, in the `<prefix>etl` container) --------------------------------------------------------
//
// The ETL of the runbook's §3: a pipeline that "downloads" the audit reports of each county and year from a source,
// parses them and upserts them into `documents`. Its container runs `node /app/etl.js daemon` as PID 1 (no init),
// which only logs that it is ready and waits; the pipeline runs by `docker exec`:
//
//   node /app/etl.js run [--county C]… [--year Y] [--from N] [--delay-ms D] [--records R] [--stop-when-stdin-closes]
//   node /app/etl.js status                      one JSON object (EtlStatus)
//   node /app/etl.js fault <name> [options]      sets a fault (EtlFaultName), prints EtlFaultState as JSON
//   node /app/etl.js fault clear                 clears them all (and removes the disk-full filler file)
//   node /app/etl.js clean-downloads             empties the downloads dir, prints { "removed", "freedBytes" }
//   node /app/etl.js daemon                      PID 1: logs `INFO etl daemon ready …`, idles until SIGTERM
//
// `run`: counties default to ETL_COUNTIES, the year to the current (UTC) one, records per county-year to
// DEFAULT_ETL_RECORDS, the delay between records to DEFAULT_ETL_DELAY_MS. Record i (1..R) of a county-year is the
// row (county, year, 'report-' + i zero-padded to 3 digits) of `documents`, upserted on documents_natural_key with
// its payload (deterministic from county, year and i, plus `retrieved_at` = now, so `updated_at` advances on every
// write). `--from N` starts the run's FIRST county-year at record N (the later ones at 1): a run that stopped after
// record i of county C resumes with `--county C [--county <the ones after>…] --from i+1`.
// `--stop-when-stdin-closes`: when stdin ends (the `docker exec` client that holds it open is gone) the run stops
// after the record it is writing, logs EtlLogPatterns.stopped and exits EtlExitCodes.stopped.
//
// Log lines, on stdout, one per line: `<ISO-8601 time> <LEVEL> <message>[ key=value …]` (EtlLogPatterns). Every
// `etl.js` process, also one started by `docker exec`, writes its log lines to the container's log too (PID 1's
// stdout, /proc/1/fd/1): `docker logs <prefix>etl` shows every run. `status`, `fault` and `clean-downloads` print
// only their JSON on stdout.

/** Where things are in the etl image. */
export const EtlPaths = {
  /** The program: `node /app/etl.js <command>`. */
  program: '/app/etl.js',
  /** The node binary in the image (also on PATH as `node`). */
  node: '/usr/bin/node',
  /** The argv prefix a runbook execs (the config's default `targets.etl.program`). */
  argv: ['node', '/app/etl.js'] as readonly string[],
  /** Downloads land here (a small tmpfs in the sandbox, so a full disk is a real ENOSPC). */
  downloadsDir: '/tmp/etl_downloads',
  /** faults.json and state.json (the runs); survives `docker restart`, not a new container. */
  stateDir: '/var/lib/etl',
} as const;

/** Environment of the etl container. */
export const EtlEnv = {
  databaseUrl: 'DATABASE_URL',
  /** Default EtlPaths.downloadsDir. */
  downloadsDir: 'ETL_DOWNLOADS_DIR',
  /** Default EtlPaths.stateDir. */
  stateDir: 'ETL_STATE_DIR',
  /** A Pushgateway (http://host:port) to push each run's times to (EtlMetrics); unset: nothing is pushed. */
  pushgatewayUrl: 'ETL_PUSHGATEWAY_URL',
} as const;

/**
 * What a run pushes to the Pushgateway when it ends (a batch job has no /metrics to scrape): the group job=`job`,
 * replaced whole each time. The shipped alert rules read them (deploy/prometheus/rules.yml, ETLJobFailed and
 * ETLJobNotRunning).
 */
export const EtlMetrics = {
  job: 'audit-app-etl',
  /** When the latest run ended, as Unix seconds. */
  lastRun: 'etl_last_run_timestamp_seconds',
  /** When the latest successful run ended, as Unix seconds; 0 while none has. */
  lastSuccess: 'etl_last_success_timestamp_seconds',
} as const;

/** Exit codes of `etl.js run` (and of the other commands: ok, usage, failed). */
export const EtlExitCodes = {
  ok: 0,
  /** Anything else that went wrong (the database unreachable…): `ERROR run failed: <message>`. */
  failed: 1,
  /** A bad command line: the reason on stderr. */
  usage: 2,
  rateLimited: 3,
  sourceChanged: 4,
  diskFull: 5,
  /** The pipeline crashed (EX_SOFTWARE). */
  crashed: 70,
  /** Stopped because stdin closed (EX_TEMPFAIL: resume with --from). */
  stopped: 75,
} as const;

/** `application_name` of the ETL's database sessions. */
export const ETL_APPLICATION_NAME = 'audit-app-etl';
/** The source's counties: a run without --county covers them all, in this order. */
export const ETL_COUNTIES = ['Kisumu', 'Machakos', 'Mombasa', 'Nairobi', 'Nakuru', 'Turkana'] as const;
/** Records per county-year (`--records`). */
export const DEFAULT_ETL_RECORDS = 40;
/** Milliseconds between two records (`--delay-ms`). */
export const DEFAULT_ETL_DELAY_MS = 20;
/** The rate-limited fault's default: runs with --delay-ms under it fail on their 3rd record. */
export const DEFAULT_ETL_MIN_DELAY_MS = 200;
/** The crash fault's default: the next run crashes after writing this many records. */
export const DEFAULT_ETL_CRASH_AFTER = 5;
/** The `action` of an audit row for a failed login: the backend counts them per client (Metrics.failedLogins). */
export const LOGIN_FAILED_ACTION = 'login-failed';
/** The brute-force fault's client (TEST-NET-3, never a real host), its failed logins and the users it tries. */
export const BRUTE_FORCE = { ip: '203.0.113.66', attempts: 30, action: LOGIN_FAILED_ACTION, users: ['admin', 'root', 'alice'] } as const;
/** The `report_type` of record i: report-001 … */
export const etlReportType = (record: number): string => `report-${String(record).padStart(3, '0')}`;
/** The selector the parser looks for (the source-changed fault makes the source serve a page without it). */
export const ETL_SOURCE_SELECTOR = 'table.audit-reports';

/**
 * The log lines a client reads (each line is `<ISO time> <LEVEL> <message>[ key=value …]`; these match anywhere in
 * a line, so a `docker logs` line matches as it is).
 */
export const EtlLogPatterns = {
  /** Any line: time, level, the rest. */
  line: /^(\S+) (INFO|WARN|ERROR|FATAL) (.*)$/,
  /** PID 1 is up: `INFO etl daemon ready pid=1 downloads=<dir>`. */
  daemonReady: /\bINFO etl daemon ready\b/,
  /** `INFO run started run=<id> counties=<n> year=<Y> from=<N> delay_ms=<D>` */
  runStarted: /\bINFO run started run=(\S+) counties=(\d+) year=(\d+) from=(\d+) delay_ms=(\d+)/,
  /** `INFO wrote record county=<C> year=<Y> record=<i> of=<R>`, once per upsert. */
  wroteRecord: /\bINFO wrote record county=(\S+) year=(\d+) record=(\d+) of=(\d+)/,
  /** `INFO run finished run=<id> written=<n> seconds=<s>` */
  runFinished: /\bINFO run finished run=(\S+) written=(\d+) seconds=([\d.]+)/,
  /** `ERROR rate limited by source: HTTP 429 Too Many Requests (delay_ms=<D> is under the source's <M> ms) county=… year=… record=…` (exit 3) */
  rateLimited: /\bERROR rate limited by source: HTTP 429 Too Many Requests \(delay_ms=(\d+) is under the source's (\d+) ms\) county=(\S+) year=(\d+) record=(\d+)/,
  /** `ERROR source format changed: selector "table.audit-reports" matched nothing county=… year=… record=…` (exit 4) */
  sourceChanged: /\bERROR source format changed: selector "([^"]+)" matched nothing county=(\S+) year=(\d+) record=(\d+)/,
  /** `ERROR disk full: ENOSPC: no space left on device, write '<path>'` (exit 5) */
  diskFull: /\bERROR disk full: ENOSPC: no space left on device, write '([^']+)'/,
  /** `FATAL crashed: <reason> after record=<i>` (exit 70) */
  crashed: /\bFATAL crashed: (.*) after record=(\d+)/,
  /** `WARN stdin closed: stopping after record=<i>` (exit 75; i is 0 when nothing was written yet) */
  stopped: /\bWARN stdin closed: stopping after record=(\d+)/,
  /** `ERROR run failed: <message>` (exit 1) */
  failed: /\bERROR run failed: (.*)/,
} as const;

/** The faults `etl.js fault <name>` sets (in <stateDir>/faults.json). */
export const ETL_FAULTS = ['rate-limited', 'source-changed', 'disk-full', 'crash'] as const;
export type EtlFaultName = (typeof ETL_FAULTS)[number];

/** What `etl.js fault …` prints and `status` shows under `faults`. */
export interface EtlFaultState {
  /** Runs with delay_ms < minDelayMs fail on their 3rd record with HTTP 429. */
  rateLimited: { minDelayMs: number } | null;
  /** Every run fails on its first record: the page no longer has ETL_SOURCE_SELECTOR. */
  sourceChanged: boolean;
  /** The filler file that made the downloads dir full; null once it is gone (clean-downloads, rm). */
  diskFull: { file: string; bytes: number } | null;
  /** The next run crashes after writing `after` records; cleared when it fires. */
  crash: { after: number } | null;
}

/** A run of `etl.js run`, as `status` shows it. */
export interface EtlRun {
  id: string;
  startedAt: string;
  finishedAt: string;
  ok: boolean;
  counties: string[];
  year: number;
  from: number;
  records: number;
  delayMs: number;
  written: number;
  /** null: the process was killed (no exit of its own), e.g. by a `docker restart` of the container. */
  exitCode: number | null;
  /** The ERROR/FATAL/WARN line's message when it did not succeed. */
  error?: string;
}

/** What `etl.js status` prints. */
export interface EtlStatus {
  /** The run that finished last (whatever its outcome). */
  lastRun: EtlRun | null;
  lastSuccess: EtlRun | null;
  /** Runs in progress now (their process is alive). */
  running: Array<Omit<EtlRun, 'finishedAt' | 'ok' | 'exitCode'> & { pid: number }>;
  downloads: { dir: string; freeBytes: number; totalBytes: number; files: number };
  faults: EtlFaultState;
}
