// The Rate Limiting runbook against the sandbox audit-app's real backend and Redis, with real request floods (clients
// simulated by X-Forwarded-For, which the backend trusts from 127.0.0.1 only). The sandbox's backend runs 10 s windows
// with a default limit of 20, so a flood is limited within a second and a raise ×2 covers a client at 3 requests/s.
// A raise approved for 20 s is put back by its durable timer on a new `runbooks worker` process after the first one
// was SIGKILLed; the limit key, absent before, is absent again.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { Client, Connection } from '@temporalio/client';
import Redis from 'ioredis';
import { dockerClient } from '../src/activities';
import { createRedisActivities } from '../src/activities/redis';
import { parseConfig } from '../src/config/load';
import type { ConfigInput } from '../src/config/schema';
import { actOnIncident } from '../src/incidents/operations';
import { auditAppTargets, removeAuditApp, startAuditApp, startTraffic, type AuditApp, type Traffic } from '../src/sandbox/auditApp';
import { TEST_LABEL } from './harness/dockerd';
import { freePorts } from './harness/util';
import { dropAuditSchema } from './support/audit';
import { cliEnv, cliWorkspace, exitWithin, type CliProcess } from './support/cli';
import { testConfigInput } from './support/config';
import { requireEnv } from './support/env';
import { recordHistoryIfAsked } from './support/histories';
import { alert, fire, outcomeOf, waitForStatus } from './support/incidents';
import { waitFor } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

const LIMIT = 20;
const WINDOW_SECONDS = 10;
const LIMIT_KEY = 'config:rate_limit:limit';
const RAISE_KEY = 'runbooks:rate_limit:raise';
const ALLOW_LIST = 'allowlist:ips';

describe('Rate Limiting runbook, against the sandbox backend and Redis under real floods', { timeout: 290_000 }, () => {
  const workspace = cliWorkspace('rate-limiting-test');
  const prefix = `ratelim-${randomBytes(3).toString('hex')}-`;
  let docker: Docker;
  let app: AuditApp;
  let redis: Redis;
  const traffic: Traffic[] = [];
  const configs: ReturnType<typeof parseConfig>[] = [];
  const children: CliProcess[] = [];
  let worker: RunningWorker | undefined;

  /** One request as `client`; its status. */
  async function requestAs(client: string): Promise<number> {
    const response = await fetch(`${app.urls.api}/api/v1/counties`, { headers: { 'x-forwarded-for': client }, signal: AbortSignal.timeout(5_000) });
    await response.body?.cancel();
    return response.status;
  }
  async function rateLimitedTotal(): Promise<number> {
    const text = await (await fetch(app.urls.metrics)).text();
    return [...text.matchAll(/^http_requests_rate_limited_total(?:\{[^}]*\})? (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  }
  function configInput(): ConfigInput {
    const sandbox = auditAppTargets(app);
    return testConfigInput({
      targets: { ...sandbox.targets, redis: { ...sandbox.targets.redis, rateLimit: { defaultLimit: LIMIT } } },
      approvers: { 'raise-rate-limit': ['dana'], 'allow-client': ['dana'] },
      policies: { 'rate-limiting': { raiseFactor: 3, raiseMinutes: 1 / 3, sampleWindowSeconds: 5, recoverWithinSeconds: 30, max429PerMinute: 10 } },
    });
  }
  async function stopTraffic(): Promise<void> {
    for (const t of traffic.splice(0)) await t.stop();
  }

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    const [backend, admin, postgres, redisPort] = await freePorts(4);
    app = await startAuditApp(docker, {
      prefix,
      ports: { backend: backend!, admin: admin!, postgres: postgres!, redis: redisPort! },
      rateLimit: LIMIT,
      backendEnv: { RATE_LIMIT_WINDOW_SECONDS: String(WINDOW_SECONDS) },
      labels: { [TEST_LABEL]: 'true' },
    });
    redis = new Redis(app.urls.redis);
  });

  after(async () => {
    await stopTraffic();
    await worker?.stop();
    for (const child of children) if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
    for (const config of configs) await dropAuditSchema(config);
    redis?.disconnect();
    await removeAuditApp(docker, prefix);
    workspace.remove();
  });

  test('a flood from one client: rate_limit:* and 429s rise; the runbook reports the client and its share; allow-listed once approved, its 429s stop', async () => {
    const input = configInput();
    const config = parseConfig(input);
    configs.push(config);
    worker = await startWorker(config);
    const flooder = '203.0.113.7';
    traffic.push(startTraffic(app, { clients: [flooder], perSecond: 20, path: '/api/v1/counties' }));
    traffic.push(startTraffic(app, { clients: ['198.51.100.21', '198.51.100.22'], perSecond: 1, path: '/api/v1/counties' }));
    try {
      await waitFor('429s for the flooding client', async () => ((await requestAs(flooder)) === 429 ? true : undefined), 20_000);
      await waitFor('three rate_limit:* keys', async () => ((await redis.keys('rate_limit:*')).length >= 3 ? true : undefined), 10_000);
      assert.ok((await rateLimitedTotal()) > 0, 'http_requests_rate_limited_total counts the 429s');

      const intake = await fire(worker.client, config, alert('RateLimitExceeded', { service: 'audit-app', severity: 'high' }));
      const waiting = await waitForStatus(worker.client, intake.workflowId, 'the allow-client approval', (s) => s.pendingApprovals.length > 0, 60_000);
      const messages = waiting.timeline.map((e) => e.message);
      assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['allow-client'], messages.join('\n'));
      const top = waiting.timeline.find((e) => e.message.startsWith('Top requester: '));
      assert.equal(top?.data?.client, flooder, messages.join('\n'));
      assert.ok(Number(top?.data?.share) >= 0.5, `share ${String(top?.data?.share)}`);
      assert.ok(messages.some((m) => /^[3-9] rate_limit:\* key\(s\), \d+ request\(s\) in the current windows; busiest: 203\.0\.113\.7 \d+/.test(m)), messages.join('\n'));
      assert.ok(messages.some((m) => /^\d+ "Rate limit exceeded" line\(s\) in the last \d+ of \S+backend; top: 203\.0\.113\.7 \d+ \(100%\)/.test(m)), messages.join('\n'));
      assert.ok(messages.some((m) => /^\d+ 429\(s\) per minute: \d+ of \d+ \/api request\(s\) over 5 s were rate limited\.$/.test(m)), messages.join('\n'));
      assert.match(waiting.pendingApprovals[0]!.question, /^203\.0\.113\.7 is \d+% of the traffic/);
      assert.equal(await redis.sismember(ALLOW_LIST, flooder), 0, 'nothing allow-listed before approval');

      await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'allow-client', by: 'dana' });
      const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 90_000 });
      const done = outcome.timeline.map((e) => e.message);
      assert.equal(outcome.resolution, 'remediated', done.join('\n'));
      assert.ok(done.includes('Allow-listed 203.0.113.7 (1 client(s) allow-listed).'), done.join('\n'));
      assert.ok(done.some((m) => m.startsWith('429s are back under 10 per minute: ')), done.join('\n'));
      assert.equal(await redis.sismember(ALLOW_LIST, flooder), 1);
      assert.equal(await requestAs(flooder), 200, 'the client is no longer limited');
      assert.deepEqual(await redis.smembers(ALLOW_LIST), [flooder], 'nothing wider than that one address');
    } finally {
      await stopTraffic();
      await redis.del(ALLOW_LIST);
      await worker.stop();
      worker = undefined;
    }
  });

  test('the raise and its undo in Redis: compare-and-set, one raise at a time, done once however often it is called; bad addresses refused', async () => {
    const activities = createRedisActivities(parseConfig(configInput()));
    const base = { target: 'redis' as const, recordTtlMs: 60_000 };
    assert.deepEqual(await activities.raiseRateLimit({ ...base, incident: 'A', expected: LIMIT, value: 40 }), { outcome: 'changed', limit: null }, 'the key is absent, not 20');
    assert.deepEqual(await activities.raiseRateLimit({ ...base, incident: 'A', expected: null, value: 40 }), { outcome: 'raised', limit: 40 });
    assert.deepEqual(await activities.raiseRateLimit({ ...base, incident: 'A', expected: null, value: 40 }), { outcome: 'already-raised', limit: 40 }, 'a retry');
    const held = await activities.raiseRateLimit({ ...base, incident: 'B', expected: 40, value: 80 });
    assert.equal(held.outcome, 'held');
    assert.equal(held.raise?.incident, 'A');
    assert.equal(await redis.get(LIMIT_KEY), '40');
    assert.equal((await activities.rateLimitSettings({ target: 'redis' })).raise?.incident, 'A');
    assert.deepEqual(await activities.restoreRateLimit({ target: 'redis', incident: 'B', previous: 40, raised: 80 }), { outcome: 'not-ours', limit: 40 });
    assert.deepEqual(await activities.restoreRateLimit({ target: 'redis', incident: 'A', previous: null, raised: 40 }), { outcome: 'restored', limit: null });
    assert.equal(await redis.exists(LIMIT_KEY, RAISE_KEY), 0, 'absent again, and the record gone');
    assert.deepEqual(await activities.restoreRateLimit({ target: 'redis', incident: 'A', previous: null, raised: 40 }), { outcome: 'already-restored', limit: null }, 'a retry');
    assert.deepEqual(await activities.rateLimitSettings({ target: 'redis' }), { limit: LIMIT, source: 'default', allowListed: 0 });

    for (const bad of ['0.0.0.0/0', '::/0', '0.0.0.0', '1.2.3.4; rm -rf /', '$(reboot)', 'evil.example.com', '1.2.3.4\nSADD x y', '9'.repeat(10_240)]) {
      await assert.rejects(activities.allowClient({ target: 'redis', client: bad }), (err: Error & { type?: string; nonRetryable?: boolean }) => err.type === 'InvalidInput' && err.nonRetryable === true);
    }
    assert.equal(await redis.scard(ALLOW_LIST), 0, 'nothing was added');
  });

  test('the SCAN is bounded: with room for 2 keys it counts 2 of 3 rate_limit:* keys and says it was cut short', async () => {
    const activities = createRedisActivities(parseConfig(configInput()));
    const keys = ['198.51.100.201', '198.51.100.202', '198.51.100.203'].map((client) => `rate_limit:${client}`);
    await Promise.all(keys.map((key, i) => redis.set(key, String(i + 1), 'EX', 60)));
    try {
      const bounded = await activities.rateLimitStatus({ target: 'redis', maxKeys: 2 });
      assert.deepEqual({ keys: bounded.keys, truncated: bounded.truncated }, { keys: 2, truncated: true });
      assert.equal(bounded.top.length, 2);
      const whole = await activities.rateLimitStatus({ target: 'redis', maxKeys: 1_000, top: 1_000 });
      assert.equal(whole.truncated, false);
      assert.ok(whole.keys >= 3, `${whole.keys} key(s)`);
      for (const key of keys) assert.ok(whole.top.some((t) => t.key === key), key);
    } finally {
      await redis.del(...keys);
    }
  });

  test('a spike of many clients: an approved raise is visible to the backend, shown as due, and put back by its timer on a new worker after a SIGKILL', async () => {
    const input = configInput();
    const config = parseConfig(input);
    configs.push(config);
    const configFile = workspace.writeConfig(input);
    const spawnWorker = () => {
      // Not the harness's REDIS_URL: the environment wins over the config file for it, and this worker acts on the sandbox's Redis.
      const env = cliEnv({ LOG_LEVEL: 'warn' });
      delete env.REDIS_URL;
      const child = workspace.spawn(['--config', configFile, 'worker'], env);
      children.push(child);
      return child;
    };
    assert.equal(await redis.exists(LIMIT_KEY), 0, 'no limit in Redis: the default applies');
    const clients = ['198.51.100.31', '198.51.100.32', '198.51.100.33', '198.51.100.34'];
    const limitedBefore = await rateLimitedTotal();
    traffic.push(startTraffic(app, { clients, perSecond: 5, path: '/api/v1/counties' }));
    const first = spawnWorker();
    try {
      // Watched from /metrics: a probe as one of the clients would add to its counter.
      await waitFor('429s for the spike', async () => ((await rateLimitedTotal()) > limitedBefore ? true : undefined), 30_000);
      const connection = await Connection.connect({ address: config.temporal.address });
      const client = new Client({ connection, namespace: config.temporal.namespace });
      try {
        const intake = await fire(client, config, alert('RateLimitExceeded', { service: 'audit-app', severity: 'high' }));
        const waiting = await waitForStatus(client, intake.workflowId, 'the raise-rate-limit approval', (s) => s.pendingApprovals.length > 0, 90_000);
        assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['raise-rate-limit'], waiting.timeline.map((e) => e.message).join('\n'));
        assert.match(waiting.pendingApprovals[0]!.question, /Raise the rate limit from 20 to 60 per client and window for 20 s, then put it back\?$/);
        assert.equal(await redis.exists(LIMIT_KEY), 0, 'not raised before approval');

        await actOnIncident(client, intake.workflowId, { kind: 'approve', step: 'raise-rate-limit', by: 'dana' });
        const held = await waitForStatus(client, intake.workflowId, 'the raise held', (s) => s.currentStep.startsWith('Waiting to undo: '), 60_000);
        assert.equal(await redis.get(LIMIT_KEY), '60', 'the backend reads the raised limit');
        assert.equal(await requestAs(clients[0]!), 200, 'a client that was limited passes now');
        const raisedAt = Date.parse(held.timeline.find((e) => e.message === 'Raised the rate limit from 20 to 60.')!.at);
        const dueAt = Date.parse(held.undos![0]!.dueAt!);
        assert.ok(Math.abs(dueAt - raisedAt - 20_000) < 2_000, `due ${held.undos![0]!.dueAt}`);
        const shown = await workspace.run(['--config', configFile, 'show', intake.workflowId]);
        assert.match(shown.stdout, /Undo steps:\n {2}- put the rate limit back to unset \(the backend's default, 20\): due \S+ \S+Z \(or when the incident closes, if sooner\)/, shown.stdout + shown.stderr);

        // The worker dies while the raise lasts; its due time passes with no worker at all.
        first.child.kill('SIGKILL');
        assert.notEqual(await exitWithin(first, 10_000), 'timeout');
        await new Promise((r) => setTimeout(r, Math.max(0, dueAt - Date.now()) + 2_000));
        assert.equal(await redis.get(LIMIT_KEY), '60', 'nobody has put it back yet');

        spawnWorker();
        const outcome = await outcomeOf(client, intake.workflowId, { timeoutMs: 90_000 });
        const messages = outcome.timeline.map((e) => e.message);
        assert.equal(outcome.resolution, 'remediated', messages.join('\n'));
        assert.ok(messages.includes("Put the rate limit back to unset (the backend's default, 20). (its time is up)"), messages.join('\n'));
        assert.equal(outcome.timeline.filter((e) => e.message === 'Raised the rate limit from 20 to 60.').length, 1, 'raised once');
        assert.equal(await redis.exists(LIMIT_KEY, RAISE_KEY), 0, 'the limit key is absent again, as before');
        await waitFor('429s again at the default limit', async () => ((await requestAs(clients[0]!)) === 429 ? true : undefined), 30_000);
        await recordHistoryIfAsked(intake.workflowId, 'rate-limiting-raised-and-reverted');
      } finally {
        await connection.close();
      }
    } finally {
      await stopTraffic();
      for (const child of children) {
        if (child.child.exitCode === null && child.child.signalCode === null) {
          child.child.kill('SIGTERM');
          await exitWithin(child, 20_000);
        }
      }
    }
  });
});
