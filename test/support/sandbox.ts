/** Real containers for end-to-end tests: a busybox backend serving /health, a Redis built from this machine's binary, and an audit-app per test file. */
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { PREVIOUS_IMAGE_LABEL } from '../../src/activities/docker';
import { dockerClient } from '../../src/activities';
import { TEST_LABEL } from '../harness/dockerd';
import { BACKEND_HEALTHY_IMAGE, REDIS_IMAGE } from '../../src/sandbox/images';
import { freePort, freePorts } from '../harness/util';
import { startAuditApp, type AuditAppOptions, type AuditAppPorts, type StartedAuditApp } from '../../src/sandbox/auditApp';
import { requireEnv } from './env';

export function testDocker(): Docker {
  return dockerClient(requireEnv('DOCKER_HOST'));
}

export interface SandboxContainer {
  name: string;
  port: number;
  container: Docker.Container;
  remove(): Promise<void>;
}

async function runContainer(docker: Docker, options: { prefix: string; image: string; cmd: (port: number) => string[]; labels?: Record<string, string> }): Promise<SandboxContainer> {
  const name = `${options.prefix}-${randomBytes(3).toString('hex')}`;
  const port = await freePort();
  const container = await docker.createContainer({
    name,
    Image: options.image,
    Cmd: options.cmd(port),
    Labels: { [TEST_LABEL]: 'true', ...options.labels },
    HostConfig: { NetworkMode: 'host', Init: true },
  });
  await container.start();
  return {
    name,
    port,
    container,
    async remove() {
      const leftovers = await docker.listContainers({ all: true, filters: { name: [`^/${name}`] } });
      await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    },
  };
}

/** `busybox httpd` on a free port; `image` decides whether /health exists. */
export function startBackend(docker: Docker, image: string, previousImage: string | undefined = BACKEND_HEALTHY_IMAGE): Promise<SandboxContainer> {
  return runContainer(docker, {
    prefix: 'sandbox-backend',
    image,
    cmd: (port) => ['/bin/busybox', 'httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'],
    labels: previousImage ? { [PREVIOUS_IMAGE_LABEL]: previousImage } : {},
  });
}

export function startRedis(docker: Docker, maxmemory = '0'): Promise<SandboxContainer> {
  return runContainer(docker, {
    prefix: 'sandbox-redis',
    image: REDIS_IMAGE,
    cmd: (port) => ['/usr/bin/redis-server', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--maxmemory', maxmemory, '--maxmemory-policy', 'noeviction'],
  });
}

/** Four free ports for one test file's audit-app. */
export async function freeAuditAppPorts(): Promise<AuditAppPorts> {
  const [backend, admin, postgres, redis] = await freePorts(4);
  return { backend: backend!, admin: admin!, postgres: postgres!, redis: redis! };
}

/** One test file's audit-app: its own prefix, free ports, labelled so the harness removes what a test leaves. */
export async function startTestAuditApp(docker: Docker, prefix: string, options: Omit<AuditAppOptions, 'prefix' | 'ports' | 'labels'> = {}): Promise<StartedAuditApp> {
  return startAuditApp(docker, { ...options, prefix, ports: await freeAuditAppPorts(), labels: { [TEST_LABEL]: 'true' } });
}

/** The CLI options that place a sandbox (`sandbox up`, `demo`, `dev --sandbox`). */
export function sandboxPlaceArgs(prefix: string, ports: AuditAppPorts): string[] {
  return ['--prefix', prefix, '--backend-port', String(ports.backend), '--admin-port', String(ports.admin), '--postgres-port', String(ports.postgres), '--redis-port', String(ports.redis)];
}
