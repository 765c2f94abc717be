/**
 * A Docker engine to run the sandbox on: the one DOCKER_HOST (or the default socket) names when it answers,
 * otherwise a private `dockerd` (vfs storage, no bridge, no iptables — host-network containers only) whose
 * files live in one directory: `runbooks sandbox up` keeps one under .runbooks/docker/ and leaves it running;
 * the test harness keeps one under .tools/docker/ and stops it at the end of the run.
 *
 * A private engine is found again by its pidfile and stopped by that PID, never by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { dockerClient } from '../activities';
import { logTail, stopChild, whichSync } from '../temporal/devServer';

/** Something about the engine is missing or broken; the message is one line: what, and how to get it. */
export class DockerEngineError extends Error {
  override readonly name = 'DockerEngineError';
}

const ENSURE_TOOLS = 'bash scripts/ensure-tools.sh';
/** unix socket paths must stay under 108 bytes (containerd puts its own under the exec-root). */
const MAX_SOCKET_PATH = 100;
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export interface DockerEngine {
  docker: Docker;
  /** Value for DOCKER_HOST, e.g. unix:///work/main/.runbooks/docker/docker.sock */
  dockerHost: string;
  /**
   * env: DOCKER_HOST (or the configured docker.host); default: the default socket; reused: a private engine an
   * earlier run started (found by its pidfile); started: a private engine started now.
   */
  origin: 'env' | 'default' | 'reused' | 'started';
  pid?: number;
  logFile?: string;
  /** Stops an engine this process started and did not detach; a no-op for any other. */
  stop(): Promise<void>;
}

export interface PrivateEngineOptions {
  /** Directory holding its files: data/ (images, containers), dockerd.pid, dockerd.log, daemon.json, docker.sock. */
  dir: string;
  /** containerd namespace, so a system containerd shared with another dockerd keeps them apart. */
  containerdNamespace: string;
  /** Socket path (default: <dir>/docker.sock, or a /tmp path when that is too long for a unix socket). */
  socketPath?: string;
  /** dockerd's --exec-root (default: /tmp/runbooks-docker-<hash of dir>). */
  execRoot?: string;
  /**
   * true: the engine outlives this process (the CLI; stop it with stopPrivateEngine). false: stop() stops it
   * (the test harness).
   */
  detach: boolean;
  /** dockerd --live-restore: its containers keep running while it restarts (the sandbox's engine; npm run chaos restarts it). */
  liveRestore?: boolean;
  startTimeoutMs?: number;
}

export interface PrivateEngineFiles {
  socketPath: string;
  pidfile: string;
  logFile: string;
  configFile: string;
  dataRoot: string;
  execRoot: string;
}

const shortHash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 8);

export function privateEngineFiles(options: Pick<PrivateEngineOptions, 'dir' | 'socketPath' | 'execRoot'>): PrivateEngineFiles {
  const dir = path.resolve(options.dir);
  const preferred = path.join(dir, 'docker.sock');
  return {
    socketPath: options.socketPath ?? (preferred.length < MAX_SOCKET_PATH ? preferred : `/tmp/runbooks-docker-${shortHash(dir)}.sock`),
    pidfile: path.join(dir, 'dockerd.pid'),
    logFile: path.join(dir, 'dockerd.log'),
    configFile: path.join(dir, 'daemon.json'),
    dataRoot: path.join(dir, 'data'),
    execRoot: options.execRoot ?? `/tmp/runbooks-docker-${shortHash(dir)}`,
  };
}

/** Whether the engine answers `docker version` within `timeoutMs`. */
export async function dockerAnswers(docker: Docker, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      docker.version().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
  } catch {
    return false;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(pidfile: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(pidfile, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The PID is a dockerd, and the one using `dataRoot` (a recycled PID is never someone else's process to signal). */
function isOurDockerd(pid: number, dataRoot: string): boolean {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return (argv[0]?.endsWith('dockerd') ?? false) && argv.includes(`--data-root=${dataRoot}`);
  } catch {
    return false;
  }
}

/** The PID of the private engine in `dir` if it is running, from its pidfile. */
export function runningPrivateEnginePid(options: Pick<PrivateEngineOptions, 'dir' | 'socketPath' | 'execRoot'>): number | undefined {
  const files = privateEngineFiles(options);
  const pid = readPid(files.pidfile);
  return pid !== undefined && isAlive(pid) && isOurDockerd(pid, files.dataRoot) ? pid : undefined;
}

/** The private engine an earlier run left running in `dir`, once it answers; undefined when there is none. */
export async function reusePrivateEngine(options: PrivateEngineOptions): Promise<DockerEngine | undefined> {
  const files = privateEngineFiles(options);
  const pid = runningPrivateEnginePid(options);
  if (pid === undefined) return undefined;
  const docker = new Docker({ socketPath: files.socketPath });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (await dockerAnswers(docker, 2_000)) {
      return { docker, dockerHost: `unix://${files.socketPath}`, origin: 'reused', pid, logFile: files.logFile, stop: async () => {} };
    }
    if (!isAlive(pid)) return undefined;
    await sleep(250);
  }
  throw new DockerEngineError(
    `dockerd pid ${pid} (from ${files.pidfile}) is alive but does not answer on ${files.socketPath} — kill ${pid} and retry; its log is ${files.logFile}`,
  );
}

/** The dockerd a private engine would run, or a one-line error: not installed (naming the package), or not root. */
export function privateEngineDockerd(): string {
  const dockerd = findDockerd();
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new DockerEngineError(
      'no Docker engine answers, and starting a private one (dockerd) needs root — start Docker (and set DOCKER_HOST), or run this as root',
    );
  }
  return dockerd;
}

/** Where dockerd is, or a one-line error naming the package. */
function findDockerd(): string {
  const dockerd = whichSync('dockerd') ?? ['/usr/sbin/dockerd', '/usr/bin/dockerd'].find((p) => fs.existsSync(p));
  if (!dockerd) throw new DockerEngineError(`dockerd is not installed — apt-get install -y docker.io (or ${ENSURE_TOOLS})`);
  const sbin = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
  if (!whichSync('containerd', sbin) || !whichSync('runc', sbin)) {
    throw new DockerEngineError(`containerd/runc are not installed (dependencies of docker.io) — apt-get install -y docker.io (or ${ENSURE_TOOLS})`);
  }
  return dockerd;
}

/**
 * Starts a private dockerd in `options.dir` and resolves once it answers. It needs root. With `detach` it keeps
 * running after this process exits; otherwise `stop()` stops it (SIGTERM, then SIGKILL to its process group).
 */
export async function startPrivateEngine(options: PrivateEngineOptions): Promise<DockerEngine> {
  const dockerd = privateEngineDockerd();
  const files = privateEngineFiles(options);
  const dockerHost = `unix://${files.socketPath}`;
  fs.mkdirSync(files.dataRoot, { recursive: true });
  fs.mkdirSync(files.execRoot, { recursive: true });
  // Our own (empty) config file, so /etc/docker/daemon.json cannot add hosts or drivers.
  fs.writeFileSync(files.configFile, '{}\n');
  const args = [
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
    '--storage-driver=vfs',
    `--config-file=${files.configFile}`,
    `--data-root=${files.dataRoot}`,
    `--exec-root=${files.execRoot}`,
    `--pidfile=${files.pidfile}`,
    `--containerd-namespace=${options.containerdNamespace}`,
    `--containerd-plugins-namespace=${options.containerdNamespace}-plugins`,
    ...(options.liveRestore ? ['--live-restore'] : []),
    '-H',
    dockerHost,
  ];
  const logFd = fs.openSync(files.logFile, 'w');
  let child: ChildProcess;
  try {
    // Its own process group: a Ctrl-C reaches us, not dockerd (the harness removes containers before stopping it).
    child = spawn(dockerd, args, { detached: true, stdio: ['ignore', logFd, logFd] });
  } finally {
    fs.closeSync(logFd);
  }
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited ??= signal ? `signal ${signal}` : `exit code ${code}`));
  child.on('error', (err) => (exited ??= err.message));
  if (options.detach) child.unref();

  const stop = options.detach ? async () => {} : () => stopChild(child);
  const docker = new Docker({ socketPath: files.socketPath });
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      throw new DockerEngineError(`dockerd exited during start-up (${exited}): ${logTail(files.logFile)} — see ${files.logFile}`);
    }
    if (await dockerAnswers(docker, 2_000)) {
      return { docker, dockerHost, origin: 'started', pid: child.pid, logFile: files.logFile, stop };
    }
    await sleep(200);
  }
  await stopChild(child);
  throw new DockerEngineError(`dockerd did not answer on ${files.socketPath} within ${timeoutMs / 1000} s — see ${files.logFile}`);
}

/**
 * Stops the private engine of `dir` by the PID in its pidfile (checked to be that dockerd): SIGTERM, then SIGKILL
 * after `graceMs`. Returns the PID it stopped, or undefined when none was running.
 */
export async function stopPrivateEngine(
  options: Pick<PrivateEngineOptions, 'dir' | 'socketPath' | 'execRoot'>,
  graceMs = 20_000,
): Promise<number | undefined> {
  const pid = runningPrivateEnginePid(options);
  if (pid === undefined) return undefined;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return pid;
    await sleep(200);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone meanwhile */
  }
  return pid;
}

/**
 * The engine at `host` (DOCKER_HOST / docker.host) or, without one, at the default socket — if it answers.
 * Returns undefined when nothing answers there.
 */
export async function configuredEngine(host: string | undefined, timeoutMs = 5_000): Promise<DockerEngine | undefined> {
  if (!host && !fs.existsSync(DEFAULT_DOCKER_SOCKET)) return undefined;
  const docker = host ? dockerClient(host) : new Docker({ socketPath: DEFAULT_DOCKER_SOCKET });
  if (!(await dockerAnswers(docker, timeoutMs))) {
    // An engine that runs but will not talk to us is not one to replace by a private engine.
    const refused = await docker.ping().then(
      () => undefined,
      (err: NodeJS.ErrnoException) => (err.code === 'EACCES' ? err : undefined),
    );
    if (refused) {
      const socket = host ? new URL(host).pathname : DEFAULT_DOCKER_SOCKET;
      throw new DockerEngineError(`permission denied on ${socket} — add your user to the docker group (usermod -aG docker $USER, then log in again), or run as root`);
    }
    return undefined;
  }
  return { docker, dockerHost: host ?? `unix://${DEFAULT_DOCKER_SOCKET}`, origin: host ? 'env' : 'default', stop: async () => {} };
}

export interface SandboxEngineOptions {
  /** DOCKER_HOST / docker.host, if any. */
  host: string | undefined;
  /** Where the private engine keeps its files (`runbooks sandbox`: .runbooks/docker). */
  dir: string;
  /** Start a private engine when none answers (`sandbox up`); otherwise only reuse a running one. */
  start: boolean;
  /** One-line notes (a DOCKER_HOST that does not answer, an engine started). */
  log?: (line: string) => void;
}

export const SANDBOX_CONTAINERD_NAMESPACE = 'runbooks-sandbox';

/**
 * The engine the sandbox runs on: DOCKER_HOST (or the default socket) when it answers; else the private engine
 * in `dir` if one runs; else, with `start`, a new private engine there (detached: it outlives this process).
 */
export async function sandboxEngine(options: SandboxEngineOptions): Promise<DockerEngine> {
  const configured = await configuredEngine(options.host);
  if (configured) return configured;
  const where = options.host ?? `the default socket (${DEFAULT_DOCKER_SOCKET})`;
  const privateOptions: PrivateEngineOptions = { dir: options.dir, containerdNamespace: SANDBOX_CONTAINERD_NAMESPACE, detach: true, liveRestore: true };
  const reused = await reusePrivateEngine(privateOptions);
  if (reused) return reused;
  if (!options.start) {
    throw new DockerEngineError(`no Docker engine answers at ${where}, and no private engine runs in ${options.dir} — \`runbooks sandbox up\` starts one`);
  }
  privateEngineDockerd();
  options.log?.(`no Docker engine answers at ${where}: starting a private dockerd in ${options.dir}`);
  return startPrivateEngine(privateOptions);
}
