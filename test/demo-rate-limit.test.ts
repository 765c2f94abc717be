// `runbooks demo --scenario rate-limit --approve` as a user runs it, against an audit-app sandbox of its own on the
// harness's Docker engine: four clients flood the API over its limit, the runbook raises it once approved, verifies
// the 429s stopped from /metrics, and its timer puts the limit back before the incident closes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import Redis from 'ioredis';
import { dockerClient } from '../src/activities';
import { removeAuditApp } from '../src/sandbox/auditApp';
import { cliWorkspace } from './support/cli';
import { testConfigInput } from './support/config';
import { requireEnv } from './support/env';
import { freeAuditAppPorts, sandboxPlaceArgs } from './support/sandbox';

describe('runbooks demo: the rate-limit scenario', { timeout: 290_000 }, () => {
  const workspace = cliWorkspace('demo-rate-limit-test');
  const prefix = `demorl-${randomBytes(3).toString('hex')}-`;
  let docker: Docker;
  let place: string[];
  let redisPort: number;
  let configFile: string;

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    const ports = await freeAuditAppPorts();
    redisPort = ports.redis;
    place = sandboxPlaceArgs(prefix, ports);
    configFile = workspace.writeConfig(testConfigInput());
  });

  after(async () => {
    await removeAuditApp(docker, prefix);
    workspace.remove();
  });

  test('rate-limit --approve: a real flood of four clients gets 429s; the approved raise lets them through, verified, then put back by its timer; exit 0', async () => {
    const started = Date.now();
    const result = await workspace.run(['--config', configFile, 'demo', ...place, '--keep', '--timeout', '200', '--scenario', 'rate-limit', '--approve'], { timeoutMs: 250_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /flooding http:\/\/127\.0\.0\.1:\d+\/api\/v1\/counties from 4 client\(s\) \(X-Forwarded-For 198\.51\.100\.11, .*\), 5 request\(s\)\/s each/);
    assert.match(result.stdout, /demo policy \(instead of the catalog's\): \{"rate-limiting":\{"raiseFactor":3,"raiseMinutes":0\.34,/);
    assert.match(result.stdout, /detected\s+alertmanager\s+RateLimitExceeded fired for audit-app \(high\)\./);
    assert.match(result.stdout, /4 rate_limit:\* key\(s\), \d+ request\(s\) in the current windows; busiest: 198\.51\.100\.1\d/);
    assert.match(result.stdout, /→ approving "raise-rate-limit" as demo \(--approve\)/);
    assert.match(result.stdout, /Raised the rate limit from 120 to 360\./);
    assert.match(result.stdout, /429s are back under 10 per minute/);
    assert.match(result.stdout, /Put the rate limit back to unset \(the backend's default, 120\)\. \(its time is up\)/);
    assert.match(result.stdout, /RateLimitExceeded-[0-9a-f]{16} resolved\./);
    const redis = new Redis(`redis://127.0.0.1:${redisPort}/0`);
    try {
      assert.equal(await redis.exists('config:rate_limit:limit', 'runbooks:rate_limit:raise'), 0, 'the limit is the default again');
    } finally {
      redis.disconnect();
    }
    process.stdout.write(`# the demo took ${Math.round((Date.now() - started) / 1000)} s\n`);
  });
});
