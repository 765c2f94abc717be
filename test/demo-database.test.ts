// `runbooks demo` for the database and latency scenarios, and `runbooks dev --sandbox`, as a user runs them, against
// one audit-app sandbox on the harness's Docker engine. (demo.test.ts has the API and Redis scenarios.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { Client as PgClient } from 'pg';
import { dockerClient } from '../src/activities';
import { approvalKinds } from '../src/runbooks/catalog';
import { removeAuditApp } from '../src/sandbox/auditApp';
import { cliEnv, cliWorkspace, exitWithin } from './support/cli';
import { testConfigInput } from './support/config';
import { requireEnv } from './support/env';
import { freeAuditAppPorts, sandboxPlaceArgs } from './support/sandbox';
import { waitFor } from './support/wait';

describe('runbooks demo: the database and latency scenarios, and dev --sandbox', { timeout: 290_000 }, () => {
  const workspace = cliWorkspace('demo-database-test');
  const prefix = `demodb-${randomBytes(3).toString('hex')}-`;
  let docker: Docker;
  let place: string[];
  let postgresPort: number;
  let configFile: string;
  const demo = (...args: string[]) => ['--config', configFile, 'demo', ...place, '--keep', '--timeout', '150', ...args];

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    const ports = await freeAuditAppPorts();
    postgresPort = ports.postgres;
    place = sandboxPlaceArgs(prefix, ports);
    configFile = workspace.writeConfig(testConfigInput());
  });

  after(async () => {
    await removeAuditApp(docker, prefix);
    workspace.remove();
  });

  test('db-down: the postgres container is stopped, restarted by the runbook, and verified with SELECT 1 and /health', async () => {
    const result = await workspace.run(demo('--scenario', 'db-down'), { timeoutMs: 200_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, new RegExp(`broke it: stopped ${prefix}postgres`));
    assert.match(result.stdout, /detected\s+alertmanager\s+DatabaseDown fired for audit-app \(critical\)\./);
    assert.match(result.stdout, new RegExp(`action\\s+runbooks\\s+Restarted container ${prefix}postgres\\.`));
    assert.match(result.stdout, /resolved\s+runbooks\s+/);
    assert.match(result.stdout, /DatabaseDown-[0-9a-f]{16} resolved\./);
  });

  test('db-restore --approve: after the restart /health still fails on the lost table; the approved pg_restore brings it back', async () => {
    const result = await workspace.run(demo('--scenario', 'db-restore', '--approve'), { timeoutMs: 200_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, new RegExp(`action\\s+runbooks\\s+Restarted container ${prefix}postgres\\.`));
    assert.match(result.stdout, /→ approving "restore-database" as demo \(--approve\)/);
    assert.match(result.stdout, new RegExp(`Restored ${prefix}postgres from /backups/latest\\.dump\\.`));
    assert.match(result.stdout, /DatabaseDown-[0-9a-f]{16} resolved\./);
  });

  test('db-connections --approve: real sessions idle in a transaction are terminated once the demo approves, and are gone', async () => {
    const result = await workspace.run(demo('--scenario', 'db-connections', '--approve'), { timeoutMs: 200_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /demo policy \(instead of the catalog's\): \{"db-connections":\{"idleInTransactionMinutes":0\.02\}\}/);
    assert.match(result.stdout, /→ approving "terminate-sessions" as demo \(--approve\)/);
    assert.match(result.stdout, /Terminated 3 session\(s\) idle in a transaction: pids \d+, \d+, \d+\./);
    assert.match(result.stdout, /DatabaseConnectionsHigh-[0-9a-f]{16} resolved\./);
    const pg = new PgClient({ connectionString: `postgres://postgres@127.0.0.1:${postgresPort}/audit_app` });
    await pg.connect();
    try {
      const { rows } = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle in transaction'");
      assert.equal(rows[0]!.n, 0);
    } finally {
      await pg.end();
    }
  });

  test('db-connections without --approve cannot resolve: after --timeout it exits 1, says the incident was not resolved, and ends the incident', async () => {
    const result = await workspace.run(demo('--scenario', 'db-connections', '--timeout', '20'), { timeoutMs: 120_000 });
    assert.equal(result.code, 1, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /→ waiting for approval; in another terminal:\n\s+npx runbooks approve DatabaseConnectionsHigh-[0-9a-f]{16} --step terminate-sessions --by demo\n/);
    assert.doesNotMatch(result.stdout, /Terminated \d+ session/, 'nothing is terminated without the approval');
    assert.match(result.stdout, /terminated DatabaseConnectionsHigh-[0-9a-f]{16}: the demo stopped before it was resolved/);
    assert.match(result.stderr, /^error: the incident was not resolved within 20 s$/m);
  });

  test('etl-failure --approve: the download directory fills for real; clean-downloads once approved, the pipeline retried, freshness verified', async () => {
    const result = await workspace.run(demo('--scenario', 'etl-failure', '--approve'), { timeoutMs: 200_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /detected\s+alertmanager\s+ETLJobFailed fired for audit-app \(high\)\./);
    assert.match(result.stdout, /ENOSPC/);
    assert.match(result.stdout, /→ approving "clean-downloads" as demo \(--approve\)/);
    assert.match(result.stdout, /ETLJobFailed-[0-9a-f]{16} resolved\./);
  });

  test('slow-responses --approve: a slow route under steady traffic raises p95; the runbook measures it, restarts the backend once approved, and verifies p95', async () => {
    const result = await workspace.run(demo('--scenario', 'slow-responses', '--approve'), { timeoutMs: 200_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /sending steady traffic to http:\/\/127\.0\.0\.1:\d+/);
    const measured = /p95 over 5 s: .*\/api\/v1\/documents (\d+) ms/.exec(result.stdout);
    assert.ok(measured && Number(measured[1]) >= 2_500, result.stdout);
    assert.match(result.stdout, /→ approving "scale-backend" as demo \(--approve\)/);
    assert.match(result.stdout, new RegExp(`Restarted container ${prefix}backend\\.`));
    assert.match(result.stdout, /p95 is \d+ ms, under 1000 ms/);
    assert.match(result.stdout, /left the sandbox running \(\d+ requests sent\)/);
  });

  test('dev --sandbox points the runbooks at the sandbox with the local user as approver; the printed break and curl open a DatabaseDown incident that resolves', async () => {
    const dev = workspace.spawn(['--config', configFile, 'dev', '--sandbox', ...place], cliEnv({ PORT: '0', LOG_LEVEL: 'warn' }));
    try {
      await waitFor('the banner of runbooks dev --sandbox', async () => (/\n {2}\S.* show DatabaseDown-ba5eba1100000002\n/.test(dev.stdout) || dev.child.exitCode !== null ? true : undefined), 120_000);
      assert.equal(dev.child.exitCode, null, `runbooks dev exited early:\n${dev.stdout}\n${dev.stderr}`);
      assert.match(dev.stdout, new RegExp(`Sandbox\\s+audit-app ${prefix}\\*: backend http://127\\.0\\.0\\.1:\\d+, postgres postgres://postgres@127\\.0\\.0\\.1:${postgresPort}/audit_app`));
      const approvers = /Approvers\s+(.*)\n/.exec(dev.stdout)?.[1] ?? '';
      const me = /local token "(\S+)"/.exec(dev.stdout)?.[1];
      for (const kind of approvalKinds) assert.ok(approvers.includes(`${kind}: ${me}`), `${kind} in: ${approvers}`);
      const token = /^ {2}export RUNBOOKS_TOKEN=([0-9a-f]{64})\n/m.exec(dev.stdout)?.[1];
      assert.ok(token, dev.stdout);
      const breakCommand = new RegExp(`npx runbooks --config (\\S+) sandbox break db-stopped --prefix ${prefix}\\n`).exec(dev.stdout);
      assert.ok(breakCommand, dev.stdout);

      const broke = await workspace.run(['--config', breakCommand[1]!, 'sandbox', 'break', 'db-stopped', '--prefix', prefix]);
      assert.equal(broke.code, 0, broke.stderr);
      const curl = /curl -sS -X POST (\S+) -H 'content-type: application\/json' -H "authorization: Bearer \$RUNBOOKS_TOKEN" -d '(\{[^']*DatabaseDown[^']*\})'\n/.exec(dev.stdout);
      assert.ok(curl, dev.stdout);
      const fired = await fetch(curl[1]!, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: curl[2] });
      assert.equal(fired.status, 200, await fired.clone().text());
      let last = '';
      const shown = await waitFor(
        'the DatabaseDown incident to resolve',
        async () => {
          const result = await workspace.run(['--config', configFile, 'show', 'DatabaseDown-ba5eba1100000002']);
          last = `${result.stdout}${result.stderr}`;
          return /outcome\s+remediated by runbooks/.test(result.stdout) ? result : undefined;
        },
        120_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${last}\n--- runbooks dev:\n${dev.stdout.slice(-3000)}\n${dev.stderr.slice(-3000)}`));
      assert.match(shown.stdout, new RegExp(`Restarted container ${prefix}postgres\\.`));
      dev.child.kill('SIGINT');
      assert.equal(await exitWithin(dev, 30_000), 0, dev.stderr);
      assert.ok((await docker.listContainers({ filters: { name: [`^/${prefix}postgres$`] } })).length === 1, 'the sandbox keeps running after Ctrl-C');
    } finally {
      if (dev.child.exitCode === null) dev.child.kill('SIGKILL');
    }
  });
});
