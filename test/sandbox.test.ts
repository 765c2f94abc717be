// The audit-app sandbox against real containers: PostgreSQL 15, the Node backend and Redis built from this machine's
// binaries (the harness builds the images once per run), on free ports with a random prefix. The faults are broken
// for real and observed the way an operator would: HTTP, pg_stat_activity, Prometheus metrics, docker inspect.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import Redis from 'ioredis';
import { Client as PgClient } from 'pg';
import {
  BACKUP_DIR,
  REDIS_IMAGE,
  RedisKeys,
  auditAppTargets,
  backendFaults,
  breakAuditApp,
  containerLogTail,
  removeAuditApp,
  resetBackendFaults,
  startAuditApp,
  type AuditApp,
} from '../src/sandbox/auditApp';
import { parseConfig } from '../src/config/load';
import { histogramSeries, latencyByRoute } from '../src/metrics/histogram';
import { TEST_LABEL } from './harness/dockerd';
import { freePorts } from './harness/util';
import { requireEnv } from './support/env';
import { promtoolCheckMetrics, sampleValue, samples } from './support/prometheus';
import { testDocker } from './support/sandbox';
import { eventually, waitFor } from './support/wait';

const BIN = path.resolve(__dirname, '..', 'bin', 'runbooks.js');
const POOL_SIZE = 3;

/** `docker exec` with an argv array: exit code and output. */
async function exec(docker: Docker, container: string, cmd: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const run = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await run.start({});
  const out = { stdout: '', stderr: '' };
  const stdout = new PassThrough().on('data', (d: Buffer) => (out.stdout += d.toString()));
  const stderr = new PassThrough().on('data', (d: Buffer) => (out.stderr += d.toString()));
  docker.modem.demuxStream(stream, stdout, stderr);
  await new Promise<void>((resolve, reject) => stream.on('end', resolve).on('error', reject));
  const { ExitCode } = await run.inspect();
  return { exitCode: ExitCode ?? -1, ...out };
}

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, DOCKER_HOST: requireEnv('DOCKER_HOST') }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
  ms: number;
}

async function request(url: string, init: RequestInit = {}, timeoutMs = 10_000): Promise<Answer> {
  const started = Date.now();
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  return { status: response.status, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { text }, ms: Date.now() - started };
}

const from = (ip: string): RequestInit => ({ headers: { 'x-forwarded-for': ip } });

describe('the audit-app sandbox, for real', () => {
  let docker: Docker;
  let app: AuditApp;
  let redis: Redis;
  let pg: PgClient;
  const prefix = `sbx-${randomBytes(3).toString('hex')}-`;

  const metricsText = async () => (await request(app.urls.metrics)).body.text as string;
  const metrics = async () => samples(await metricsText());
  const psql = (sql: string) => exec(docker, app.containers.postgres, ['psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-U', 'postgres', '-d', 'audit_app', '-c', sql]);
  const activity = async (where: string) =>
    (await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'audit_app' AND ${where}`)).rows[0]!.n;

  before(async () => {
    docker = testDocker();
    const [backend, admin, postgres, redisPort] = await freePorts(4);
    app = await startAuditApp(docker, {
      prefix,
      ports: { backend: backend!, admin: admin!, postgres: postgres!, redis: redisPort! },
      poolSize: POOL_SIZE,
      // Requests wait at most 1 s for a pool connection, so the exhausted pool shows quickly.
      backendEnv: { DB_POOL_TIMEOUT_MS: '1000' },
      labels: { [TEST_LABEL]: 'true' },
    });
    redis = new Redis(app.urls.redis, { lazyConnect: true, maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
    await redis.connect();
    pg = new PgClient({ connectionString: app.urls.database, application_name: 'sandbox-test' });
    pg.on('error', () => {});
    await pg.connect();
  });

  after(async () => {
    redis?.disconnect();
    await pg?.end().catch(() => {});
    await removeAuditApp(docker, prefix);
  });

  test('up: the backend answers /health 200 because its database answers, with its version; the API serves documents', async () => {
    const health = await request(app.urls.health);
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: 'ok', version: '1.0.0', database: 'ok', redis: 'ok' });

    const counties = await request(`${app.urls.api}/api/v1/counties`);
    assert.equal(counties.status, 200);
    assert.deepEqual(
      (counties.body.counties as Array<{ county: string }>).map((c) => c.county),
      ['Kisumu', 'Machakos', 'Mombasa', 'Nairobi', 'Nakuru', 'Turkana'],
    );
    const nairobi2022 = await request(`${app.urls.api}/api/v1/documents?county=Nairobi&year=2022`);
    assert.equal((nairobi2022.body.documents as unknown[]).length, 1);
    assert.equal((await request(`${app.urls.api}/api/v1/documents?year=soon`)).status, 400);

    const written = await request(`${app.urls.api}/api/v1/audit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'alice', 'x-forwarded-for': '203.0.113.7' },
      body: JSON.stringify({ action: 'export', details: { county: 'Nairobi' } }),
    });
    assert.equal(written.status, 201, JSON.stringify(written.body));
    const { rows } = await pg.query('SELECT host(ip) AS ip, user_id, action, details FROM audit_log WHERE id = $1', [written.body.id]);
    assert.deepEqual(rows, [{ ip: '203.0.113.7', user_id: 'alice', action: 'export', details: { county: 'Nairobi' } }]);

    // The natural key: the ETL's upsert (etl.ts) of every document again updates each one in place and adds no row.
    const documents = async () => (await pg.query<{ n: number }>('SELECT count(*)::int AS n FROM documents')).rows[0]!.n;
    const rowsBefore = await documents();
    const upsert = `INSERT INTO documents (county, year, report_type, payload) SELECT county, year, report_type, payload FROM documents
                    ON CONFLICT ON CONSTRAINT documents_natural_key DO UPDATE SET payload = EXCLUDED.payload, updated_at = now()`;
    assert.equal((await pg.query(upsert)).rowCount, rowsBefore);
    assert.equal(await documents(), rowsBefore);

    const logs = await containerLogTail(docker, app.containers.backend, 20);
    assert.match(logs, /203\.0\.113\.7 POST \/api\/v1\/audit duration [\d.]+ms status=201 user=alice/);
  });

  test('/metrics is Prometheus text (promtool) with http_request_duration_seconds by route and status, and the version', async () => {
    await request(`${app.urls.api}/api/v1/counties`);
    const text = (await request(app.urls.metrics)).body.text as string;
    const verdict = await promtoolCheckMetrics(text);
    assert.notEqual(verdict.exitCode, 1, `not the Prometheus text format: ${verdict.problems.join(' | ')}`);
    // Lint findings only for prom-client's default nodejs_* gauges named *_total; ours lint clean.
    assert.deepEqual(
      verdict.problems.filter((p) => !/^nodejs_\w+ non-counter metrics should not have "_total" suffix$/.test(p)),
      [],
    );
    const all = samples(text);
    const route = { method: 'GET', route: '/api/v1/counties', status: '200' };
    const count = sampleValue(all, 'http_request_duration_seconds_count', route);
    assert.ok(count !== undefined && count >= 2, `count ${count}`);
    assert.equal(sampleValue(all, 'http_request_duration_seconds_bucket', { ...route, le: '+Inf' }), count);
    assert.ok((sampleValue(all, 'http_request_duration_seconds_sum', route) ?? 0) > 0);
    assert.equal(sampleValue(all, 'audit_app_info', { version: '1.0.0' }), 1);
    assert.equal(sampleValue(all, 'db_pool_connections', { state: 'max' }), POOL_SIZE);
  });

  test('/metrics says what the shipped alert rules read: the database and Redis answer, the newest document, failed logins per client', async () => {
    const failedLogin = { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.23' }, body: JSON.stringify({ action: 'login-failed' }) };
    for (let i = 0; i < 2; i++) assert.equal((await request(`${app.urls.api}/api/v1/audit`, failedLogin)).status, 201);
    const all = await metrics();
    assert.equal(sampleValue(all, 'audit_app_dependency_up', { dependency: 'database' }), 1);
    assert.equal(sampleValue(all, 'audit_app_dependency_up', { dependency: 'redis' }), 1);
    const { rows } = await pg.query<{ at: number }>('SELECT extract(epoch FROM MAX(updated_at))::float8 AS at FROM documents');
    // To the millisecond: PostgreSQL keeps microseconds, a JavaScript Date does not.
    const newest = sampleValue(all, 'audit_app_documents_last_updated_timestamp_seconds');
    assert.ok(newest !== undefined && Math.abs(newest - rows[0]!.at) < 0.001, `${newest} against MAX(updated_at) ${rows[0]!.at}`);
    assert.equal(sampleValue(all, 'audit_app_failed_logins_total', { ip: '198.51.100.23' }), 2);
  });

  test('rate limiting: one client over the limit in config:rate_limit:limit gets 429, keyed rate_limit:<ip> in Redis; a client in blocklist:ips gets 403', async () => {
    await redis.set(RedisKeys.rateLimitConfig, '3');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await request(`${app.urls.api}/api/v1/counties`, from('198.51.100.1'))).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    assert.equal((await request(`${app.urls.api}/api/v1/counties`, from('198.51.100.2'))).status, 200, 'another client is not limited');
    assert.equal(await redis.get(RedisKeys.rateLimit('198.51.100.1')), '5');
    const ttl = await redis.ttl(RedisKeys.rateLimit('198.51.100.1'));
    assert.ok(ttl > 0 && ttl <= 60, `ttl ${ttl}`);
    // The runbook's diagnosis: docker logs backend | grep "Rate limit" | awk '{print $NF}'
    const logs = (await containerLogTail(docker, app.containers.backend, 50)).split(' | ');
    assert.deepEqual(logs.filter((l) => l.includes('Rate limit exceeded')).map((l) => l.split(' ').pop()), ['198.51.100.1', '198.51.100.1']);
    assert.equal(sampleValue(await metrics(), 'http_requests_rate_limited_total', { route: '/api/v1/counties' }), 2);

    await redis.sadd(RedisKeys.blocklist, '198.51.100.66');
    assert.equal((await request(`${app.urls.api}/api/v1/counties`, from('198.51.100.66'))).status, 403);
    // X-Forwarded-For counts only from 127.0.0.1 (the tests' own address): the first client is still limited.
    assert.equal((await request(`${app.urls.api}/api/v1/counties`, from('198.51.100.1'))).status, 429);
    await redis.del(RedisKeys.rateLimitConfig);
  });

  test('pg_dump -Fc into /backups and pg_restore back, by docker exec argv arrays; pg_stat_statements answers', async () => {
    const dump = await exec(docker, app.containers.postgres, ['pg_dump', '-U', 'postgres', '-Fc', '-d', 'audit_app', '-f', `${BACKUP_DIR}/latest.dump`]);
    assert.equal(dump.exitCode, 0, dump.stderr);
    assert.equal((await psql("DELETE FROM documents WHERE county = 'Nairobi'")).exitCode, 0);
    assert.equal((await psql('SELECT count(*) FROM documents')).stdout.trim(), '15');
    const restore = await exec(docker, app.containers.postgres, ['pg_restore', '-U', 'postgres', '--clean', '--if-exists', '-d', 'audit_app', `${BACKUP_DIR}/latest.dump`]);
    assert.equal(restore.exitCode, 0, restore.stderr);
    assert.equal((await psql('SELECT count(*) FROM documents')).stdout.trim(), '18');

    const statements = await psql('SELECT query, calls, mean_exec_time, max_exec_time FROM pg_stat_statements ORDER BY mean_exec_time DESC LIMIT 10');
    assert.equal(statements.exitCode, 0, statements.stderr);
    assert.match(statements.stdout, /\|\d+\|[\d.]+\|[\d.]+$/m);
  });

  test('redis-stopped: the backend stays up and rate-limits in memory', async () => {
    await redis.set(RedisKeys.rateLimitConfig, '2');
    assert.equal((await request(`${app.urls.api}/api/v1/counties`, from('198.51.100.9'))).status, 200); // the backend learns the limit
    await breakAuditApp(docker, app, 'redis-stopped');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await request(`${app.urls.api}/api/v1/counties`, from('198.51.100.10'))).status);
    assert.deepEqual(statuses, [200, 200, 429]);
    const health = await request(app.urls.health);
    assert.deepEqual([health.status, health.body.redis], [200, 'unavailable']);
    assert.deepEqual([sampleValue(await metrics(), 'rate_limit_in_memory'), sampleValue(await metrics(), 'audit_app_dependency_up', { dependency: 'redis' })], [1, 0]);
    assert.match(await containerLogTail(docker, app.containers.backend, 20), /Redis unavailable .*: rate limiting falls back to in-memory/);

    await docker.getContainer(app.containers.redis).start();
    await waitFor('the backend back on Redis', async () => ((await request(app.urls.health)).body.redis === 'ok' ? true : undefined));
  });

  test('slow-route: the route answers later, and the histogram shows it', async () => {
    const route = { method: 'GET', route: '/api/v1/documents', status: '200' };
    const beforeText = await metricsText();
    const before = samples(beforeText);
    const result = await breakAuditApp(docker, app, 'slow-route', { route: '/api/v1/documents', ms: 600 });
    assert.match(result.description, /600 ms slower/);
    const slow = await request(`${app.urls.api}/api/v1/documents`);
    assert.equal(slow.status, 200);
    assert.ok(slow.ms >= 600, `took ${slow.ms} ms`);
    const afterText = await metricsText();
    const afterwards = samples(afterText);
    const grew = (name: string, labels: Record<string, string>) => (sampleValue(afterwards, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
    assert.equal(grew('http_request_duration_seconds_count', route), 1);
    assert.ok(grew('http_request_duration_seconds_sum', route) >= 0.6);
    assert.equal(grew('http_request_duration_seconds_bucket', { ...route, le: '0.5' }), 0, 'not in the fast buckets');
    assert.equal(grew('http_request_duration_seconds_bucket', { ...route, le: '+Inf' }), 1);
    // What the slow-responses runbook reads (targets.backend.metricsUrl): p95 per route between two scrapes.
    const [beforeSeries, afterSeries] = await Promise.all([histogramSeries(beforeText, 'http_request_duration_seconds'), histogramSeries(afterText, 'http_request_duration_seconds')]);
    const documents = latencyByRoute(beforeSeries, afterSeries).find((r) => r.route === '/api/v1/documents');
    assert.ok(documents?.p95 !== undefined && documents.p95 >= 0.5, JSON.stringify(documents));
    await resetBackendFaults(app);
  });

  test('leak-connections: the pool is exhausted — requests fail, /health 503 — until the sessions are terminated', async () => {
    const result = await breakAuditApp(docker, app, 'leak-connections');
    assert.match(result.description, new RegExp(`leaked ${POOL_SIZE} of its ${POOL_SIZE} pool connection`));
    assert.equal(await activity(`application_name = 'audit-app-backend' AND state = 'idle in transaction'`), POOL_SIZE);
    const all = await metrics();
    assert.equal(sampleValue(all, 'db_pool_connections', { state: 'total' }), POOL_SIZE);
    assert.equal(sampleValue(all, 'db_pool_connections', { state: 'idle' }), 0);
    const starved = await request(`${app.urls.api}/api/v1/counties`);
    assert.equal(starved.status, 500);
    assert.match(String(starved.body.error), /timeout exceeded when trying to connect/);
    assert.equal((await request(app.urls.health)).status, 503);

    // The runbook's remedy: terminate the sessions idle in transaction; the pool heals.
    await psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle in transaction'");
    await waitFor('/health 200 again', async () => ((await request(app.urls.health)).status === 200 ? true : undefined));
    assert.equal((await backendFaults(app)).leakedConnections, 0);
  });

  test('idle-in-transaction: N real sessions idle in transaction in pg_stat_activity; the API keeps answering', async () => {
    const result = await breakAuditApp(docker, app, 'idle-in-transaction', { sessions: 2 });
    assert.match(result.description, /2 session\(s\) .* idle in transaction \(2 in pg_stat_activity\)/);
    assert.equal(await activity(`state = 'idle in transaction'`), 2);
    assert.equal((await request(`${app.urls.api}/api/v1/counties`)).status, 200);
    await resetBackendFaults(app);
    assert.equal(await activity(`state = 'idle in transaction'`), 0);
  });

  test('slow-query: a real pg_sleep runs, active in pg_stat_activity for longer than a second', async () => {
    await breakAuditApp(docker, app, 'slow-query', { seconds: 60 });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const runbookQuery = `state = 'active' AND now() - query_start > interval '1 second' AND query LIKE '%pg_sleep%'`;
    assert.equal(await activity(runbookQuery), 1);
    await pg.query(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = 'audit_app' AND ${runbookQuery}`);
    await eventually('the query to end', async () => ((await activity(runbookQuery)) === 0 ? true : undefined));
  });

  test('backend-stopped, then db-stopped (/health 503), then backend-crash (exits non-zero)', async () => {
    await breakAuditApp(docker, app, 'backend-stopped');
    await assert.rejects(request(app.urls.health, {}, 2_000));
    await docker.getContainer(app.containers.backend).start();
    await waitFor('the backend back', async () => ((await request(app.urls.health)).status === 200 ? true : undefined));

    await breakAuditApp(docker, app, 'db-stopped');
    const health = await request(app.urls.health);
    assert.equal(health.status, 503);
    assert.match(String(health.body.database), /ECONNREFUSED/);
    assert.equal(sampleValue(await metrics(), 'audit_app_dependency_up', { dependency: 'database' }), 0);
    await assert.rejects(breakAuditApp(docker, app, 'db-corrupted'), new RegExp(`${app.containers.postgres} is not running: start it first`));

    const crash = await breakAuditApp(docker, app, 'backend-crash');
    assert.match(crash.description, /exited with code 1/);
    const info = await docker.getContainer(app.containers.backend).inspect();
    assert.deepEqual([info.State.Running, info.State.ExitCode], [false, 1]);
  });

  test('the CLI: status --json, break, the printed targets config validates, and down leaves nothing behind', async () => {
    const status = await runCli(['sandbox', 'status', '--prefix', prefix, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout) as { containers: Record<string, { running: boolean; exitCode: number }> };
    assert.deepEqual(Object.keys(parsed.containers), ['postgres', 'redis', 'backend', 'etl']);
    assert.deepEqual(
      [parsed.containers.backend!.exitCode, parsed.containers.postgres!.running, parsed.containers.redis!.running, parsed.containers.etl!.running],
      [1, false, true, true],
    );
    const text = await runCli(['sandbox', 'status', '--prefix', prefix]);
    assert.match(text.stdout, new RegExp(`^etl\\s+${prefix}etl\\s+running\\s+runbooks-audit-app-etl:1\\s+docker exec ${prefix}etl node /app/etl\\.js …$`, 'm'));
    const broken = await runCli(['sandbox', 'break', 'redis-stopped', '--prefix', prefix]);
    assert.equal(broken.code, 0, broken.stderr);
    assert.equal(broken.stdout, `redis-stopped: stopped ${app.containers.redis}: the backend rate-limits in memory\n`);
    const bad = await runCli(['sandbox', 'break', 'meteor-strike', '--prefix', prefix]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /meteor-strike.*Allowed choices are backend-stopped/);

    // What `up` prints is a valid runbooks config.
    const config = parseConfig(auditAppTargets(app, requireEnv('DOCKER_HOST')));
    assert.deepEqual(config.targets.postgres, { container: app.containers.postgres, url: app.urls.database, healthyWithin: 30_000, backupFile: `${BACKUP_DIR}/latest.dump` });
    assert.equal(config.docker.host, requireEnv('DOCKER_HOST'));
    assert.equal(config.targets.backend?.metricsUrl, app.urls.metrics);
    assert.deepEqual(config.targets.etl, { container: app.containers.etl, downloadsDir: '/tmp/etl_downloads', program: ['node', '/app/etl.js'], healthyWithin: 30_000 });

    // A container a rollback kept goes too.
    await docker.createContainer({ name: `${prefix}backend-replaced-0123456789ab`, Image: REDIS_IMAGE, Cmd: ['true'], Labels: { [TEST_LABEL]: 'true' } });
    const down = await runCli(['sandbox', 'down', '--prefix', prefix]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, new RegExp(`^removed ${prefix}backend, ${prefix}backend-replaced-0123456789ab, ${prefix}etl, ${prefix}postgres, ${prefix}redis\\n$`));
    const left = await docker.listContainers({ all: true, filters: { name: [`^/${prefix}`] } });
    assert.deepEqual(left, []);
    const again = await runCli(['sandbox', 'status', '--prefix', prefix]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`^error: no audit-app with prefix "${prefix}" on unix://.* — start it with \`runbooks sandbox up\`\\n$`));
  });
});
