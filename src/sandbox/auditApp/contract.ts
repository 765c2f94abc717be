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
} as const;

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
] as const;
export type AuditAppFault = (typeof AUDIT_APP_FAULTS)[number];

/** Container names are `<prefix>backend`, `<prefix>postgres`, `<prefix>redis`. */
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
} as const;
