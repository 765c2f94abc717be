// A new user's machine: Docker is installed but no daemon answers. `runbooks sandbox up` (whose code `dev --sandbox`
// and `demo` share) starts a private engine, says where it is, builds the images there and runs the audit-app; the
// other sandbox commands find the engine again; `sandbox down --engine` stops it by its PID.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_DOCKER_SOCKET } from '../src/sandbox/engine';
import { dockerClient } from '../src/activities';
import { isAlive } from './harness/util';
import { cliEnv, cliWorkspace } from './support/cli';
import { freeAuditAppPorts, sandboxPlaceArgs } from './support/sandbox';

describe('runbooks sandbox on a machine where no Docker daemon answers', { timeout: 280_000 }, () => {
  const workspace = cliWorkspace('sandbox-engine');
  // No DOCKER_HOST: the CLI looks at the default socket, finds nothing, and starts its own engine.
  const env = cliEnv();
  delete env.DOCKER_HOST;
  let place: string[];
  let enginePid: number | undefined;

  before(async () => {
    const answers = await dockerClient(`unix://${DEFAULT_DOCKER_SOCKET}`)
      .ping()
      .then(() => true, () => false);
    assert.equal(answers, false, `a Docker daemon answers at ${DEFAULT_DOCKER_SOCKET}: this machine cannot show the no-daemon path (stop that daemon to run this test)`);
    const ports = await freeAuditAppPorts();
    place = sandboxPlaceArgs('engine-', ports);
  });

  after(async () => {
    // Only what this test started, by its PID.
    if (enginePid !== undefined && isAlive(enginePid)) process.kill(enginePid, 'SIGTERM');
    workspace.remove();
  });

  test('up starts a private engine in .runbooks/docker and says so; status finds it again; down --engine stops it by its PID', async () => {
    const up = await workspace.run(['sandbox', 'up', ...place], { env, timeoutMs: 240_000 });
    enginePid = Number(/started a private Docker engine \(dockerd pid (\d+)/.exec(up.stderr)?.[1]) || undefined;
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
    assert.ok(enginePid, up.stderr);
    assert.match(up.stderr, /files in \.runbooks\/docker\/.*export DOCKER_HOST=unix:\/\/\S+docker\.sock to reuse it; `runbooks sandbox down --engine` stops it/);
    assert.match(up.stderr, /audit-app is up: http:\/\/127\.0\.0\.1:\d+\/health answers 200/);
    // The printed config names that engine: runbooks acting on the sandbox must talk to it, not the default socket.
    assert.match(up.stdout, /docker:\n {2}host: unix:\/\/\S+docker\.sock\n/);
    assert.ok(existsSync(path.join(workspace.scratch, '.runbooks', 'docker', 'dockerd.pid')));

    const status = await workspace.run(['sandbox', 'status', '--prefix', 'engine-', '--json'], { env });
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout) as { engine: { origin: string; pid: number }; health: { status: number } };
    assert.equal(parsed.engine.origin, 'reused');
    assert.equal(parsed.engine.pid, enginePid);
    assert.equal(parsed.health.status, 200);

    const down = await workspace.run(['sandbox', 'down', '--prefix', 'engine-', '--engine'], { env, timeoutMs: 120_000 });
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /removed engine-backend, engine-postgres, engine-redis|removed engine-/);
    assert.match(down.stdout, new RegExp(`stopped the private Docker engine \\(dockerd pid ${enginePid}\\)`));
    assert.equal(isAlive(enginePid), false);
  });
});
