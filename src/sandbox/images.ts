// Sandbox images (for the demo and the tests) built without any registry: a rootfs assembled from this machine's own
// binaries and `docker import`ed. Building is idempotent: an image that exists with the
// current recipe label is left alone.
//
//   runbooks-sandbox-backend:healthy  busybox; /www/health contains "ok"
//   runbooks-sandbox-backend:broken   busybox; no /www/health, so GET /health is 404
//   runbooks-sandbox-redis:1          this machine's /usr/bin/redis-server + its libraries + busybox
//
// Backends run as: docker run -d --init --network host IMAGE
//                    /bin/busybox httpd -f -p 127.0.0.1:PORT -h /www
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';

const execFileP = promisify(execFile);

export const BACKEND_HEALTHY_IMAGE = 'runbooks-sandbox-backend:healthy';
export const BACKEND_BROKEN_IMAGE = 'runbooks-sandbox-backend:broken';
export const REDIS_IMAGE = 'runbooks-sandbox-redis:1';
const SANDBOX_IMAGES = [BACKEND_HEALTHY_IMAGE, BACKEND_BROKEN_IMAGE, REDIS_IMAGE] as const;
type SandboxImage = (typeof SANDBOX_IMAGES)[number];

/** What a machine lacks to build the images, in one line with the way to get it. */
export class SandboxImageError extends Error {
  override readonly name = 'SandboxImageError';
}

const ENSURE_TOOLS = 'bash scripts/ensure-tools.sh';

/** Where binaries live inside the images. */
export const BUSYBOX_IN_IMAGE = '/bin/busybox';
const REDIS_SERVER_IN_IMAGE = '/usr/bin/redis-server';
/** Document root of the backend images (busybox httpd -h). */
export const BACKEND_WWW = '/www';

// Bump when a recipe changes: images carrying another value are rebuilt.
const RECIPE_LABEL = 'runbooks.recipe';
const RECIPE_VERSION = '1';

const REDIS_SERVER = '/usr/bin/redis-server';
const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

/** The machine's busybox, which must be statically linked to work alone in a rootfs. */
async function staticBusybox(): Promise<string> {
  for (const candidate of BUSYBOX_CANDIDATES) {
    if (!fs.existsSync(candidate)) continue;
    // A static binary has no PT_INTERP; `ldd` says "not a dynamic executable" and fails.
    const dynamic = await execFileP('ldd', [candidate]).then(
      () => true,
      () => false,
    );
    if (!dynamic) return fs.realpathSync(candidate);
  }
  throw new SandboxImageError(`a statically linked busybox (Debian package busybox-static) — run ${ENSURE_TOOLS}`);
}

/** Every file the dynamic loader needs for `binary`: libraries and the loader itself. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await execFileP('ldd', [binary]);
  const files: string[] = [];
  for (const line of stdout.split('\n')) {
    // "libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m?.[1]) files.push(m[1]);
    else if (/=>\s*not found/.test(line)) throw new SandboxImageError(`${binary} needs a missing library: ${line.trim()}`);
  }
  if (!files.some((f) => /\/ld-linux[^/]*\.so/.test(f) || /\/ld-musl/.test(f))) {
    throw new SandboxImageError(`could not find the dynamic loader of ${binary} in ldd's output`);
  }
  return files;
}

/** Copies `src` (following symlinks) to `rootfs` + `dest`, keeping the mode. */
function copyInto(rootfs: string, src: string, dest = src): void {
  const target = path.join(rootfs, dest);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(src, target);
  fs.chmodSync(target, fs.statSync(src).mode & 0o7777);
}

function baseRootfs(busybox: string): string {
  const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'runbooks-rootfs-'));
  copyInto(rootfs, busybox, BUSYBOX_IN_IMAGE);
  fs.symlinkSync('busybox', path.join(rootfs, 'bin', 'sh'));
  for (const dir of ['tmp', 'data', 'etc', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  return rootfs;
}

/** `tar -C rootfs -c .` piped into the engine's image import. */
async function importRootfs(docker: Docker, rootfs: string, image: string): Promise<void> {
  const [repo, tag] = image.split(':') as [string, string];
  const tar = spawn('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-c', '.'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tarErr = '';
  tar.stderr.on('data', (d: Buffer) => (tarErr += d.toString()));
  const tarDone = new Promise<void>((resolve, reject) => {
    tar.on('error', reject);
    tar.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tar failed (${code}): ${tarErr.trim()}`))));
  });
  const progress = await docker.importImage(tar.stdout, {
    repo,
    tag,
    changes: [`LABEL ${RECIPE_LABEL}=${RECIPE_VERSION}`, 'CMD ["/bin/sh"]'],
  });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(progress, (err: Error | null, events: Array<{ error?: string }>) => {
      const failed = err?.message ?? events.find((e) => e.error)?.error;
      if (failed) reject(new Error(`docker import ${image}: ${failed}`));
      else resolve();
    }),
  );
  await tarDone;
}

/** Runs `cmd` once in `image` (host network), returns exit code and combined output. */
async function runOnce(docker: Docker, image: string, cmd: string[]): Promise<{ exitCode: number; output: string }> {
  const container = await docker.createContainer({
    Image: image,
    Cmd: cmd,
    Tty: true,
    Labels: { 'runbooks.sandbox': 'true' },
    HostConfig: { NetworkMode: 'host' },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = await container.logs({ stdout: true, stderr: true, follow: false });
    return { exitCode: StatusCode, output: logs.toString('utf8') };
  } finally {
    await container.remove({ force: true }).catch(() => {});
  }
}

async function hasCurrentImage(docker: Docker, image: string): Promise<boolean> {
  try {
    const info = await docker.getImage(image).inspect();
    return info.Config?.Labels?.[RECIPE_LABEL] === RECIPE_VERSION;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

async function verify(docker: Docker, image: string, cmd: string[], expect: RegExp): Promise<void> {
  const { exitCode, output } = await runOnce(docker, image, cmd);
  if (exitCode !== 0 || !expect.test(output)) {
    await docker.getImage(image).remove({ force: true }).catch(() => {});
    throw new SandboxImageError(
      `image ${image} does not work: \`${cmd.join(' ')}\` exited ${exitCode}: ${output.trim().split('\n').slice(-2).join(' | ')}`,
    );
  }
}

async function buildBackend(docker: Docker, image: string, healthy: boolean): Promise<void> {
  const rootfs = baseRootfs(await staticBusybox());
  try {
    fs.mkdirSync(path.join(rootfs, 'www'));
    fs.writeFileSync(path.join(rootfs, 'www', 'index.html'), 'runbooks sandbox backend\n');
    if (healthy) fs.writeFileSync(path.join(rootfs, 'www', 'health'), 'ok\n');
    await importRootfs(docker, rootfs, image);
  } finally {
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
  if (healthy) await verify(docker, image, [BUSYBOX_IN_IMAGE, 'cat', `${BACKEND_WWW}/health`], /^ok/);
  else await verify(docker, image, [BUSYBOX_IN_IMAGE, 'sh', '-c', `test ! -e ${BACKEND_WWW}/health && echo absent`], /absent/);
}

async function buildRedis(docker: Docker, image: string): Promise<void> {
  if (!fs.existsSync(REDIS_SERVER)) {
    throw new SandboxImageError(`${REDIS_SERVER} (Debian package redis-server) — apt-get install -y redis-server`);
  }
  const rootfs = baseRootfs(await staticBusybox());
  try {
    copyInto(rootfs, REDIS_SERVER, REDIS_SERVER_IN_IMAGE);
    for (const lib of await sharedLibraries(REDIS_SERVER)) copyInto(rootfs, lib);
    await importRootfs(docker, rootfs, image);
  } finally {
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
  await verify(docker, image, [REDIS_SERVER_IN_IMAGE, '--version'], /Redis server v=/);
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
    if (await hasCurrentImage(docker, image)) continue;
    await builders[image]();
    built.push(image);
  }
  return built;
}
