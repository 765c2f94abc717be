/**
 * The audit-app backend: a small HTTP API standing in for the real one, run by this machine's `node` in the
 * `runbooks-audit-app-backend` image (bundled with contract.ts; pg, ioredis and prom-client come from node_modules).
 * Environment: contract.ts BackendEnv. Everything listens on 127.0.0.1.
 *
 *   GET  /health                         200 when `SELECT 1 FROM documents LIMIT 1` answers within HEALTH_TIMEOUT_MS, else
 *                                        503 with the error (the database down, the pool exhausted, the table lost);
 *                                        with the version
 *   GET  /metrics                        Prometheus text: http_request_duration_seconds{method,route,status}, 429 and
 *                                        403 counters, pool gauges, audit_app_info{version}, whether the database and
 *                                        Redis answer, the newest document's updated_at, failed logins per client,
 *                                        process metrics
 *   GET  /api/v1/documents?county=&year= rows of `documents`
 *   GET  /api/v1/counties                counties with their document count
 *   POST /api/v1/audit                   { action, details? } + X-User-Id → a row of audit_log with the client IP
 *
 * /api/* is rate limited per client in Redis (`rate_limit:<ip>`, INCR + EXPIRE per window; the limit in
 * `config:rate_limit:limit`), in memory while Redis is unreachable; clients in `blocklist:ips` get 403, those in
 * `allowlist:ips` are never limited. The client is the socket's address, or the last X-Forwarded-For entry when
 * the socket is 127.0.0.1 (the trusted proxy). One log line per request on stdout:
 *   <time> <ip> <METHOD> <path> duration <ms>ms status=<status> user=<id>
 * and `<time> WARN Rate limit exceeded <ip>` for each 429 (the IP is the last field, as the runbook's awk expects).
 *
 * Fault knobs: POST on the admin port (contract.ts AdminRoutes), or FAULT_* variables at start.
 * `node /app/server.js migrate up | down --to N | current`: the schema migrations (migrations.ts), then exits.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { isIP } from 'node:net';
import Redis from 'ioredis';
import { Client, Pool, type PoolClient } from 'pg';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  AdminRoutes,
  ApiRoutes,
  BACKEND_APPLICATION_NAME,
  BackendEnv,
  DEFAULT_POOL_SIZE,
  DEFAULT_RATE_LIMIT,
  DEFAULT_RATE_LIMIT_WINDOW_SECONDS,
  LOGIN_FAILED_ACTION,
  Metrics,
  RedisKeys,
  type BackendFaultState,
} from './contract';
import { redactUrl } from '../../logging/redact';
import { migrateCommand } from './migrations';

// ---- configuration ------------------------------------------------------------------------------------------

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    log('FATAL', `${name}=${raw} is not a whole number`);
    process.exit(2);
  }
  return value;
}

function readVersion(): string {
  const fromEnv = process.env[BackendEnv.version];
  if (fromEnv) return fromEnv;
  try {
    return fs.readFileSync('/app/VERSION', 'utf8').trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

const HOST = '127.0.0.1';
const port = intEnv(BackendEnv.port, 8080);
const settings = {
  port,
  adminPort: intEnv(BackendEnv.adminPort, port + 1),
  databaseUrl: process.env[BackendEnv.databaseUrl] || 'postgres://postgres@127.0.0.1:5432/audit_app',
  redisUrl: process.env[BackendEnv.redisUrl] || 'redis://127.0.0.1:6379',
  poolSize: Math.max(1, intEnv(BackendEnv.poolSize, DEFAULT_POOL_SIZE)),
  poolTimeoutMs: intEnv(BackendEnv.poolTimeoutMs, 2_000),
  healthTimeoutMs: intEnv(BackendEnv.healthTimeoutMs, 1_000),
  rateLimit: intEnv(BackendEnv.rateLimit, DEFAULT_RATE_LIMIT),
  windowSeconds: Math.max(1, intEnv(BackendEnv.rateLimitWindowSeconds, DEFAULT_RATE_LIMIT_WINDOW_SECONDS)),
  version: readVersion(),
};

function log(level: string, message: string): void {
  process.stdout.write(`${new Date().toISOString()} ${level} ${message}\n`);
}

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---- metrics ------------------------------------------------------------------------------------------------

const registry = new Registry();
collectDefaultMetrics({ register: registry });
const requestDuration = new Histogram({
  name: Metrics.requestDuration,
  help: 'HTTP request duration in seconds, by method, route and status',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});
const rateLimitedTotal = new Counter({
  name: Metrics.rateLimited,
  help: 'Requests answered 429 Too Many Requests by the rate limiter',
  labelNames: ['route'] as const,
  registers: [registry],
});
const blockedTotal = new Counter({
  name: Metrics.blocked,
  help: 'Requests answered 403 because the client is in the blocklist',
  labelNames: ['route'] as const,
  registers: [registry],
});
new Gauge({
  name: Metrics.info,
  help: 'The running version of the audit-app backend (always 1)',
  labelNames: ['version'] as const,
  registers: [registry],
}).set({ version: settings.version }, 1);
new Gauge({
  name: Metrics.poolConnections,
  help: 'Database pool: max (its size), total (open), idle, waiting (requests queued for a connection)',
  labelNames: ['state'] as const,
  registers: [registry],
  collect() {
    this.set({ state: 'max' }, settings.poolSize);
    this.set({ state: 'total' }, pool.totalCount);
    this.set({ state: 'idle' }, pool.idleCount);
    this.set({ state: 'waiting' }, pool.waitingCount);
  },
});
new Gauge({
  name: Metrics.rateLimitInMemory,
  help: '1 while Redis is unreachable and rate limiting falls back to in-memory counters',
  registers: [registry],
  collect() {
    this.set(limiter.inMemory ? 1 : 0);
  },
});
const failedLogins = new Counter({
  name: Metrics.failedLogins,
  help: `Audit rows with action "${LOGIN_FAILED_ACTION}", by client IP (what a brute-force alert needs to name the source)`,
  labelNames: ['ip'] as const,
  registers: [registry],
});
new Gauge({
  name: Metrics.dependencyUp,
  help: 'Whether a dependency answers at scrape time: database (SELECT 1 on a connection of its own, not the pool), redis',
  labelNames: ['dependency'] as const,
  registers: [registry],
  async collect() {
    this.set({ dependency: 'database' }, (await databaseFactsOfThisScrape()).up ? 1 : 0);
    this.set({ dependency: 'redis' }, redis.status === 'ready' ? 1 : 0);
  },
});
new Gauge({
  name: Metrics.documentsLastUpdated,
  help: 'MAX(updated_at) of documents, as Unix seconds: how fresh the data the ETL loads is (absent while unknown)',
  registers: [registry],
  async collect() {
    const { lastUpdated } = await databaseFactsOfThisScrape();
    this.reset();
    if (lastUpdated !== null) this.set(lastUpdated.getTime() / 1000);
  },
});

// ---- database -----------------------------------------------------------------------------------------------

const pool = new Pool({
  connectionString: settings.databaseUrl,
  max: settings.poolSize,
  connectionTimeoutMillis: settings.poolTimeoutMs,
  idleTimeoutMillis: 30_000,
  application_name: BACKEND_APPLICATION_NAME,
});
// An idle connection the server drops (a restart, pg_terminate_backend) must not crash the process.
pool.on('error', (err) => log('ERROR', `database: idle connection lost: ${firstLine(err)}`));

const DEPENDENCY_CHECK_MS = 300;
/** Its own name, so the runbooks' counts of the backend's sessions never include a scrape's. */
const METRICS_APPLICATION_NAME = `${BACKEND_APPLICATION_NAME}-metrics`;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  promise.catch(() => {}); // a late failure after the timeout is nobody's business
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

/**
 * Whether the database answers and the newest document's time, for /metrics. A connection of its own, so an exhausted
 * pool does not read as a database down; bounded well under a 1 s scrape interval so a hung database cannot fail the
 * scrape (which would read as the API down).
 */
async function databaseFacts(): Promise<{ up: boolean; lastUpdated: Date | null }> {
  const client = new Client({ connectionString: settings.databaseUrl, connectionTimeoutMillis: DEPENDENCY_CHECK_MS, application_name: METRICS_APPLICATION_NAME });
  client.on('error', () => {});
  try {
    await withTimeout(client.connect(), DEPENDENCY_CHECK_MS, 'connect');
    await withTimeout(client.query('SELECT 1'), DEPENDENCY_CHECK_MS, 'SELECT 1');
    // The table may be gone (a corrupted database) while the server answers: then no freshness, but up.
    const newest = await withTimeout(client.query<{ at: Date | null }>('SELECT MAX(updated_at) AS at FROM documents'), DEPENDENCY_CHECK_MS, 'MAX(updated_at)').catch(() => undefined);
    return { up: true, lastUpdated: newest?.rows[0]?.at ?? null };
  } catch {
    return { up: false, lastUpdated: null };
  } finally {
    void client.end().catch(() => {});
  }
}

let factsInFlight: ReturnType<typeof databaseFacts> | undefined;

/** One database check per scrape: the gauges collected together share the check in flight. */
function databaseFactsOfThisScrape(): ReturnType<typeof databaseFacts> {
  factsInFlight ??= databaseFacts().finally(() => (factsInFlight = undefined));
  return factsInFlight;
}

// ---- rate limiting ------------------------------------------------------------------------------------------

const redis = new Redis(settings.redisUrl, {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 500,
  connectTimeout: 1_000,
  retryStrategy: () => 1_000,
});
redis.on('error', () => {}); // state changes are logged by the limiter; ioredis reports every reconnect attempt

// One round trip, atomic: blocklist, allowlist, INCR + EXPIRE of the client's counter, the configured limit.
const ADMIT_SCRIPT = `
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return {-1, 0, 0} end
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then return {-2, 0, 0} end
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
local limit = tonumber(redis.call('GET', KEYS[2]) or '') or tonumber(ARGV[3])
return {count, limit, redis.call('TTL', KEYS[1])}
`;
redis.defineCommand('auditAppAdmit', { numberOfKeys: 4, lua: ADMIT_SCRIPT });
type AdmitReply = [number, number, number];
const admitInRedis = (ip: string): Promise<AdmitReply> =>
  (redis as unknown as { auditAppAdmit(...args: Array<string | number>): Promise<AdmitReply> }).auditAppAdmit(
    RedisKeys.rateLimit(ip),
    RedisKeys.rateLimitConfig,
    RedisKeys.blocklist,
    RedisKeys.allowlist,
    ip,
    settings.windowSeconds,
    settings.rateLimit,
  );

type Verdict = { allow: true } | { allow: false; status: 403 | 429; retryAfter?: number };

const limiter = {
  inMemory: false,
  /** The limit Redis last gave, kept for the in-memory fallback. */
  lastLimit: settings.rateLimit,
  counters: new Map<string, { count: number; resetAt: number }>(),

  async admit(ip: string): Promise<Verdict> {
    let reply: AdmitReply;
    try {
      reply = await admitInRedis(ip);
      if (this.inMemory) {
        this.inMemory = false;
        this.counters.clear();
        log('INFO', 'Redis is reachable again: rate limiting uses Redis');
      }
    } catch (err) {
      if (!this.inMemory) {
        this.inMemory = true;
        log('WARN', `Redis unavailable (${firstLine(err)}): rate limiting falls back to in-memory`);
      }
      return this.admitInMemory(ip);
    }
    const [count, limit, ttl] = reply;
    if (count === -1) return { allow: false, status: 403 };
    if (count === -2) return { allow: true };
    this.lastLimit = limit;
    return count > limit ? { allow: false, status: 429, retryAfter: Math.max(ttl, 1) } : { allow: true };
  },

  /** Fixed windows per client in this process; the blocklist is not known without Redis (fails open). */
  admitInMemory(ip: string): Verdict {
    const now = Date.now();
    if (this.counters.size > 10_000) for (const [key, c] of this.counters) if (c.resetAt <= now) this.counters.delete(key);
    let counter = this.counters.get(ip);
    if (!counter || counter.resetAt <= now) {
      counter = { count: 0, resetAt: now + settings.windowSeconds * 1000 };
      this.counters.set(ip, counter);
    }
    counter.count += 1;
    if (counter.count <= this.lastLimit) return { allow: true };
    return { allow: false, status: 429, retryAfter: Math.ceil((counter.resetAt - now) / 1000) };
  },
};

// ---- faults -------------------------------------------------------------------------------------------------

const faults = {
  /** route (an ApiRoutes value or '*') → added milliseconds */
  slow: new Map<string, number>(),
  healthStatus: null as number | null,
  leaked: new Set<PoolClient>(),
  idle: new Set<Client>(),
};

{
  const slowMs = intEnv(BackendEnv.faultSlowMs, 0);
  if (slowMs > 0) faults.slow.set(process.env[BackendEnv.faultSlowRoute] || '*', slowMs);
  const healthStatus = intEnv(BackendEnv.faultHealthStatus, 0);
  if (healthStatus) faults.healthStatus = healthStatus;
  const crashAfterMs = intEnv(BackendEnv.faultCrashAfterMs, 0);
  if (crashAfterMs) {
    setTimeout(() => {
      log('FATAL', `crashing (${BackendEnv.faultCrashAfterMs}=${crashAfterMs})`);
      process.exit(1);
    }, crashAfterMs);
  }
}

function slowMsFor(route: string): number {
  if (route === ApiRoutes.metrics) return 0;
  return faults.slow.get(route) ?? (route.startsWith('/api/') ? (faults.slow.get('*') ?? 0) : 0);
}

/** Checks out pool connections, opens a transaction on each and never returns them: the pool runs dry. */
async function leakConnections(count: number): Promise<number> {
  let leaked = 0;
  for (let i = 0; i < count; i++) {
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      log('WARN', `leak-connections: got ${leaked} of ${count}: ${firstLine(err)}`);
      break;
    }
    const release = (err?: Error) => {
      if (!faults.leaked.delete(client)) return;
      client.release(err ?? true); // destroy it: a connection in an unknown state goes back to no one
    };
    client.on('error', (err) => {
      log('WARN', `leaked connection lost: ${firstLine(err)}`);
      release(err);
    });
    faults.leaked.add(client);
    try {
      await client.query('BEGIN');
      await client.query("SELECT count(*) FROM documents /* audit-app: leaked connection */");
      leaked += 1;
    } catch (err) {
      release(err as Error);
      log('WARN', `leak-connections: ${firstLine(err)}`);
    }
  }
  log('WARN', `fault: ${faults.leaked.size} pool connection(s) leaked idle in transaction (pool size ${settings.poolSize})`);
  return leaked;
}

/** Sessions outside the pool, each left `idle in transaction` with a transaction id assigned. */
async function openIdleSessions(sessions: number): Promise<number> {
  let opened = 0;
  for (let i = 0; i < sessions; i++) {
    const client = new Client({ connectionString: settings.databaseUrl, application_name: BACKEND_APPLICATION_NAME, connectionTimeoutMillis: 5_000 });
    client.on('error', (err) => {
      if (faults.idle.delete(client)) log('WARN', `idle-in-transaction session lost: ${firstLine(err)}`);
    });
    try {
      await client.connect();
      await client.query('BEGIN');
      await client.query('SELECT txid_current() /* audit-app: idle in transaction */');
      faults.idle.add(client);
      opened += 1;
    } catch (err) {
      log('WARN', `idle-in-transaction: opened ${opened} of ${sessions}: ${firstLine(err)}`);
      await client.end().catch(() => {});
      break;
    }
  }
  log('WARN', `fault: ${faults.idle.size} session(s) idle in transaction`);
  return opened;
}

async function resetFaults(): Promise<void> {
  faults.slow.clear();
  faults.healthStatus = null;
  for (const client of [...faults.leaked]) {
    faults.leaked.delete(client);
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
  for (const client of [...faults.idle]) {
    faults.idle.delete(client);
    await client.end().catch(() => {});
  }
  log('INFO', 'fault: all faults cleared');
}

function faultState(): BackendFaultState {
  return {
    version: settings.version,
    slowRoutes: Object.fromEntries(faults.slow),
    healthStatus: faults.healthStatus,
    leakedConnections: faults.leaked.size,
    idleInTransactionSessions: faults.idle.size,
    pool: { max: settings.poolSize, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount },
    rateLimiter: limiter.inMemory ? 'memory' : 'redis',
  };
}

// ---- HTTP plumbing ------------------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): number {
  const text = typeof body === 'string' ? body : `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', ...headers });
  res.end(text);
  return status;
}

async function readJson(req: http.IncomingMessage, limit = 64 * 1024): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'body must be a JSON object');
  return body as Record<string, unknown>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1']);
const normalizeIp = (ip: string) => (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip);

/** The socket's address; X-Forwarded-For (its last entry) only when the socket is 127.0.0.1, the trusted proxy. */
function clientIp(req: http.IncomingMessage): string {
  const socketIp = normalizeIp(req.socket.remoteAddress ?? 'unknown');
  const forwarded = req.headers['x-forwarded-for'];
  if (!LOOPBACK.has(socketIp) || !forwarded) return socketIp;
  const last = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded).split(',').pop()?.trim() ?? '';
  return isIP(last) ? normalizeIp(last) : socketIp;
}

function optionalInt(value: string | null, name: string): number | null {
  if (value === null || value === '') return null;
  if (!/^-?\d{1,9}$/.test(value)) throw new HttpError(400, `${name} must be a whole number`);
  return Number(value);
}

// ---- API routes ---------------------------------------------------------------------------------------------

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL, ip: string) => Promise<number>;

const HEALTH_QUERY = 'SELECT 1 FROM documents LIMIT 1';

async function health(_req: http.IncomingMessage, res: http.ServerResponse): Promise<number> {
  const redisState = redis.status === 'ready' ? 'ok' : 'unavailable';
  if (faults.healthStatus !== null) {
    return send(res, faults.healthStatus, { status: 'faulty', version: settings.version, fault: `health answers ${faults.healthStatus}` });
  }
  try {
    // A read of the data, not just `SELECT 1`: a database that answers but lost its table is not healthy.
    await withTimeout(pool.query(HEALTH_QUERY), settings.healthTimeoutMs, HEALTH_QUERY);
    return send(res, 200, { status: 'ok', version: settings.version, database: 'ok', redis: redisState });
  } catch (err) {
    return send(res, 503, { status: 'unavailable', version: settings.version, database: firstLine(err), redis: redisState });
  }
}

async function metrics(_req: http.IncomingMessage, res: http.ServerResponse): Promise<number> {
  return send(res, 200, await registry.metrics(), { 'content-type': registry.contentType });
}

async function documents(_req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<number> {
  const county = url.searchParams.get('county') || null;
  const year = optionalInt(url.searchParams.get('year'), 'year');
  if (county !== null && county.length > 100) throw new HttpError(400, 'county is at most 100 characters');
  const { rows } = await pool.query(
    `SELECT id, county, year, report_type, updated_at, payload FROM documents
      WHERE ($1::text IS NULL OR county = $1) AND ($2::int IS NULL OR year = $2)
      ORDER BY county, year, report_type LIMIT 500`,
    [county, year],
  );
  return send(res, 200, { documents: rows });
}

async function counties(_req: http.IncomingMessage, res: http.ServerResponse): Promise<number> {
  const { rows } = await pool.query(
    'SELECT county, count(*)::int AS documents, max(updated_at) AS updated_at FROM documents GROUP BY county ORDER BY county',
  );
  return send(res, 200, { counties: rows });
}

async function audit(req: http.IncomingMessage, res: http.ServerResponse, _url: URL, ip: string): Promise<number> {
  const body = await readJson(req);
  const action = body.action;
  if (typeof action !== 'string' || action.length === 0 || action.length > 100) throw new HttpError(400, 'action: a string of 1-100 characters');
  const details = body.details ?? {};
  if (details === null || typeof details !== 'object' || Array.isArray(details)) throw new HttpError(400, 'details: a JSON object');
  const user = req.headers['x-user-id'];
  const userId = typeof user === 'string' && user.length > 0 ? user.slice(0, 100) : null;
  const { rows } = await pool.query<{ id: string; at: Date }>(
    'INSERT INTO audit_log (ip, user_id, action, details) VALUES ($1, $2, $3, $4) RETURNING id, at',
    [isIP(ip) ? ip : null, userId, action, details],
  );
  if (action === LOGIN_FAILED_ACTION) failedLogins.inc({ ip });
  return send(res, 201, rows[0]);
}

const api: Record<string, { method: string; handler: Handler; limited: boolean }> = {
  [ApiRoutes.health]: { method: 'GET', handler: health, limited: false },
  [ApiRoutes.metrics]: { method: 'GET', handler: metrics, limited: false },
  [ApiRoutes.documents]: { method: 'GET', handler: documents, limited: true },
  [ApiRoutes.counties]: { method: 'GET', handler: counties, limited: true },
  [ApiRoutes.audit]: { method: 'POST', handler: audit, limited: true },
};

async function handleApi(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const started = process.hrtime.bigint();
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://backend');
  const ip = clientIp(req);
  const entry = api[url.pathname];
  const route = entry ? url.pathname : 'unmatched';
  let status = 500;
  try {
    if (!entry) status = send(res, 404, { error: 'not found' });
    else if (entry.method !== method) status = send(res, 405, { error: `use ${entry.method}` }, { allow: entry.method });
    else {
      const verdict = entry.limited ? await limiter.admit(ip) : ({ allow: true } as const);
      if (!verdict.allow && verdict.status === 403) {
        blockedTotal.inc({ route });
        log('WARN', `Blocked ${ip}`);
        status = send(res, 403, { error: 'forbidden' });
      } else if (!verdict.allow) {
        rateLimitedTotal.inc({ route });
        log('WARN', `Rate limit exceeded ${ip}`);
        status = send(res, 429, { error: 'too many requests' }, { 'retry-after': String(verdict.retryAfter ?? 1) });
      } else {
        const slowMs = slowMsFor(route);
        if (slowMs > 0) await sleep(slowMs);
        status = await entry.handler(req, res, url, ip);
      }
    }
  } catch (err) {
    if (err instanceof HttpError) status = send(res, err.status, { error: err.message });
    else {
      log('ERROR', `${method} ${route}: ${firstLine(err)}`);
      status = res.headersSent ? 500 : send(res, 500, { error: firstLine(err) });
    }
  } finally {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    requestDuration.observe({ method, route, status: String(status) }, seconds);
    const user = req.headers['x-user-id'];
    process.stdout.write(
      `${new Date().toISOString()} ${ip} ${method} ${url.pathname}${url.search} duration ${(seconds * 1000).toFixed(1)}ms status=${status} user=${typeof user === 'string' && user ? user : '-'}\n`,
    );
  }
}

// ---- admin (fault knobs) ------------------------------------------------------------------------------------

function knob(body: Record<string, unknown>, name: string, fallback: number, max: number): number {
  const value = body[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) throw new HttpError(400, `${name}: a whole number 0-${max}`);
  return value;
}

async function handleAdmin(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  try {
    if (req.method === 'GET' && url.pathname === AdminRoutes.faults) {
      send(res, 200, faultState());
      return;
    }
    if (req.method !== 'POST') throw new HttpError(405, 'fault knobs are POST');
    const body = await readJson(req);
    switch (url.pathname) {
      case AdminRoutes.slow: {
        const route = body.route ?? ApiRoutes.documents;
        if (typeof route !== 'string' || (route !== '*' && !(route in api))) throw new HttpError(400, `route: "*" or one of ${Object.keys(api).join(', ')}`);
        const ms = knob(body, 'ms', 1_000, 600_000);
        if (ms === 0) faults.slow.delete(route);
        else faults.slow.set(route, ms);
        log('WARN', `fault: ${route} is ${ms} ms slower`);
        break;
      }
      case AdminRoutes.health: {
        const status = knob(body, 'status', 500, 599);
        faults.healthStatus = status === 0 ? null : status;
        log('WARN', `fault: /health answers ${status === 0 ? 'as the database says' : status}`);
        break;
      }
      case AdminRoutes.leakConnections:
        await leakConnections(knob(body, 'count', settings.poolSize, 1_000));
        break;
      case AdminRoutes.idleInTransaction:
        await openIdleSessions(knob(body, 'sessions', 3, 1_000));
        break;
      case AdminRoutes.crash: {
        const exitCode = knob(body, 'exitCode', 1, 255);
        if (exitCode === 0) throw new HttpError(400, 'exitCode: 1-255 (a crash exits non-zero)');
        send(res, 202, { crashing: exitCode });
        log('FATAL', `crash requested (fault knob): exiting with code ${exitCode}`);
        setTimeout(() => process.exit(exitCode), 50);
        return;
      }
      case AdminRoutes.reset:
        await resetFaults();
        break;
      default:
        throw new HttpError(404, `no fault knob ${url.pathname}; try GET ${AdminRoutes.faults}`);
    }
    send(res, 200, faultState());
  } catch (err) {
    send(res, err instanceof HttpError ? err.status : 500, { error: firstLine(err) });
  }
}

// ---- start and stop -----------------------------------------------------------------------------------------

const apiServer = http.createServer((req, res) => void handleApi(req, res));
const adminServer = http.createServer((req, res) => void handleAdmin(req, res));

function listen(server: http.Server, port: number, what: string): Promise<void> {
  return new Promise((resolve) => {
    server.once('error', (err) => {
      log('FATAL', `cannot listen on ${HOST}:${port} (${what}): ${firstLine(err)}`);
      process.exit(1);
    });
    server.listen(port, HOST, resolve);
  });
}

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log('INFO', `${signal}: shutting down`);
  apiServer.close();
  adminServer.close();
  redis.disconnect();
  await withTimeout(resetFaults().then(() => pool.end()), 2_000, 'closing the pool').catch(() => {});
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

/** `server.js migrate …` runs the schema migrations (migrations.ts) and exits; anything else serves. */
async function serve(): Promise<void> {
  await listen(apiServer, settings.port, 'API');
  await listen(adminServer, settings.adminPort, 'admin');
  log(
    'INFO',
    `audit-app backend ${settings.version} listening on ${HOST}:${settings.port} (admin ${HOST}:${settings.adminPort}); ` +
      `database ${redactUrl(settings.databaseUrl)} (pool ${settings.poolSize}); redis ${redactUrl(settings.redisUrl)}; ` +
      `rate limit ${settings.rateLimit} per ${settings.windowSeconds} s unless ${RedisKeys.rateLimitConfig} says otherwise`,
  );
}

if (process.argv[2] === 'migrate') void migrateCommand(process.argv.slice(3)).then((code) => process.exit(code));
else void serve();
