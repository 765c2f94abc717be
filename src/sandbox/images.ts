// Sandbox images (for the demo and the tests) built without any registry: a rootfs assembled from this machine's own
// binaries and `docker import`ed (src/sandbox/rootfs.ts). Building is idempotent: an image that exists with the
// current recipe label is left alone.
//
//   runbooks-sandbox-backend:healthy  busybox; /www/health contains "ok"
//   runbooks-sandbox-backend:broken   busybox; no /www/health, so GET /health is 404
//   runbooks-sandbox-redis:1          this machine's /usr/bin/redis-server and redis-cli + their libraries + busybox
//
// Backends run as: docker run -d --init --network host IMAGE
//                    /bin/busybox httpd -f -p 127.0.0.1:PORT -h /www
// The audit-app (a real PostgreSQL and a Node backend) has its own images: src/sandbox/auditApp/images.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Docker from 'dockerode';
import { BUSYBOX_IN_IMAGE, buildImage, copyWithLibraries, hasImage, SandboxImageError, verifyImage } from './rootfs';

export { BUSYBOX_IN_IMAGE, SandboxImageError } from './rootfs';

export const BACKEND_HEALTHY_IMAGE = 'runbooks-sandbox-backend:healthy';
export const BACKEND_BROKEN_IMAGE = 'runbooks-sandbox-backend:broken';
export const REDIS_IMAGE = 'runbooks-sandbox-redis:1';
const SANDBOX_IMAGES = [BACKEND_HEALTHY_IMAGE, BACKEND_BROKEN_IMAGE, REDIS_IMAGE] as const;
type SandboxImage = (typeof SANDBOX_IMAGES)[number];

/** Where binaries live inside the images. */
export const REDIS_SERVER_IN_IMAGE = '/usr/bin/redis-server';
export const REDIS_CLI_IN_IMAGE = '/usr/bin/redis-cli';
/** Document root of the backend images (busybox httpd -h). */
export const BACKEND_WWW = '/www';

// Bump a recipe when it changes: images carrying another value are rebuilt.
const RECIPES: Record<SandboxImage, string> = {
  [BACKEND_HEALTHY_IMAGE]: '1',
  [BACKEND_BROKEN_IMAGE]: '1',
  [REDIS_IMAGE]: '2', // 2: redis-cli too, so the runbook's `docker exec redis redis-cli …` works
};

const REDIS_SERVER = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';

async function buildBackend(docker: Docker, image: SandboxImage, healthy: boolean): Promise<void> {
  await buildImage(docker, image, RECIPES[image], {
    fill: (rootfs) => {
      fs.mkdirSync(path.join(rootfs, 'www'));
      fs.writeFileSync(path.join(rootfs, 'www', 'index.html'), 'runbooks sandbox backend\n');
      if (healthy) fs.writeFileSync(path.join(rootfs, 'www', 'health'), 'ok\n');
    },
  });
  if (healthy) await verifyImage(docker, image, [BUSYBOX_IN_IMAGE, 'cat', `${BACKEND_WWW}/health`], /^ok/);
  else await verifyImage(docker, image, [BUSYBOX_IN_IMAGE, 'sh', '-c', `test ! -e ${BACKEND_WWW}/health && echo absent`], /absent/);
}

async function buildRedis(docker: Docker, image: SandboxImage): Promise<void> {
  for (const binary of [REDIS_SERVER, REDIS_CLI]) {
    if (!fs.existsSync(binary)) {
      throw new SandboxImageError(`${binary} (Debian packages redis-server, redis-tools) — apt-get install -y redis-server`);
    }
  }
  await buildImage(docker, image, RECIPES[image], {
    fill: (rootfs) => copyWithLibraries(rootfs, [REDIS_SERVER, REDIS_CLI]),
  });
  await verifyImage(docker, image, [REDIS_SERVER_IN_IMAGE, '--version'], /Redis server v=/);
  await verifyImage(docker, image, [REDIS_CLI_IN_IMAGE, '--version'], /redis-cli/);
}

/**
 * Makes sure the sandbox images exist (building the missing ones) and returns the names of those it built.
 * The demo asks only for the backend images; the tests for all of them.
 */
export async function ensureSandboxImages(docker: Docker, images: readonly SandboxImage[] = SANDBOX_IMAGES): Promise<string[]> {
  const builders: Record<SandboxImage, () => Promise<void>> = {
    [BACKEND_HEALTHY_IMAGE]: () => buildBackend(docker, BACKEND_HEALTHY_IMAGE, true),
    [BACKEND_BROKEN_IMAGE]: () => buildBackend(docker, BACKEND_BROKEN_IMAGE, false),
    [REDIS_IMAGE]: () => buildRedis(docker, REDIS_IMAGE),
  };
  const built: string[] = [];
  for (const image of images) {
    if (await hasImage(docker, image, RECIPES[image])) continue;
    await builders[image]();
    built.push(image);
  }
  return built;
}
