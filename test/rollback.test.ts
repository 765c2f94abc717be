/**
 * The rollback activity against the real Docker engine, called directly: it is idempotent (run twice, the second
 * run changes nothing and says so) and it resumes where a crash left it (the old container already renamed away,
 * or the new one created but not started).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { createDockerActivities, PREVIOUS_IMAGE_LABEL, type RollbackResult } from '../src/activities/docker';
import { BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE } from '../src/sandbox/images';
import { suiteCleanups } from './support/cleanups';
import { testConfig } from './support/config';
import { startBackend, testDocker, type SandboxContainer } from './support/sandbox';
import { waitFor } from './support/wait';

const ROLLED_BACK_FROM_LABEL = 'runbooks.rolled-back-from';

async function healthStatus(port: number): Promise<number | string> {
  return fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) }).then(
    (r) => r.status,
    (err: Error) => err.message,
  );
}

describe('rollbackContainer against a real Docker engine', () => {
  let docker: Docker;
  const cleanups = suiteCleanups();

  before(() => {
    docker = testDocker();
  });

  /** The one place this file calls the activity, as the worker would on each attempt: its config names the container. */
  function rollback(backend: SandboxContainer, image: string): Promise<RollbackResult> {
    const config = testConfig({ targets: { backend: { container: backend.name, healthUrl: `http://127.0.0.1:${backend.port}/health` } } });
    return createDockerActivities(docker, config).rollbackContainer({ target: 'backend', image });
  }

  /** A backend on the broken image, labelled with the healthy one to roll back to, answering 404 on /health. */
  async function brokenBackend(): Promise<{ backend: SandboxContainer; original: Docker.ContainerInspectInfo }> {
    const backend = await startBackend(docker, BACKEND_BROKEN_IMAGE, BACKEND_HEALTHY_IMAGE);
    cleanups.push(() => backend.remove());
    await waitFor('the broken backend to answer', async () => ((await healthStatus(backend.port)) === 404 ? true : undefined));
    return { backend, original: await backend.container.inspect() };
  }

  /** The container holding the name, and the ones kept for the review, as the engine lists them. */
  async function containersOf(backend: SandboxContainer) {
    const named = await docker.listContainers({ all: true, filters: { name: [`^/${backend.name}$`] } });
    const kept = await docker.listContainers({ all: true, filters: { name: [`^/${backend.name}-replaced-`] } });
    return { named, kept };
  }

  /** One container with the name, running the healthy image with the original's command and host config, serving /health 200; one kept. */
  async function assertRolledBack(backend: SandboxContainer, original: Docker.ContainerInspectInfo): Promise<Docker.ContainerInspectInfo> {
    const { named, kept } = await containersOf(backend);
    assert.equal(named.length, 1, `one container named ${backend.name}`);
    assert.equal(kept.length, 1, `one ${backend.name}-replaced-* kept: ${kept.map((c) => c.Names.join()).join(' | ')}`);
    const current = await docker.getContainer(backend.name).inspect();
    assert.equal(current.Config.Image, BACKEND_HEALTHY_IMAGE);
    assert.equal(current.State.Running, true);
    assert.notEqual(current.Id, original.Id);
    assert.deepEqual(current.Config.Cmd, original.Config.Cmd, 'same command');
    assert.equal(current.HostConfig.NetworkMode, original.HostConfig.NetworkMode);
    assert.equal(current.HostConfig.Init, original.HostConfig.Init);
    assert.equal(current.Config.Labels?.[ROLLED_BACK_FROM_LABEL], BACKEND_BROKEN_IMAGE);
    assert.equal(current.Config.Labels?.[PREVIOUS_IMAGE_LABEL], undefined, 'the new container has nothing to roll back to');

    const old = await docker.getContainer(kept[0]!.Id).inspect();
    assert.equal(old.Id, original.Id, 'the kept container is the original');
    assert.equal(old.Name, `/${backend.name}-replaced-${original.Id.slice(0, 12)}`);
    assert.equal(old.Config.Image, BACKEND_BROKEN_IMAGE);
    assert.equal(old.State.Running, false);

    await waitFor('/health 200 from the rolled-back backend', async () => ((await healthStatus(backend.port)) === 200 ? true : undefined));
    return current;
  }

  test('run twice: the second run reports alreadyDone and changes nothing', async () => {
    const { backend, original } = await brokenBackend();

    const first = await rollback(backend, BACKEND_HEALTHY_IMAGE);
    assert.deepEqual(first, {
      image: BACKEND_HEALTHY_IMAGE,
      replacedImage: BACKEND_BROKEN_IMAGE,
      keptAs: `${backend.name}-replaced-${original.Id.slice(0, 12)}`,
      alreadyDone: false,
    });
    const afterFirst = await assertRolledBack(backend, original);

    const second = await rollback(backend, BACKEND_HEALTHY_IMAGE);
    assert.deepEqual(second, { image: BACKEND_HEALTHY_IMAGE, replacedImage: BACKEND_BROKEN_IMAGE, alreadyDone: true });
    const afterSecond = await assertRolledBack(backend, original);
    assert.equal(afterSecond.Id, afterFirst.Id, 'the second run left the rolled-back container alone');
    assert.equal(afterSecond.State.StartedAt, afterFirst.State.StartedAt, 'and did not restart it');
  });

  test('a crash between renaming the old container and creating the new one: the next attempt finishes the job', async () => {
    const { backend, original } = await brokenBackend();
    // What the activity had done when the worker died: the old container stopped and renamed away, no new one yet.
    await backend.container.stop({ t: 1 });
    await docker.getContainer(backend.name).rename({ name: `${backend.name}-replaced-${original.Id.slice(0, 12)}` });
    assert.equal((await containersOf(backend)).named.length, 0);

    const result = await rollback(backend, BACKEND_HEALTHY_IMAGE);

    assert.deepEqual(result, {
      image: BACKEND_HEALTHY_IMAGE,
      replacedImage: BACKEND_BROKEN_IMAGE,
      keptAs: `${backend.name}-replaced-${original.Id.slice(0, 12)}`,
      alreadyDone: false,
    });
    await assertRolledBack(backend, original);
  });

  test('a crash between creating the new container and starting it: the next attempt starts it and reports alreadyDone', async () => {
    const { backend, original } = await brokenBackend();
    await rollback(backend, BACKEND_HEALTHY_IMAGE);
    // The state a crash right after `docker create` leaves: the new container exists, not running.
    await docker.getContainer(backend.name).stop({ t: 1 });
    const created = await docker.getContainer(backend.name).inspect();
    assert.equal(created.State.Running, false);

    const result = await rollback(backend, BACKEND_HEALTHY_IMAGE);

    assert.deepEqual(result, { image: BACKEND_HEALTHY_IMAGE, replacedImage: BACKEND_BROKEN_IMAGE, alreadyDone: true });
    const current = await assertRolledBack(backend, original);
    assert.equal(current.Id, created.Id, 'the created container was started, not replaced');
  });
});
