// `runbooks demo --scenario security` as a user runs it, against an audit-app sandbox on the harness's Docker engine:
// a real brute-force flood, BruteForceDetected with the client's ip, the block approved and the tasks completed by
// --approve, and the backend refusing that client afterwards.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { dockerClient } from '../src/activities';
import { removeAuditApp } from '../src/sandbox/auditApp';
import { BRUTE_FORCE } from '../src/sandbox/auditApp/contract';
import { cliWorkspace } from './support/cli';
import { testConfigInput } from './support/config';
import { requireEnv } from './support/env';
import { freeAuditAppPorts, sandboxPlaceArgs } from './support/sandbox';

describe('runbooks demo --scenario security', { timeout: 290_000 }, () => {
  const workspace = cliWorkspace('demo-security-test');
  const prefix = `demosec-${randomBytes(3).toString('hex')}-`;
  let docker: Docker;
  let place: string[];
  let backendPort: number;
  let configFile: string;

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    const ports = await freeAuditAppPorts();
    backendPort = ports.backend;
    place = sandboxPlaceArgs(prefix, ports);
    configFile = workspace.writeConfig(testConfigInput());
  });

  after(async () => {
    await removeAuditApp(docker, prefix);
    workspace.remove();
  });

  test('--approve: the flooding client is blocked and investigated, the tasks completed, the incident resolved (exit 0)', async () => {
    const result = await workspace.run(['--config', configFile, 'demo', ...place, '--keep', '--timeout', '150', '--scenario', 'security', '--approve'], { timeoutMs: 220_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const ip = BRUTE_FORCE.ip.replace(/\./g, '\\.');
    assert.match(result.stdout, new RegExp(`broke it: 30 failed logins from ${ip} `));
    assert.match(result.stdout, /detected\s+alertmanager\s+BruteForceDetected fired for audit-app \(critical\)\./);
    assert.match(result.stdout, /→ approving "block-ip" as demo \(--approve\)/);
    assert.match(result.stdout, new RegExp(`Blocked ${ip}: added to Redis set blocklist:ips`));
    assert.match(result.stdout, new RegExp(`30 audit_log row\\(s\\) of ${ip}: users admin ×10, alice ×10, root ×10; actions login-failed ×30`));
    for (const task of ['rotate-credentials', 'patch-vulnerabilities', 'update-security-rules']) {
      assert.match(result.stdout, new RegExp(`→ completing task "${task}" as demo \\(--approve\\)`));
      assert.match(result.stdout, new RegExp(`demo completed task "${task}"`));
    }
    assert.match(result.stdout, /BruteForceDetected-[0-9a-f]{16} resolved\./);

    const blocked = await fetch(`http://127.0.0.1:${backendPort}/api/v1/counties`, { headers: { 'x-forwarded-for': BRUTE_FORCE.ip } });
    assert.equal(blocked.status, 403, 'the block stays until a human lifts it');
    const other = await fetch(`http://127.0.0.1:${backendPort}/api/v1/counties`, { headers: { 'x-forwarded-for': '198.51.100.23' } });
    assert.equal(other.status, 200);
  });
});
