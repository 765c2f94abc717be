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
    const admin = new Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const setup = await open();
    await setup.query('CREATE TABLE documents (id serial PRIMARY KEY, county text)');
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    const admin = new Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
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
});
