// `runbooks demo --scenario deploy` as a user runs it, against the audit-app sandbox on the harness's Docker engine: a
// good version goes out and is recorded, a bad one is rolled back by the deployment itself with an incident opened,
// exit 0; and its --print-config snippet passes `config check`.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { dockerClient } from '../src/activities';
import { backendImage, removeAuditApp } from '../src/sandbox/auditApp';
import { demoScenarios } from '../src/sandbox/scenarios';
import { cliWorkspace } from './support/cli';
import { testConfigInput } from './support/config';
import { dropAuditSchema } from './support/audit';
import { parseConfig } from '../src/config/load';
import { requireEnv } from './support/env';
import { freeAuditAppPorts, sandboxPlaceArgs } from './support/sandbox';

describe('runbooks demo --scenario deploy on the audit-app sandbox', { timeout: 280_000 }, () => {
  const workspace = cliWorkspace('demo-deploy-test');
  const prefix = `demo-${randomBytes(3).toString('hex')}-`;
  const { good, bad } = demoScenarios.deploy.deployment;
  let docker: Docker;
  let place: string[];
  let configFile: string;
  const configInput = testConfigInput();

  before(async () => {
    docker = dockerClient(requireEnv('DOCKER_HOST'));
    place = sandboxPlaceArgs(prefix, await freeAuditAppPorts());
    configFile = workspace.writeConfig(configInput);
    // The good version is built by the deployment (a commit of the running image): an earlier run's tag holds an older server.
    await docker.getImage(backendImage(good)).remove({ force: true }).catch(() => undefined);
  });

  after(async () => {
    await removeAuditApp(docker, prefix);
    await dropAuditSchema(parseConfig(configInput));
    workspace.remove();
  });

  test('--print-config prints the targets and the deploy section, and the snippet passes config check', async () => {
    const snippet = await workspace.run(['demo', '--print-config', '--scenario', 'deploy', ...place]);
    assert.equal(snippet.code, 0, snippet.stderr);
    assert.match(snippet.stdout, /deploy:\n\s+build:\n\s+versionFile: \/app\/VERSION/);
    const file = path.join(workspace.scratch, 'demo-snippet.yaml');
    writeFileSync(file, snippet.stdout);
    const checked = await workspace.run(['config', 'check', file]);
    assert.equal(checked.code, 0, checked.stderr);
  });

  test('deploys the good version, then the bad one, which is rolled back by itself with an incident, and exits 0', async () => {
    const result = await workspace.run(['--config', configFile, 'demo', ...place, '--scenario', 'deploy'], { timeoutMs: 240_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, new RegExp(`succeeded: ${backendImage('1.0.0')} → ${backendImage(good)}`));
    assert.match(result.stdout, new RegExp(`rolled-back: ${backendImage(good)} → ${backendImage(bad.version)} in [\\d.]+ s — /health did not answer 200`));
    assert.match(result.stdout, /incident opened: DeploymentFailed-deploy-/);
    assert.match(result.stdout, /removed the sandbox/);
  });
});
