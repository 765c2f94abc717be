import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import Redis from 'ioredis';
import { actOnIncident, IncidentOperationError } from '../src/incidents/operations';
import { dropAuditSchema, readAudit } from './support/audit';
import { suiteCleanups } from './support/cleanups';
import { testConfig } from './support/config';
import { recordHistoryIfAsked } from './support/histories';
import { alert, everyContactOn, fire, outcomeOf, waitForStatus } from './support/incidents';
import { startRedis, testDocker } from './support/sandbox';
import { waitFor } from './support/wait';
import { startWorker } from './support/worker';

describe('Redis Connection Failures runbook, against a real Redis container', () => {
  let docker: Docker;
  const cleanups = suiteCleanups();

  before(() => {
    docker = testDocker();
  });

  async function setUp(maxmemory?: string) {
    const redis = await startRedis(docker, maxmemory);
    cleanups.push(() => redis.remove());
    const url = `redis://127.0.0.1:${redis.port}`;
    const config = testConfig({
      targets: { redis: { container: redis.name, url, healthyWithin: '10s' } },
      contacts: everyContactOn('log'),
      approvers: { 'flush-cache': ['dave'] },
    });
    const worker = await startWorker(config);
    cleanups.push(() => dropAuditSchema(config));
    cleanups.push(() => worker.stop());
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    cleanups.push(async () => client.disconnect());
    await waitFor('the sandbox Redis to answer', async () => ((await client.ping()) === 'PONG' ? true : undefined));
    return { redis, config, worker, client };
  }

  async function fillUntilOutOfMemory(client: Redis): Promise<number> {
    const value = 'x'.repeat(4096);
    for (let i = 0; i < 10_000; i++) {
      try {
        await client.set(`cache:${i}`, value);
      } catch (err) {
        assert.match((err as Error).message, /OOM/);
        return i;
      }
    }
    throw new Error('Redis never reached maxmemory');
  }

  test('a stopped Redis is restarted and verified with PING, and the missing allkeys-lru policy becomes a follow-up', async () => {
    const { redis, config, worker, client } = await setUp();
    await redis.container.stop({ t: 1 });
    await assert.rejects(client.ping());

    const intake = await fire(worker.client, config, alert('RedisDown', { service: 'redis', severity: 'high' }));
    const outcome = await outcomeOf(worker.client, intake.workflowId);

    assert.equal(outcome.resolution, 'remediated');
    assert.equal(await client.ping(), 'PONG');
    const messages = outcome.timeline.map((e) => e.message);
    assert.ok(messages.some((m) => m.startsWith('Redis does not answer')), messages.join('\n'));
    assert.ok(messages.includes(`Restarted container ${redis.name}.`));
    assert.ok(messages.some((m) => m.startsWith('Redis answers PING after the restart')));
    assert.ok(messages.includes('Set maxmemory-policy allkeys-lru (it is noeviction).'));
    assert.ok(!outcome.timeline.some((e) => e.kind === 'approval-requested'), 'no memory pressure, no flush');
    const audit = await readAudit(config, intake.workflowId);
    assert.equal(audit.events.length, outcome.timeline.length);
  });

  test('memory pressure asks before FLUSHDB, refuses a non-approver, and flushes once an approver agrees', async () => {
    const { config, worker, client } = await setUp('4mb');
    const keysBefore = await fillUntilOutOfMemory(client);

    const intake = await fire(worker.client, config, alert('RedisDown', { service: 'redis', severity: 'high' }));
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'a flush approval', (s) => s.pendingApprovals.length > 0);
    assert.equal(waiting.pendingApprovals[0]!.kind, 'flush-cache');
    assert.match(waiting.pendingApprovals[0]!.question, /Redis memory is at \d+% of maxmemory\. FLUSHDB \(drops \d+ key\(s\)\)\?/);
    assert.ok(!waiting.timeline.some((e) => e.message.startsWith('Restarted')), 'a reachable Redis is not restarted');
    assert.equal(await client.dbsize(), keysBefore, 'nothing flushed before approval');

    await assert.rejects(
      actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'flush-cache', by: 'mallory' }),
      (err: unknown) => err instanceof IncidentOperationError && err.reason === 'not-an-approver',
    );
    assert.equal(await client.dbsize(), keysBefore);
    await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'flush-cache', by: 'dave' });
    const outcome = await outcomeOf(worker.client, intake.workflowId);

    assert.equal(outcome.resolution, 'remediated');
    assert.equal(await client.dbsize(), 0);
    assert.ok(outcome.timeline.some((e) => e.kind === 'approval-refused' && e.actor === 'mallory'));
    assert.ok(outcome.timeline.some((e) => e.kind === 'action' && e.message === `Flushed the cache: ${keysBefore} key(s) dropped.`));
    await recordHistoryIfAsked(intake.workflowId, 'redis-approved-flush');
  });

  test('a rejected FLUSHDB leaves the cache as it is', async () => {
    const { config, worker, client } = await setUp('4mb');
    const keysBefore = await fillUntilOutOfMemory(client);
    const intake = await fire(worker.client, config, alert('RedisDown', { service: 'redis', severity: 'high' }));
    await waitForStatus(worker.client, intake.workflowId, 'a flush approval', (s) => s.pendingApprovals.length > 0);

    await actOnIncident(worker.client, intake.workflowId, { kind: 'reject', step: 'flush-cache', by: 'dave', reason: 'cache is the only copy' });
    const outcome = await outcomeOf(worker.client, intake.workflowId);

    assert.equal(await client.dbsize(), keysBefore);
    assert.ok(outcome.timeline.some((e) => e.kind === 'rejected' && e.message.includes('cache is the only copy')));
    assert.ok(outcome.timeline.some((e) => e.message === 'FLUSHDB rejected: the cache is left as it is.'));
  });
});
