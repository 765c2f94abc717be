// The PostgreSQL activities against a real server (the machine's, DATABASE_URL from the harness) with real
// sessions: held idle in a transaction, running pg_sleep, waiting on a lock.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import type Docker from 'dockerode';
import { Client } from 'pg';
import { createPostgresActivities, RUNBOOKS_APPLICATION_NAME } from '../src/activities/postgres';
import { parseConfig } from '../src/config/load';
import { requireEnv } from './support/env';
import { eventually } from './support/wait';

const database = `runbooks_pgtest_${randomBytes(4).toString('hex')}`;
const serverUrl = requireEnv('DATABASE_URL');
const appUrl = (() => {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();

async function session(applicationName = 'audit-app'): Promise<Client> {
  const client = new Client({ connectionString: appUrl, application_name: applicationName });
  client.on('error', () => undefined); // terminated on purpose by the tests
  await client.connect();
  return client;
}

// One scratch database for the file, on the machine's server.
before(async () => {
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
});

after(async () => {
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.end();
});

describe('PostgreSQL activities, against a real server with real sessions', { timeout: 120_000 }, () => {
  const config = parseConfig({ targets: { postgres: { container: 'postgres', url: appUrl } } });
  const pg = createPostgresActivities(config, {} as Docker);
  const target = 'postgres' as const;
  const clients: Client[] = [];
  const open = async (applicationName?: string) => {
    const client = await session(applicationName);
    clients.push(client);
    return client;
  };

  before(async () => {
    const setup = await open();
    await setup.query('CREATE TABLE documents (id serial PRIMARY KEY, county text)');
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  });

  test('checkDatabase answers SELECT 1, and says why when the server is not there', async () => {
    assert.equal((await pg.checkDatabase({ target })).reachable, true);
    const closed = createPostgresActivities(parseConfig({ targets: { postgres: { container: 'postgres', url: 'postgres://postgres@127.0.0.1:9/x' } } }), {} as Docker);
    const down = await closed.checkDatabase({ target });
    assert.equal(down.reachable, false);
    assert.match(down.error ?? '', /ECONNREFUSED/);
    const waited = (await new MockActivityEnvironment().run(closed.waitForDatabase, { target, withinMs: 1_200 })) as Awaited<ReturnType<typeof closed.waitForDatabase>>;
    assert.equal(waited.reachable, false);
    assert.ok(waited.attempts >= 2, `polled ${waited.attempts} time(s)`);
  });

  test('inspectConnections reports sessions idle in a transaction, long queries and lock waits, with their pids', async () => {
    const idle = await open();
    await idle.query('BEGIN');
    await idle.query('SELECT 1');
    const idlePid = (await idle.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

    const sleeper = await open();
    const sleeperPid = (await sleeper.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const sleeping = sleeper.query('SELECT pg_sleep(4)').catch(() => undefined);

    const locker = await open();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE documents IN ACCESS EXCLUSIVE MODE');
    const lockerPid = (await locker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const waiter = await open();
    const waiterPid = (await waiter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const waiting = waiter.query('SELECT count(*) FROM documents').catch(() => undefined);

    const report = await eventually('the sessions to show', async () => {
      const r = await pg.inspectConnections({ target, idleInTransactionMs: 500, longQueryMs: 1_000 });
      return r.idleInTransaction.some((s) => s.pid === idlePid) && r.longQueries.some((s) => s.pid === sleeperPid) ? r : undefined;
    });
    assert.equal(report.database, database);
    assert.ok(report.connections >= 4 && report.maxConnections > 0);
    assert.equal(report.usage, report.connections / report.maxConnections);
    const long = report.longQueries.find((s) => s.pid === sleeperPid)!;
    assert.equal(long.query, 'SELECT pg_sleep(4)');
    assert.ok(long.seconds >= 1, `${long.seconds} s`);
    assert.deepEqual(report.lockWaits.find((w) => w.pid === waiterPid)?.blockedBy, [lockerPid]);

    await locker.query('COMMIT');
    await Promise.all([sleeping, waiting]);
    await idle.query('ROLLBACK');
  });

  test('terminateIdleSessions ends only sessions idle in a transaction past the threshold, never the runbooks own, and a retry ends nothing', async () => {
    const victims = [await open(), await open()];
    for (const v of victims) {
      await v.query('BEGIN');
      await v.query('SELECT 1');
    }
    const victimPids = await Promise.all(victims.map(async (v) => (await v.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid));
    const ours = await open(`${RUNBOOKS_APPLICATION_NAME}-worker`);
    await ours.query('BEGIN');
    await new Promise((resolve) => setTimeout(resolve, 1_200));

    assert.deepEqual((await pg.terminateIdleSessions({ target, olderThanMs: 60_000 })).terminated, [], 'none idle for a minute yet');
    const { terminated } = await pg.terminateIdleSessions({ target, olderThanMs: 1_000 });
    assert.deepEqual(terminated.map((s) => s.pid).sort(), [...victimPids].sort());
    const left = await eventually('the terminated sessions to be gone', async () => {
      const r = await pg.inspectConnections({ target, idleInTransactionMs: 0, longQueryMs: 60_000 });
      return r.idleInTransaction.some((s) => victimPids.includes(s.pid)) ? undefined : r;
    });
    assert.deepEqual(left.idleInTransaction.map((s) => s.application), [`${RUNBOOKS_APPLICATION_NAME}-worker`], 'only ours remains');
    assert.deepEqual((await pg.terminateIdleSessions({ target, olderThanMs: 1_000 })).terminated, [], 'a retry terminates nothing');
    await assert.rejects(victims[0]!.query('SELECT 1'), 'the terminated session is closed');
    await ours.query('ROLLBACK');
  });

  test('terminateIdleSessions never ends a replication session, even one idle in a transaction of the application database', async () => {
    // replication=database (as the URL says it): a logical-replication walsender, which also runs SQL, so it can sit
    // idle in a transaction.
    const replicationUrl = new URL(appUrl);
    replicationUrl.searchParams.set('replication', 'database');
    const replication = new Client({ connectionString: replicationUrl.toString(), application_name: 'audit-app-replica' });
    replication.on('error', () => undefined);
    await replication.connect();
    clients.push(replication);
    assert.equal((await replication.query<{ dbname: string }>('IDENTIFY_SYSTEM')).rows[0]!.dbname, database, 'a replication connection to the application database');
    await replication.query('BEGIN');
    const replicationPid = (await replication.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const victim = await open();
    await victim.query('BEGIN');
    const victimPid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await new Promise((resolve) => setTimeout(resolve, 1_200));

    const observer = await open();
    const activity = async (pid: number) =>
      (await observer.query<{ backend_type: string; state: string }>('SELECT backend_type, state FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0];
    assert.deepEqual(await activity(replicationPid), { backend_type: 'walsender', state: 'idle in transaction' }, 'it would qualify but for being replication');

    const { terminated } = await pg.terminateIdleSessions({ target, olderThanMs: 1_000 });
    assert.deepEqual(terminated.map((s) => s.pid), [victimPid], 'only the client session idle as long is terminated');
    assert.deepEqual(await activity(replicationPid), { backend_type: 'walsender', state: 'idle in transaction' });
    assert.equal((await replication.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n, 1, 'the replication session still answers');
    await replication.query('ROLLBACK');
  });
});

describe('PostgreSQL tuning activities, against a real server', { timeout: 120_000 }, () => {
  const config = parseConfig({ targets: { postgres: { container: 'postgres', url: appUrl } } });
  const pg = createPostgresActivities(config, {} as Docker);
  const target = 'postgres' as const;

  before(async () => {
    const db = await session();
    await db.query(`CREATE TABLE IF NOT EXISTS audit_log (id serial PRIMARY KEY, ip text, action text)`);
    await db.query(`INSERT INTO audit_log (ip, action) SELECT '10.0.0.' || (g % 250), 'read' FROM generate_series(1, 2000) g`);
    await db.end();
  });

  test('vacuumAnalyze and createIndex take only names the catalogue has: an injection is refused as unknown, and nothing runs', async () => {
    assert.deepEqual(await pg.vacuumAnalyze({ target, tables: ['audit_log'] }), { vacuumed: ['audit_log'] });
    for (const hostile of ['audit_log; DROP TABLE documents', 'audit_log"--', 'pg_catalog.pg_class', '']) {
      await assert.rejects(pg.vacuumAnalyze({ target, tables: [hostile] }), (err: Error & { type?: string }) => err.type === 'UnknownIdentifier', hostile);
      await assert.rejects(pg.createIndex({ target, table: hostile, column: 'ip' }), (err: Error & { type?: string }) => err.type === 'UnknownIdentifier', hostile);
    }
    await assert.rejects(pg.createIndex({ target, table: 'audit_log', column: 'ip) ; DROP TABLE documents; --' }), /no column/);
    const db = await session();
    try {
      assert.equal((await db.query(`SELECT to_regclass('public.documents') IS NOT NULL AS present`)).rows[0].present, true, 'documents is still there');
    } finally {
      await db.end();
    }
  });

  test('createIndex builds the index concurrently once; a second call keeps it; an invalid leftover is rebuilt', async () => {
    assert.deepEqual(await pg.createIndex({ target, table: 'audit_log', column: 'ip' }), { index: 'idx_audit_log_ip', created: true });
    assert.deepEqual(await pg.createIndex({ target, table: 'audit_log', column: 'ip' }), { index: 'idx_audit_log_ip', created: false });
    const db = await session();
    try {
      // What an interrupted CREATE INDEX CONCURRENTLY leaves behind: an index marked invalid.
      await db.query(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_audit_log_ip'::regclass`);
      assert.deepEqual(await pg.createIndex({ target, table: 'audit_log', column: 'ip' }), { index: 'idx_audit_log_ip', created: true });
      assert.equal((await db.query(`SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_audit_log_ip'::regclass`)).rows[0].indisvalid, true);
    } finally {
      await db.end();
    }
  });

  test('dataFreshness is MAX(column) and its age by the database clock; only a timestamp column the catalogue has is read', async () => {
    const db = await session();
    try {
      await db.query('CREATE TABLE feed (label text, updated_at timestamptz)');
      assert.deepEqual(await pg.dataFreshness({ target, table: 'feed', column: 'updated_at' }), { table: 'feed', column: 'updated_at', latest: null, ageSeconds: null });
      await db.query(`INSERT INTO feed VALUES ('old', now() - interval '2 hours'), ('newer', now() - interval '1 hour')`);
      const fresh = await pg.dataFreshness({ target, table: 'feed', column: 'updated_at' });
      const latest = (await db.query<{ latest: Date }>('SELECT max(updated_at) AS latest FROM feed')).rows[0]!.latest;
      assert.equal(fresh.latest, latest.toISOString());
      assert.ok(fresh.ageSeconds !== null && Math.abs(fresh.ageSeconds - 3_600) <= 2, `age ${fresh.ageSeconds}`);
      for (const [table, column] of [['feed; DROP TABLE documents', 'updated_at'], ['feed', 'updated_at) FROM documents; --'], ['pg_catalog.pg_class', 'updated_at']]) {
        await assert.rejects(pg.dataFreshness({ target, table: table!, column: column! }), (err: Error & { type?: string }) => err.type === 'UnknownIdentifier', `${table} ${column}`);
      }
      await assert.rejects(pg.dataFreshness({ target, table: 'feed', column: 'label' }), (err: Error & { type?: string }) => err.type === 'InvalidInput' && /not a timestamp/.test(err.message));
    } finally {
      await db.end();
    }
  });

  test('without pg_stat_statements preloaded the slow-query report says so instead of failing', async () => {
    const db = await session();
    const preloaded = (await db.query(`SELECT current_setting('shared_preload_libraries') ~ 'pg_stat_statements' AS p`)).rows[0].p as boolean;
    await db.end();
    assert.equal((await pg.topQueries({ target })).enabled, preloaded);
    const tables = await pg.inspectTables({ target, minSeqScans: 1 });
    assert.ok(Array.isArray(tables.hot));
  });
});
