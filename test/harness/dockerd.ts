// A Docker engine for the tests: the one DOCKER_HOST names if it answers, otherwise a
// private dockerd (vfs storage, no bridge, no iptables) on .tools/docker/docker.sock.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Docker from 'dockerode';
import {
  ENSURE_TOOLS,
  InfraError,
  TOOLS_DIR,
  checkoutId,
  isAlive,
  logTail,
  sleep,
  stopChild,
  whichSync,
} from './util';

/** Label every test container carries; the harness removes all of them at start and end. */
export const TEST_LABEL = 'runbooks.test';

export interface DockerEngine {
  docker: Docker;
  /** Value for DOCKER_HOST, e.g. unix:///work/main/.tools/docker/docker.sock */
  dockerHost: string;
  /** How the engine was obtained. Only 'started' engines are stopped by stop(). */
  origin: 'env' | 'reused' | 'started';
  pid?: number;
  logFile?: string;
  stop(): Promise<void>;
}

const DOCKER_DIR = path.join(TOOLS_DIR, 'docker');
const PIDFILE = path.join(DOCKER_DIR, 'dockerd.pid');
const LOG_FILE = path.join(DOCKER_DIR, 'dockerd.log');
const CONFIG_FILE = path.join(DOCKER_DIR, 'daemon.json');
const DATA_ROOT = path.join(DOCKER_DIR, 'data');
// containerd puts sockets under the exec-root; unix socket paths must stay < 108 bytes.
const EXEC_ROOT = `/tmp/runbooks-docker-${checkoutId()}`;
const MAX_SOCKET_PATH = 100;

/** Socket of the harness's own dockerd: .tools/docker/docker.sock unless that path is too long. */
export function ownSocketPath(): string {
  const preferred = path.join(DOCKER_DIR, 'docker.sock');
  return preferred.length < MAX_SOCKET_PATH ? preferred : `/tmp/runbooks-docker-${checkoutId()}.sock`;
}

async function answers(docker: Docker, timeoutMs: number): Promise<boolean> {
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

function readPidfile(): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(PIDFILE, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isDockerd(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]?.endsWith('dockerd') ?? false;
  } catch {
    return false;
  }
}

/**
 * Returns a Docker engine that answers. Logs a note when DOCKER_HOST is set but dead.
 * @param log where to print one-line notes (default: stderr)
 */
export async function ensureDockerEngine(log: (line: string) => void = (l) => console.error(l)): Promise<DockerEngine> {
  const envHost = process.env.DOCKER_HOST;
  if (envHost) {
    const docker = new Docker(); // docker-modem reads DOCKER_HOST (unix:// or tcp://)
    if (await answers(docker, 5_000)) {
      return { docker, dockerHost: envHost, origin: 'env', stop: async () => {} };
    }
    log(`harness: DOCKER_HOST=${envHost} does not answer; starting the harness's own dockerd instead`);
  }

  const socketPath = ownSocketPath();
  const dockerHost = `unix://${socketPath}`;
  const docker = new Docker({ socketPath });

  // A dockerd left by an earlier run (pidfile alive): reuse it, and leave it running.
  const oldPid = readPidfile();
  if (oldPid !== undefined && isAlive(oldPid) && isDockerd(oldPid)) {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (await answers(docker, 2_000)) {
        return { docker, dockerHost, origin: 'reused', pid: oldPid, logFile: LOG_FILE, stop: async () => {} };
      }
      if (!isAlive(oldPid)) break;
      await sleep(250);
    }
    if (isAlive(oldPid)) {
      throw new InfraError(
        `dockerd pid ${oldPid} (from ${PIDFILE}) is alive but not answering on ${socketPath} — kill ${oldPid} and rerun; its log is ${LOG_FILE}`,
      );
    }
  }

  const dockerd = whichSync('dockerd') ?? ['/usr/sbin/dockerd', '/usr/bin/dockerd'].find((p) => fs.existsSync(p));
  if (!dockerd) {
    throw new InfraError(`dockerd not found (Debian package docker.io) — run ${ENSURE_TOOLS}`);
  }
  if (!whichSync('containerd') || !whichSync('runc')) {
    throw new InfraError(`containerd/runc not found (dependencies of docker.io) — run ${ENSURE_TOOLS}`);
  }

  fs.mkdirSync(DATA_ROOT, { recursive: true });
  fs.mkdirSync(EXEC_ROOT, { recursive: true });
  // Our own (empty) config file, so /etc/docker/daemon.json cannot add hosts or drivers.
  fs.writeFileSync(CONFIG_FILE, '{}\n');
  const logFd = fs.openSync(LOG_FILE, 'w');
  const args = [
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
    '--storage-driver=vfs',
    `--config-file=${CONFIG_FILE}`,
    `--data-root=${DATA_ROOT}`,
    `--exec-root=${EXEC_ROOT}`,
    `--pidfile=${PIDFILE}`,
    // Own containerd namespaces, in case a system containerd is shared with another dockerd.
    '--containerd-namespace=runbooks-test',
    '--containerd-plugins-namespace=runbooks-test-plugins',
    '-H',
    dockerHost,
  ];
  let child: ChildProcess;
  try {
    // detached: its own process group, so a Ctrl-C reaches the harness first and the
    // harness can remove containers before it stops dockerd.
    child = spawn(dockerd, args, { detached: true, stdio: ['ignore', logFd, logFd] });
  } finally {
    fs.closeSync(logFd);
  }
  let exited: string | undefined;
  child.on('exit', (code, signal) => {
    exited = signal ? `signal ${signal}` : `exit code ${code}`;
  });
  child.on('error', (err) => {
    exited = err.message;
  });

  const stop = () => stopChild(child);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      throw new InfraError(
        `dockerd exited during start-up (${exited}): ${logTail(LOG_FILE)} — see ${LOG_FILE}; it needs root and the docker.io package (${ENSURE_TOOLS})`,
      );
    }
    if (await answers(docker, 2_000)) {
      return { docker, dockerHost, origin: 'started', pid: child.pid, logFile: LOG_FILE, stop };
    }
    await sleep(200);
  }
  await stop();
  throw new InfraError(`dockerd did not answer on ${socketPath} within 30 s — see ${LOG_FILE}`);
}

/** Removes (forcibly) every container labelled runbooks.test=true. Returns how many. */
export async function removeTestContainers(docker: Docker): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=true`] } });
  await Promise.all(
    list.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch((err: { statusCode?: number }) => {
          // 404: already gone; 409: removal already in progress (AutoRemove).
          if (err.statusCode !== 404 && err.statusCode !== 409) throw err;
        }),
    ),
  );
  return list.length;
}
