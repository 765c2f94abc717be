/**
 * The security endpoints against real Redis, a real Temporal and a real worker: the deny-list (`GET /blocks`,
 * `DELETE /blocks/:ip`, scope `operations`, the token's name recorded) and an incident's human tasks over HTTP
 * (`complete-task`; `resolve` refused while a task is open unless a reason closes them).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import Redis from 'ioredis';
import pino from 'pino';
import type { IncidentStatusView } from '../src/incidents/model';
import type { Config } from '../src/config/schema';
import { buildHttpServer } from '../src/http/server';
import { testConfig, tokenHash } from './support/config';
import { requireEnv } from './support/env';
import { alert, fire, terminateAll, waitForStatus } from './support/incidents';
import { startWorker, type RunningWorker } from './support/worker';

const tokens = { alertmanager: `am-${randomBytes(8).toString('hex')}`, erin: `erin-${randomBytes(8).toString('hex')}`, alice: `alice-${randomBytes(8).toString('hex')}` };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('security endpoints against real Redis and Temporal', () => {
  const key = `blocklist:test-${randomBytes(4).toString('hex')}`;
  let config: Config;
  let redis: Redis;
  let worker: RunningWorker;
  let app: FastifyInstance;
  let incidentId: string | undefined;

  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, token?: string, body?: unknown) =>
    app.inject({
      method,
      url,
      headers: { ...(token ? bearer(token) : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });

  before(async () => {
    config = testConfig({
      targets: { redis: { container: 'no-such-redis', url: requireEnv('REDIS_URL') } },
      security: { denyList: { key } },
      tokens: [
        { name: 'alertmanager', sha256: tokenHash(tokens.alertmanager), scopes: ['alerts'] },
        { name: 'erin', sha256: tokenHash(tokens.erin), scopes: ['operations'] },
        { name: 'alice', sha256: tokenHash(tokens.alice), scopes: ['incidents'] },
      ],
    });
    redis = new Redis(requireEnv('REDIS_URL'), { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    worker = await startWorker(config, { logLevel: 'error' });
    app = await buildHttpServer({ config, client: worker.client, logger: pino({ level: 'silent' }) });
  });

  after(async () => {
    await app?.close();
    if (incidentId) await terminateAll(worker.client, [incidentId]);
    await worker?.stop();
    await redis?.del(key);
    redis?.disconnect();
  });

  test("GET /blocks lists the deny-list; DELETE /blocks/:ip lifts one entry once, as the token's name, and refuses what is not an address", async () => {
    await redis.sadd(key, '203.0.113.9', '198.51.100.4');
    const listed = await call('GET', '/blocks', tokens.erin);
    assert.equal(listed.statusCode, 200, listed.body);
    assert.deepEqual(listed.json(), { denyList: `Redis set ${key}`, members: ['198.51.100.4', '203.0.113.9'] });

    assert.equal((await call('DELETE', '/blocks/203.0.113.9')).statusCode, 401);
    assert.equal((await call('DELETE', '/blocks/203.0.113.9', tokens.alertmanager)).statusCode, 403);
    const lifted = await call('DELETE', '/blocks/203.0.113.9', tokens.erin);
    assert.equal(lifted.statusCode, 200, lifted.body);
    assert.deepEqual({ ...lifted.json<Record<string, unknown>>(), size: undefined }, { source: '203.0.113.9', denyList: `Redis set ${key}`, removed: true, size: undefined, by: 'erin' });
    const again = await call('DELETE', '/blocks/203.0.113.9', tokens.erin);
    assert.equal(again.json<{ removed: boolean }>().removed, false, 'lifting twice is harmless');
    assert.deepEqual(await redis.smembers(key), ['198.51.100.4'], 'only that entry was lifted');

    for (const hostile of ['example.com', '1.2.3.4;rm -rf', '$(id)']) {
      const refused = await call('DELETE', `/blocks/${encodeURIComponent(hostile)}`, tokens.erin);
      assert.equal(refused.statusCode, 400, `${hostile}: ${refused.body}`);
    }
    assert.deepEqual(await redis.smembers(key), ['198.51.100.4']);
  });

  test('an open task refuses resolve without a reason (409); complete-task over HTTP records who; resolve with a reason closes the rest', async () => {
    const intake = await fire(worker.client, config, alert('BruteForceDetected', { ip: '203.0.113.66', service: 'http-blocks-test' }));
    incidentId = intake.workflowId;
    const withTasks = await waitForStatus(worker.client, incidentId, 'the mitigation tasks', (s) => (s.tasks ?? []).length === 3);
    const first = withTasks.tasks[0]!;

    const refused = await call('POST', `/incidents/${incidentId}/resolve`, tokens.alice, { note: 'done?' });
    assert.equal(refused.statusCode, 409, refused.body);
    assert.match(refused.json<{ error: string }>().error, /task/i);

    const completed = await call('POST', `/incidents/${incidentId}/complete-task`, tokens.alice, { task: first.id, note: 'rotated the API keys' });
    assert.equal(completed.statusCode, 200, completed.body);
    const done = completed.json<IncidentStatusView>().tasks.find((t) => t.id === first.id)!;
    assert.equal(done.state, 'done');
    assert.equal(done.by, 'alice');
    const unknownTask = await call('POST', `/incidents/${incidentId}/complete-task`, tokens.alice, { task: 'make-coffee' });
    assert.ok([400, 409].includes(unknownTask.statusCode), unknownTask.body);

    const resolved = await call('POST', `/incidents/${incidentId}/resolve`, tokens.alice, { reason: 'the rest is tracked in the security team’s tracker' });
    assert.equal(resolved.statusCode, 200, resolved.body);
    incidentId = undefined;
  });
});
