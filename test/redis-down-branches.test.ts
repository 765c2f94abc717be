// Every branch of the Redis runbook in seconds: the real workflow on the time-skipping test server, its
// activities typed stubs (test/redis.test.ts runs the same runbook against a real Redis container).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RedisDiagnosis } from '../src/activities/redis';
import type { ConfigInput } from '../src/config/schema';
import { approveUpdate } from '../src/workflows/lifecycle/definitions';
import { timeSkippingIncidents, type ActivityStubs } from './support/timeSkipping';

const incidents = timeSkippingIncidents({ taskQueuePrefix: 'redis-branches', runbook: 'redis-down', labels: { alertname: 'RedisDown', service: 'redis' } });
const { observe, outcomeOf, calls } = incidents;

const config: ConfigInput = {
  targets: { redis: { container: 'redis', url: 'redis://127.0.0.1:9' } },
  approvers: { 'flush-cache': ['dave'] },
};

const answering: RedisDiagnosis = {
  reachable: true,
  usedMemoryBytes: 100,
  maxMemoryBytes: 1000,
  memoryRatio: 0.1,
  maxMemoryPolicy: 'allkeys-lru',
  connectedClients: 3,
  lastBgsaveStatus: 'ok',
  keys: 12,
};

function redisStubs(diagnoses: RedisDiagnosis[], pongAfterRestart = true): ActivityStubs {
  let call = 0;
  return {
    diagnoseRedis: async () => diagnoses[Math.min(call++, diagnoses.length - 1)]!,
    restartContainer: async () => undefined,
    waitForRedis: async () => (pongAfterRestart ? { healthy: true, attempts: 1 } : { healthy: false, attempts: 20, error: 'ECONNREFUSED' }),
    startBackgroundSave: async () => ({ started: true, alreadyRunning: false }),
    flushRedisDb: async () => ({ keysDropped: 12 }),
  };
}

describe('Redis Connection Failures runbook, branch by branch (time-skipping server, stub activities)', { timeout: 120_000 }, () => {
  before(() => incidents.start());
  after(() => incidents.stop());

  test('a Redis that does not answer is restarted, verified, and diagnosed again', async () => {
    const incident = await incidents.startIncident({}, config, redisStubs([{ reachable: false, error: 'ECONNREFUSED' }, answering]));
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(calls(incident).restartContainer, 1);
    assert.equal(calls(incident).diagnoseRedis, 2);
    assert.equal(calls(incident).flushRedisDb, undefined);
  });

  test('a restart after which Redis still does not answer leaves the incident to a human', async () => {
    const incident = await incidents.startIncident({}, config, redisStubs([{ reachable: false, error: 'ECONNREFUSED' }], false));
    const status = await observe(incident);
    assert.equal(status.phase, 'needs-human');
    assert.ok(status.timeline.some((e) => e.message === 'Redis still does not answer after the restart: ECONNREFUSED.'));
    await incident.terminate('test over');
  });

  test("memory at the catalog's memoryPressure (0.9) asks before FLUSHDB; below it nobody is asked", async () => {
    const pressured = await incidents.startIncident({}, config, redisStubs([{ ...answering, memoryRatio: 0.9 }]));
    assert.deepEqual((await observe(pressured)).pendingApprovals.map((p) => p.kind), ['flush-cache']);
    await pressured.executeUpdate(approveUpdate, { args: [{ step: 'flush-cache', by: 'dave' }] });
    assert.equal((await outcomeOf(pressured)).resolution, 'remediated');
    assert.equal(calls(pressured).flushRedisDb, 1);

    const relaxed = await incidents.startIncident({}, config, redisStubs([{ ...answering, memoryRatio: 0.89 }]));
    const outcome = await outcomeOf(relaxed);
    assert.ok(!outcome.timeline.some((e) => e.kind === 'approval-requested'));
    assert.equal(calls(relaxed).flushRedisDb, undefined);
  });

  test('the memoryPressure policy is overridable per deployment (policies.redis-down)', async () => {
    const incident = await incidents.startIncident({}, { ...config, policies: { 'redis-down': { memoryPressure: 0.5 } } }, redisStubs([{ ...answering, memoryRatio: 0.6 }]));
    assert.deepEqual((await observe(incident)).pendingApprovals.map((p) => p.kind), ['flush-cache']);
    await incident.terminate('test over');
  });

  test('a failed background save is retried with BGSAVE and the disk becomes a follow-up', async () => {
    const incident = await incidents.startIncident({}, config, redisStubs([{ ...answering, lastBgsaveStatus: 'err' }]));
    const outcome = await outcomeOf(incident);
    assert.equal(calls(incident).startBackgroundSave, 1);
    assert.ok(outcome.timeline.some((e) => e.kind === 'follow-up' && e.message === 'Check the disk space where Redis persists (df -h).'));
  });
});
