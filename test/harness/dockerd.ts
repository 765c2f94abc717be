// A Docker engine for the tests: the one DOCKER_HOST names if it answers, otherwise a private dockerd (vfs
// storage, no bridge, no iptables) on .tools/docker/docker.sock. Starting, finding and stopping that dockerd is
// product code (src/sandbox/engine.ts, which `runbooks sandbox up` uses too); this file picks the harness's place.
import * as path from 'node:path';
import Docker from 'dockerode';
import {
  DockerEngineError,
  dockerAnswers,
  reusePrivateEngine,
  startPrivateEngine,
  type DockerEngine,
  type PrivateEngineOptions,
} from '../../src/sandbox/engine';
import { ENSURE_TOOLS, InfraError, TOOLS_DIR, checkoutId } from './util';

export type { DockerEngine } from '../../src/sandbox/engine';

/** Label every test container carries; the harness removes all of them at start and end. */
export const TEST_LABEL = 'runbooks.test';

const DOCKER_DIR = path.join(TOOLS_DIR, 'docker');
const MAX_SOCKET_PATH = 100;

/** Socket of the harness's own dockerd: .tools/docker/docker.sock unless that path is too long. */
function ownSocketPath(): string {
  const preferred = path.join(DOCKER_DIR, 'docker.sock');
  return preferred.length < MAX_SOCKET_PATH ? preferred : `/tmp/runbooks-docker-${checkoutId()}.sock`;
}

const engineOptions: PrivateEngineOptions = {
  dir: DOCKER_DIR,
  socketPath: ownSocketPath(),
  // containerd puts sockets under the exec-root; unix socket paths must stay < 108 bytes.
  execRoot: `/tmp/runbooks-docker-${checkoutId()}`,
  // Own containerd namespaces, in case a system containerd is shared with another dockerd.
  containerdNamespace: 'runbooks-test',
  detach: false,
};

/**
 * Returns a Docker engine that answers. Logs a note when DOCKER_HOST is set but dead.
 * @param log where to print one-line notes (default: stderr)
 */
export async function ensureDockerEngine(log: (line: string) => void = (l) => console.error(l)): Promise<DockerEngine> {
  const envHost = process.env.DOCKER_HOST;
  if (envHost) {
    const docker = new Docker(); // docker-modem reads DOCKER_HOST (unix:// or tcp://)
    if (await dockerAnswers(docker, 5_000)) {
      return { docker, dockerHost: envHost, origin: 'env', stop: async () => {} };
    }
    log(`harness: DOCKER_HOST=${envHost} does not answer; starting the harness's own dockerd instead`);
  }
  try {
    // A dockerd left by an earlier run (pidfile alive): reuse it, and leave it running.
    return (await reusePrivateEngine(engineOptions)) ?? (await startPrivateEngine(engineOptions));
  } catch (err) {
    if (err instanceof DockerEngineError) throw new InfraError(`${err.message} (the harness needs root and the docker.io package: ${ENSURE_TOOLS})`);
    throw err;
  }
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
