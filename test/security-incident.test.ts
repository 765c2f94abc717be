// The Security Incidents runbook (§7) against the sandbox audit-app, on a real worker and real Temporal: a brute-force
// flood of failed logins from one client (through the backend's trusted proxy, X-Forwarded-For from 127.0.0.1) leaves
// real audit_log rows and log lines; BruteForceDetected goes through intake; the backend really answers the blocked
// client 403 and everyone else 200; the incident's tasks really hold its resolution; `runbooks unblock` lifts it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import Redis from 'ioredis';
import { dockerClient } from '../src/activities';
import { createDockerActivities } from '../src/activities/docker';
import { createPostgresActivities } from '../src/activities/postgres';
import { createRedisActivities } from '../src/activities/redis';
import { actOnIncident, IncidentOperationError } from '../src/incidents/operations';
import { auditAppTargets, breakAuditApp, removeAuditApp, type AuditApp } from '../src/sandbox/auditApp';
import { ApiRoutes, RedisKeys } from '../src/sandbox/auditApp/contract';
import { dropAuditSchema } from './support/audit';
import { cliEnv, cliWorkspace } from './support/cli';
import { testConfig, testConfigInput } from './support/config';
import { requireEnv } from './support/env';
import { recordHistoryIfAsked } from './support/histories';
import { alert, fire, outcomeOf, waitForStatus } from './support/incidents';
import { startWorker, type RunningWorker } from './support/worker';
import { startTestAuditApp } from './support/sandbox';

const ATTACKER = '203.0.113.77';
const BYSTANDER = '198.51.100.23';
const TASKS = ['rotate-credentials', 'patch-vulnerabilities', 'update-security-rules'];

describe('Security Incidents runbook, against the sandbox audit-app', { timeout: 280_000 }, () => {
  let docker: Docker;
  let app: AuditApp;
  let worker: RunningWorker;
  let config: ReturnType<typeof testConfig>;
  const workspace = cliWorkspace('security-test');
  const prefix = `secrb-${randomBytes(3).toString('hex')}-`;
  const overrides = () => ({ ...auditAppTargets(app), approvers: { 'block-ip': ['sam'] } });

  /** What the backend answers a client (its address as the trusted proxy forwards it). */
  async function answerTo(ip: string): Promise<number> {
    const response = await fetch(`${app.urls.api}${ApiRoutes.counties}`, { headers: { 'x-forwarded-for': ip }, signal: AbortSignal.timeout(10_000) });
    await response.body?.cancel();
    return response.status;
  }
  async function denyList(): Promise<string[]> {
    const redis = new Redis(app.urls.redis, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await redis.connect();
    try {
      return (await redis.smembers(RedisKeys.blocklist)).sort();
    } finally {
      redis.disconnect();
    }
  }

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    app = await startTestAuditApp(docker, prefix);
    config = testConfig(overrides());
    worker = await startWorker(config);
  });

  after(async () => {
    await worker?.stop();
    await dropAuditSchema(config);
    await removeAuditApp(docker, prefix);
    workspace.remove();
  });

  test('a brute-force flood: blocked once approved (403 to it, 200 to others), its audit_log rows found, resolved only when the tasks are done', async () => {
    const broken = await breakAuditApp(docker, app, 'brute-force', { ip: ATTACKER, count: 25 });
    assert.match(broken.description, new RegExp(`^25 failed logins from ${ATTACKER.replace(/\./g, '\\.')} `));
    assert.equal(await answerTo(ATTACKER), 200, 'not blocked yet');

    const firing = alert('BruteForceDetected', { ip: ATTACKER });
    const intake = await fire(worker.client, config, firing);
    const waiting = await waitForStatus(worker.client, intake.workflowId, 'the block-ip approval', (s) => s.pendingApprovals.length > 0, 60_000);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['block-ip']);
    assert.deepEqual(waiting.tasks.map((t) => [t.id, t.state]), TASKS.map((id) => [id, 'open']));
    assert.equal(await answerTo(ATTACKER), 200, 'nothing blocked before approval');
    assert.deepEqual(await denyList(), []);

    await actOnIncident(worker.client, intake.workflowId, { kind: 'approve', step: 'block-ip', by: 'sam' });
    const investigated = await waitForStatus(worker.client, intake.workflowId, 'the investigation', (s) => s.timeline.some((e) => e.message.startsWith(`Investigation of ${ATTACKER}:`)), 60_000);
    const messages = investigated.timeline.map((e) => e.message);
    assert.deepEqual(await denyList(), [ATTACKER]);
    assert.equal(await answerTo(ATTACKER), 403, 'the blocked client is refused');
    assert.equal(await answerTo(BYSTANDER), 200, 'everyone else is served');
    assert.ok(messages.includes(`Blocked ${ATTACKER}: added to Redis set blocklist:ips (1 entry); the backend answers it 403.`), messages.join('\n'));
    assert.ok(
      messages.some((m) => new RegExp(`^25 audit_log row\\(s\\) of ${ATTACKER.replace(/\./g, '\\.')}: users admin ×9, alice ×8, root ×8; actions login-failed ×25; from \\S+ to \\S+\\.$`).test(m)),
      messages.join('\n'),
    );
    // Its 25 logins and the two requests this test made as it before the block.
    assert.ok(messages.some((m) => /^\d+ of \d+ log line\(s\) of \S+backend are this source's: 27 request\(s\) \(200 ×2, 201 ×25\), 0 blocked, 0 rate limited; paths \/api\/v1\/audit ×25, \/api\/v1\/counties ×2\.$/.test(m)), messages.join('\n'));
    const summary = investigated.timeline.find((e) => e.message.startsWith(`Investigation of ${ATTACKER}:`))!;
    assert.match(summary.message, /: 27 request\(s\) in the backend's log, 25 audit_log row\(s\); users touched: admin, alice, root; actions: login-failed ×25; first seen \S+, last seen \S+\.$/);
    assert.equal(summary.data?.auditLogRows, 25);

    // Blocking twice does one thing: the alert re-sent, the activity run again.
    assert.equal((await fire(worker.client, config, firing)).action, 'signalled');
    const again = await createRedisActivities(config).blockSource({ target: 'redis', source: ATTACKER });
    assert.deepEqual({ added: again.added, size: again.size }, { added: false, size: 1 });
    assert.deepEqual(await denyList(), [ATTACKER]);

    // The tasks hold the incident open: a resolve is refused until they are done.
    await waitForStatus(worker.client, intake.workflowId, 'waiting for the tasks', (s) => s.phase === 'needs-human', 30_000);
    await assert.rejects(actOnIncident(worker.client, intake.workflowId, { kind: 'resolve', by: 'sam' }), (err: unknown) => {
      assert.ok(err instanceof IncidentOperationError && err.reason === 'tasks-open', String(err));
      assert.match(err.message, /3 task\(s\) still open \(rotate-credentials, patch-vulnerabilities, update-security-rules\)/);
      return true;
    });
    // `runbooks show` lists the tasks: who completed one and their note, the open ones with their due time.
    const configFile = workspace.writeConfig(testConfigInput(overrides()));
    // REDIS_URL (the harness's Redis, in the CLI's environment) would win over the sandbox's targets.redis.url.
    const env = cliEnv({ REDIS_URL: '' });
    await actOnIncident(worker.client, intake.workflowId, { kind: 'complete-task', task: 'rotate-credentials', by: 'sam', note: 'rotated admin, alice and root' });
    const shown = await workspace.run(['--config', configFile, 'show', intake.workflowId], { env });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(
      shown.stdout,
      new RegExp(
        [
          '\\nTasks:',
          '  rotate-credentials: Rotate exposed credentials \\(of the users the source touched\\) \\(done by sam \\S+ \\S+Z: rotated admin, alice and root\\)',
          '  patch-vulnerabilities: Patch the vulnerabilities it used \\(open, due \\S+ \\S+Z\\)',
          '  update-security-rules: Update security rules \\(firewall, WAF, rate limits\\) \\(open, due \\S+ \\S+Z\\)',
          `    \\S+ complete-task ${intake.workflowId} --task TASK --note '…' {3}\\(or resolve --reason '…'\\)\\n`,
        ].join('\\n'),
      ),
      shown.stdout,
    );
    for (const task of TASKS.slice(1)) await actOnIncident(worker.client, intake.workflowId, { kind: 'complete-task', task, by: 'kim', note: `${task}: done` });
    const outcome = await outcomeOf(worker.client, intake.workflowId, { timeoutMs: 60_000 });
    assert.equal(outcome.resolution, 'remediated', outcome.timeline.map((e) => e.message).join('\n'));
    assert.equal(outcome.timeline.filter((e) => e.kind === 'task-done').length, 3);
    assert.equal(await answerTo(ATTACKER), 403, 'the block outlives the incident until a human lifts it');
    await recordHistoryIfAsked(intake.workflowId, 'security-incident-blocked');

    // A human lifts it.
    const unblocked = await workspace.run(['--config', configFile, 'unblock', ATTACKER, '--by', 'sam'], { env });
    assert.equal(unblocked.code, 0, unblocked.stderr);
    assert.equal(unblocked.stdout, `unblocked ${ATTACKER} (removed from Redis set blocklist:ips by sam; 0 left)\n`);
    assert.equal(await answerTo(ATTACKER), 200);
    const twice = await workspace.run(['--config', configFile, 'unblock', ATTACKER], { env });
    assert.equal(twice.stdout, `${ATTACKER} was not blocked (Redis set blocklist:ips; 0 entries)\n`);
    const hostile = await workspace.run(['--config', configFile, 'unblock', '$(rm -rf /)'], { env });
    assert.equal(hostile.code, 1);
    assert.match(hostile.stderr, /"\$\(rm -rf \/\)" is not an IPv4 or IPv6 address or CIDR network/);
  });

  test('the worker checks the source again: a hostile one is refused with the named error before anything is written or queried', async () => {
    const hostile = ['0.0.0.0/0', '::/0', 'attacker.example.com', '1.2.3.4; rm -rf /'];
    const refused = (type: string, reason: RegExp) => (err: Error & { type?: string; nonRetryable?: boolean }) => {
      assert.equal(err.type, type, err.message);
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, reason);
      return true;
    };
    const reasonFor = (value: string, verb: string) =>
      value.endsWith('/0') ? new RegExp(`^${value.replace(/\./g, '\\.')} is wider than /(16|48): refusing to ${verb} every address$`) : /is not an IPv4 or IPv6 address or CIDR network/;
    // The sandbox's real Redis, PostgreSQL and Docker; and targets where nothing answers, so any call that went out
    // would fail with a connection error instead of the refusal.
    const nowhere = testConfig({ targets: { backend: { container: app.containers.backend, healthUrl: 'http://127.0.0.1:9/health' }, postgres: { container: 'postgres', url: 'postgres://postgres@127.0.0.1:9/audit_app' } } });
    const lookups = [
      { postgres: createPostgresActivities(config, docker), docker: createDockerActivities(docker, config) },
      { postgres: createPostgresActivities(nowhere, docker), docker: createDockerActivities(dockerClient('http://127.0.0.1:9'), nowhere) },
    ];
    const redisActivities = createRedisActivities(config);
    for (const source of hostile) {
      await assert.rejects(redisActivities.blockSource({ target: 'redis', source }), refused('BlockRefused', reasonFor(source, 'block')));
      for (const { postgres, docker: logs } of lookups) {
        await assert.rejects(postgres.auditLogForSource({ target: 'postgres', source }), refused('InvalidInput', reasonFor(source, 'look up')));
        await assert.rejects(logs.backendLogForSource({ target: 'backend', source }), refused('InvalidInput', reasonFor(source, 'look up')));
      }
    }
    assert.deepEqual(await denyList(), [], 'nothing was added');
    // The same calls with a good source do go out: to nowhere they fail to connect, so the refusals above came first.
    const [, unreachable] = lookups;
    await assert.rejects(unreachable!.postgres.auditLogForSource({ target: 'postgres', source: ATTACKER }), (err: Error & { type?: string }) => err.type !== 'InvalidInput');
    await assert.rejects(unreachable!.docker.backendLogForSource({ target: 'backend', source: ATTACKER }), (err: Error & { type?: string }) => err.type !== 'InvalidInput');
  });

  test('hostile labels through intake: refused as they are; nothing is blocked, the backend still serves everyone', async () => {
    const labels = ['0.0.0.0/0', '::/0', `${ATTACKER}; rm -rf /`, "' OR 1=1 --", 'attacker.example.com', '127.0.0.1', 'x'.repeat(10_240)];
    const fired = await Promise.all(labels.map((ip) => fire(worker.client, config, alert('SuspiciousActivity', { ip, severity: 'high' }))));
    for (const [i, intake] of fired.entries()) {
      const status = await waitForStatus(worker.client, intake.workflowId, 'the refusal', (s) => s.phase === 'needs-human', 60_000);
      const refusal = status.timeline.find((e) => e.message.startsWith("The alert's source is refused: label ip: "));
      assert.ok(refusal, `${labels[i]!.slice(0, 40)}: ${status.timeline.map((e) => e.message).join('\n')}`);
      assert.equal(status.pendingApprovals.length, 0);
      await actOnIncident(worker.client, intake.workflowId, { kind: 'resolve', by: 'sam', reason: 'test: a hostile label' });
      await outcomeOf(worker.client, intake.workflowId);
    }
    assert.deepEqual(await denyList(), []);
    assert.equal(await answerTo(BYSTANDER), 200);
  });
});
