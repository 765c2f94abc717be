/**
 * restartContainer against the real Docker engine, as the worker runs it on each attempt: a first attempt restarts; a
 * retry whose earlier attempt already restarted the container (the worker died before the server heard — what
 * `npm run chaos` caught) does not restart it again; a retry whose earlier attempt never got that far does.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createDockerActivities } from '../src/activities/docker';
import { BACKEND_HEALTHY_IMAGE } from '../src/sandbox/images';
import { suiteCleanups } from './support/cleanups';
import { testConfig } from './support/config';
import { startBackend, testDocker, type SandboxContainer } from './support/sandbox';

describe('restartContainer on a retry', () => {
  const cleanups = suiteCleanups();
  const docker = testDocker();

  async function backend(): Promise<SandboxContainer> {
    const started = await startBackend(docker, BACKEND_HEALTHY_IMAGE);
    cleanups.push(() => started.remove());
    return started;
  }

  async function restart(container: SandboxContainer, info: { attempt: number; scheduledTimestampMs: number }): Promise<string> {
    const config = testConfig({ targets: { backend: { container: container.name, healthUrl: `http://127.0.0.1:${container.port}/health` } } });
    const activities = createDockerActivities(docker, config);
    await new MockActivityEnvironment(info).run(activities.restartContainer, { target: 'backend' as const });
    return (await container.container.inspect()).State.StartedAt;
  }

  test('the first attempt restarts; a retry after that restart leaves the container alone', async () => {
    const container = await backend();
    const before = (await container.container.inspect()).State.StartedAt;
    const scheduledTimestampMs = Date.now();

    const afterFirst = await restart(container, { attempt: 1, scheduledTimestampMs });
    assert.notEqual(afterFirst, before, 'the first attempt restarted it');
    const afterRetry = await restart(container, { attempt: 2, scheduledTimestampMs });
    assert.equal(afterRetry, afterFirst, 'the retry did not restart it again');
  });

  test('a retry of a step scheduled after the container last started restarts it', async () => {
    const container = await backend();
    const before = (await container.container.inspect()).State.StartedAt;

    const afterRetry = await restart(container, { attempt: 2, scheduledTimestampMs: Date.now() + 1_000 });
    assert.notEqual(afterRetry, before, 'the earlier attempt had not restarted it: this one does');
  });
});
