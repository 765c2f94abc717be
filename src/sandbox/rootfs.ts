/**
 * Building images without a registry: a root filesystem assembled from this machine's own binaries (each with the
 * libraries `ldd` lists, copied to the same paths), tarred and `docker import`ed. Each image carries a recipe label;
 * an image whose label matches the current recipe is left alone, so building is idempotent and a changed recipe
 * rebuilds.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';

const execFileP = promisify(execFile);

/** What a machine lacks to build an image, in one line with the way to get it. */
export class SandboxImageError extends Error {
  override readonly name = 'SandboxImageError';
}

export const ENSURE_TOOLS = 'bash scripts/ensure-tools.sh';
/** Where busybox lives inside every image; /bin/sh links to it. */
export const BUSYBOX_IN_IMAGE = '/bin/busybox';
export const RECIPE_LABEL = 'runbooks.recipe';

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

/** The machine's busybox, which must be statically linked to work alone in a rootfs. */
export async function staticBusybox(): Promise<string> {
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

/**
 * Every file the dynamic loader needs for `binary`: libraries and the loader. A shared object (`{ sharedObject:
 * true }`, e.g. a PostgreSQL extension) may need nothing, and needs no loader of its own.
 */
export async function sharedLibraries(binary: string, { sharedObject = false } = {}): Promise<string[]> {
  return [...(await sharedLibrariesOf([binary], { sharedObject }))];
}

/** sharedLibraries of many files with one `ldd` (it takes a second per hundred files otherwise). */
export async function sharedLibrariesOf(binaries: readonly string[], { sharedObject = false } = {}): Promise<Set<string>> {
  if (binaries.length === 0) return new Set();
  // With several files ldd prints "<file>:" before each one's list.
  const { stdout } = await execFileP('ldd', [...binaries], { maxBuffer: 16 * 1024 * 1024 });
  const sections = new Map<string, string[]>();
  let current = binaries.length === 1 ? binaries[0]! : '';
  for (const line of stdout.split('\n')) {
    const header = /^(\S.*):$/.exec(line);
    if (binaries.length > 1 && header?.[1] && binaries.includes(header[1])) {
      current = header[1];
      continue;
    }
    sections.set(current, [...(sections.get(current) ?? []), line]);
  }
  const files = new Set<string>();
  for (const binary of binaries) {
    const lines = sections.get(binary) ?? [];
    if (sharedObject && lines.some((line) => /statically linked/.test(line))) continue;
    const own: string[] = [];
    for (const line of lines) {
      // "libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
      const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
      if (m?.[1]) own.push(m[1]);
      else if (/=>\s*not found/.test(line)) throw new SandboxImageError(`${binary} needs a missing library: ${line.trim()}`);
    }
    if (!sharedObject && !own.some((f) => /\/ld-linux[^/]*\.so/.test(f) || /\/ld-musl/.test(f))) {
      throw new SandboxImageError(`could not find the dynamic loader of ${binary} in ldd's output`);
    }
    for (const file of own) files.add(file);
  }
  return files;
}

/** Copies `src` (following symlinks, like `cp -L`) to `rootfs` + `dest`, keeping the mode. */
export function copyInto(rootfs: string, src: string, dest = src): void {
  const target = path.join(rootfs, dest);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(src, target);
  fs.chmodSync(target, fs.statSync(src).mode & 0o7777);
}

/** Copies the binaries and every library they need (by `ldd`) to the same paths in `rootfs`. */
export async function copyWithLibraries(rootfs: string, binaries: readonly string[]): Promise<void> {
  for (const binary of binaries) copyInto(rootfs, binary);
  for (const lib of await sharedLibrariesOf(binaries)) copyInto(rootfs, lib);
}

/**
 * Copies the tree `src` to `rootfs` + `dest`. Relative symlinks stay symlinks; absolute ones are followed.
 * `skip(relativePath)` leaves out a file or a whole directory.
 */
export function copyTree(rootfs: string, src: string, dest = src, skip: (relative: string) => boolean = () => false): void {
  const walk = (relative: string) => {
    const from = path.join(src, relative);
    const to = path.join(rootfs, dest, relative);
    const stat = fs.lstatSync(from);
    if (stat.isDirectory()) {
      fs.mkdirSync(to, { recursive: true });
      for (const entry of fs.readdirSync(from)) {
        const child = path.join(relative, entry);
        if (!skip(child)) walk(child);
      }
    } else if (stat.isSymbolicLink() && !path.isAbsolute(fs.readlinkSync(from))) {
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.symlinkSync(fs.readlinkSync(from), to);
    } else if (stat.isFile() || stat.isSymbolicLink()) {
      copyInto(rootfs, from, path.join(dest, relative));
    }
  };
  walk('');
}

export interface ImageUser {
  name: string;
  uid: number;
  home: string;
}

/** An empty rootfs with busybox as /bin/busybox and /bin/sh, the usual directories, root, nobody and `users`. */
export async function baseRootfs(users: readonly ImageUser[] = []): Promise<string> {
  const busybox = await staticBusybox();
  const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'runbooks-rootfs-'));
  fs.chmodSync(rootfs, 0o755); // it becomes /: mkdtemp's 0700 would lock every user but root out
  copyInto(rootfs, busybox, BUSYBOX_IN_IMAGE);
  fs.symlinkSync('busybox', path.join(rootfs, 'bin', 'sh'));
  for (const dir of ['tmp', 'data', 'etc', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  const passwd = ['root:x:0:0:root:/:/bin/sh', ...users.map((u) => `${u.name}:x:${u.uid}:${u.uid}:${u.name}:${u.home}:/bin/sh`), 'nobody:x:65534:65534:nobody:/:/bin/sh'];
  const group = ['root:x:0:', ...users.map((u) => `${u.name}:x:${u.uid}:`), 'nogroup:x:65534:'];
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), `${passwd.join('\n')}\n`);
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), `${group.join('\n')}\n`);
  return rootfs;
}

/**
 * `tar -C rootfs -c .` piped into the engine's image import. Every file is owned by root in the image (the rootfs
 * may be built by any user): a directory a non-root user must write to is made world-writable (sticky) instead.
 * `changes` are Dockerfile instructions (ENV, USER, CMD…); the recipe label is added to them.
 */
export async function importRootfs(docker: Docker, rootfs: string, image: string, recipe: string, changes: readonly string[] = []): Promise<void> {
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
    changes: [`LABEL ${RECIPE_LABEL}=${recipe}`, ...(changes.some((c) => c.startsWith('CMD ')) ? [] : ['CMD ["/bin/sh"]']), ...changes],
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

/** Builds a rootfs with `fill`, imports it, and removes the rootfs whatever happens. */
export async function buildImage(
  docker: Docker,
  image: string,
  recipe: string,
  options: { users?: readonly ImageUser[]; changes?: readonly string[]; fill: (rootfs: string) => Promise<void> | void },
): Promise<void> {
  const rootfs = await baseRootfs(options.users);
  try {
    await options.fill(rootfs);
    await importRootfs(docker, rootfs, image, recipe, options.changes);
  } finally {
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
}

/** Runs `cmd` once in `image` (host network), returns exit code and combined output. */
export async function runOnce(docker: Docker, image: string, cmd: string[], user?: string): Promise<{ exitCode: number; output: string }> {
  const container = await docker.createContainer({
    Image: image,
    Cmd: cmd,
    Tty: true,
    User: user,
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

/** Whether `image` exists and was built by `recipe`. */
export async function hasImage(docker: Docker, image: string, recipe: string): Promise<boolean> {
  try {
    const info = await docker.getImage(image).inspect();
    return info.Config?.Labels?.[RECIPE_LABEL] === recipe;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/** Runs `cmd` in the new image; an image that fails it is removed and the build fails with its last output lines. */
export async function verifyImage(docker: Docker, image: string, cmd: string[], expect: RegExp): Promise<void> {
  const { exitCode, output } = await runOnce(docker, image, cmd).catch((err: unknown) => ({ exitCode: -1, output: (err as Error).message }));
  if (exitCode !== 0 || !expect.test(output)) {
    await docker.getImage(image).remove({ force: true }).catch(() => {});
    throw new SandboxImageError(
      `image ${image} does not work: \`${cmd.join(' ')}\` exited ${exitCode}: ${output.trim().split('\n').slice(-2).join(' | ')}`,
    );
  }
}
