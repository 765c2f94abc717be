/**
 * The demo's sandbox backend: a busybox httpd container serving /health on the host network, labelled with
 * the image to roll back to. Images come from the registry-free builder in src/sandbox/images.ts.
 */
import type Docker from 'dockerode';
import {
  BACKEND_BROKEN_IMAGE,
  BACKEND_HEALTHY_IMAGE,
  BACKEND_WWW,
  BUSYBOX_IN_IMAGE,
  ensureSandboxImages as buildSandboxImages,
} from '../sandbox/images';
import { dockerClient } from '../activities';
import { PREVIOUS_IMAGE_LABEL } from '../activities/docker';
import { CliError, firstLine } from './errors';

export const DEMO_CONTAINER = 'runbooks-demo-backend';
const DEMO_LABEL = 'runbooks.demo';

export type Scenario = 'stopped' | 'bad-deploy';

export interface Sandbox {
  container: string;
  healthUrl: string;
  image: string;
  previousImage: string;
}

/** A Docker client that answers, or a one-line explanation. */
export async function connectDocker(host: string | undefined): Promise<Docker> {
  const docker = dockerClient(host);
  const where = host ?? 'the default socket (/var/run/docker.sock)';
  try {
    await withTimeout(docker.ping(), 5_000);
  } catch (err) {
    throw new CliError(`Docker is not reachable at ${where}: ${firstLine(err)} — start Docker, or set DOCKER_HOST (docker.host)`);
  }
  return docker;
}

/** The demo needs only the backend images (not the Redis one, which needs redis-server on this machine). */
export async function ensureSandboxImages(docker: Docker): Promise<string[]> {
  try {
    return await buildSandboxImages(docker, [BACKEND_HEALTHY_IMAGE, BACKEND_BROKEN_IMAGE]);
  } catch (err) {
    throw new CliError(`cannot build the sandbox images: ${firstLine(err)}`);
  }
}

export function sandboxHealthUrl(port: number): string {
  return `http://127.0.0.1:${port}/health`;
}

/**
 * Creates the backend and breaks it. `stopped`: the healthy image, stopped (a restart fixes it).
 * `bad-deploy`: the broken image, running but answering 404 on /health (only a rollback fixes it).
 */
export async function createBrokenBackend(docker: Docker, port: number, scenario: Scenario): Promise<Sandbox> {
  await removeSandbox(docker);
  const image = scenario === 'stopped' ? BACKEND_HEALTHY_IMAGE : BACKEND_BROKEN_IMAGE;
  const healthUrl = sandboxHealthUrl(port);
  const container = await docker.createContainer({
    name: DEMO_CONTAINER,
    Image: image,
    Cmd: [BUSYBOX_IN_IMAGE, 'httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', BACKEND_WWW],
    Labels: { [PREVIOUS_IMAGE_LABEL]: BACKEND_HEALTHY_IMAGE, [DEMO_LABEL]: 'true' },
    HostConfig: { NetworkMode: 'host', Init: true },
  });
  await container.start();
  // It must serve before we break it, or the demo would show a different failure than intended.
  const expected = scenario === 'stopped' ? 200 : 404;
  const served = await waitForStatus(healthUrl, expected, 10_000);
  if (!served) {
    await removeSandbox(docker);
    throw new CliError(`the sandbox backend does not answer ${expected} on ${healthUrl} (is port ${port} free? try --port)`);
  }
  if (scenario === 'stopped') await container.stop({ t: 2 });
  return { container: DEMO_CONTAINER, healthUrl, image, previousImage: BACKEND_HEALTHY_IMAGE };
}

/** Removes the demo container and any copy a rollback kept (`<name>-replaced-…`). */
export async function removeSandbox(docker: Docker): Promise<number> {
  const containers = await docker.listContainers({ all: true, filters: { label: [DEMO_LABEL] } });
  const byName = await docker.listContainers({ all: true, filters: { name: [`^/${DEMO_CONTAINER}(-replaced-.*)?$`] } });
  const ids = new Set([...containers, ...byName].map((c) => c.Id));
  for (const id of ids) await docker.getContainer(id).remove({ force: true }).catch(() => {});
  return ids.size;
}

async function waitForStatus(url: string, status: number, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      if (response.status === status) return true;
    } catch {
      /* not up yet */
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
    }),
  ]);
}
