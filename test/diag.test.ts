// `runbooks diag`: the runbook's useful commands as a person runs them, against the sandbox audit-app.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import Redis from 'ioredis';
import { stringify } from 'yaml';
import { dockerClient } from '../src/activities';
import { execInContainer } from '../src/activities/docker';
import { auditAppTargets, removeAuditApp, type AuditApp } from '../src/sandbox/auditApp';
import { requireEnv } from './support/env';
import { startTestAuditApp } from './support/sandbox';

const BIN = path.resolve(__dirname, '..', 'bin', 'runbooks.js');

describe('runbooks diag, against the sandbox audit-app', { timeout: 200_000 }, () => {
  let docker: Docker;
  let app: AuditApp;
  let dir: string;
  let configFile: string;
  const prefix = `diag-${randomBytes(3).toString('hex')}-`;

  function diag(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      // Without the harness's REDIS_URL, which would override targets.redis.url (the machine's Redis, not the sandbox's).
      const env = { ...process.env };
      delete env.REDIS_URL;
      execFile(process.execPath, [BIN, '--config', configFile, 'diag', ...args], { timeout: 60_000, env }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
    });
  }

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    app = await startTestAuditApp(docker, prefix, { rateLimit: 5 });
    dir = mkdtempSync(path.join(tmpdir(), 'runbooks-diag-'));
    configFile = path.join(dir, 'runbooks.yaml');
    writeFileSync(configFile, stringify(auditAppTargets(app, requireEnv('DOCKER_HOST'))));
  });

  after(async () => {
    await removeAuditApp(docker, prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  test('db-size, stats, rate-limits and backup answer in text and --json', async () => {
    const [size, sizeJson, stats, backup] = await Promise.all([diag('db-size'), diag('db-size', '--json'), diag('stats', '--json'), diag('backup', '--json')]);
    assert.equal(size.code, 0, size.stderr);
    assert.match(size.stdout, /^audit_app: \d+ [kM]B \(\d+ bytes\)\n$/);
    assert.equal(JSON.parse(sizeJson.stdout).database, 'audit_app');
    const containers = (JSON.parse(stats.stdout) as { name: string; running: boolean }[]).map((s) => [s.name, s.running]);
    assert.deepEqual(containers, [[app.containers.backend, true], [app.containers.redis, true], [app.containers.postgres, true]]);
    const dump = JSON.parse(backup.stdout) as { file: string; bytes: number; backupFile: string };
    assert.ok(dump.bytes > 0, backup.stdout);
    const listed = await execInContainer(docker, app.containers.postgres, ['ls', '/backups']);
    assert.ok(listed.output.includes(path.basename(dump.file)) && listed.output.includes('latest.dump'), listed.output);

    for (let i = 0; i < 8; i++) {
      await fetch(`${app.urls.api}/api/v1/counties`, { headers: { 'x-forwarded-for': '198.51.100.9' } }).then((r) => r.body?.cancel());
    }
    const limits = await diag('rate-limits', '--json');
    const status = JSON.parse(limits.stdout) as { keys: number; total: number; top: { key: string; client: string; count: number }[] };
    assert.ok(status.keys >= 1, `${limits.stdout} ${limits.stderr}`);
    assert.deepEqual(status.top[0], { key: 'rate_limit:198.51.100.9', client: '198.51.100.9', count: 8 });
    assert.ok(status.total >= 8, limits.stdout);
    assert.match((await diag('rate-limits')).stdout, /rate_limit:198\.51\.100\.9\s+8/);
  });

  test('cache-clear asks for --yes and then flushes the Redis database', async () => {
    const refused = await diag('cache-clear');
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--yes/);
    const redis = new Redis(app.urls.redis);
    try {
      await redis.set('cache:documents:Nairobi', 'x');
      const cleared = await diag('cache-clear', '--yes');
      assert.equal(cleared.code, 0, `${cleared.stdout} ${cleared.stderr}`);
      assert.match(cleared.stdout, /^flushed: \d+ key\(s\) dropped\n$/);
      assert.equal(await redis.exists('cache:documents:Nairobi'), 0, 'the cached key is gone');
    } finally {
      redis.disconnect();
    }
  });

  test('a target the config lacks is one line naming the key, exit 1', async () => {
    writeFileSync(configFile, stringify({ targets: {} }));
    const missing = await diag('db-size');
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim(), 'error: diag db-size: no target "postgres" is configured (targets.postgres)');
  });
});
