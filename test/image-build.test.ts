// The Dockerfile built for real on the harness's Docker engine. There is no container registry here, so its base image
// (node:20-bookworm-slim) cannot be pulled: it is stood in for by this machine's own Node.js 20 and npm, imported from a
// rootfs under that name (as src/sandbox does for its images), with this machine's CA bundle. Everything after FROM runs
// as written, `npm ci` against the npm registry included, and the image's worker is then started against the test
// Temporal and Postgres.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load';
import { BUSYBOX_IN_IMAGE, buildImage, copyInto, copyTree, copyWithLibraries, sharedLibrariesOf } from '../src/sandbox/rootfs';
import { dropAuditSchema } from './support/audit';
import { suiteCleanups } from './support/cleanups';
import { testConfigInput } from './support/config';
import { testDocker } from './support/sandbox';
import { waitFor } from './support/wait';

const execFileP = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const IMAGE = 'runbooks-image-build-test:1';
const NPM = '/usr/lib/node_modules/npm';
const MACHINE_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The Dockerfile's FROM, which the stand-in base image is tagged as. */
function dockerfileBase(dockerfile: string): string {
  const from = /^FROM (\S+)$/m.exec(dockerfile)?.[1];
  assert.ok(from, 'the Dockerfile has a FROM line');
  return from;
}

/** The libraries this machine's copies of the npm packages' native modules load (those built for another platform skipped). */
async function nativeModuleLibraries(): Promise<Set<string>> {
  const modules = readdirSync(path.join(ROOT, 'node_modules'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.node'))
    .map((file) => path.join(ROOT, 'node_modules', file));
  const libraries = new Set<string>();
  for (const module of modules) {
    const own = await sharedLibrariesOf([module], { sharedObject: true }).catch(() => new Set<string>()); // ldd refuses another architecture's
    for (const lib of own) libraries.add(lib);
  }
  return libraries;
}

/** `docker …` on the harness's engine, argv only; a failure names the command and what it printed. */
async function docker(args: string[], timeoutMs: number): Promise<string> {
  try {
    const { stdout } = await execFileP('docker', args, { env: { ...process.env, DOCKER_BUILDKIT: '0' }, maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`docker ${args.join(' ')} failed: ${e.message}\n${(e.stdout ?? '').slice(-4000)}\n${(e.stderr ?? '').slice(-4000)}`, { cause: err });
  }
}

describe('the Dockerfile', () => {
  const cleanups = suiteCleanups();

  test('builds on a stand-in for its base image (npm ci and the workflow bundle included), and its worker starts and polls', { timeout: 900_000 }, async () => {
    const engine = testDocker();
    const base = dockerfileBase(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
    await buildImage(engine, base, `runbooks-test-node-${process.version}`, {
      users: [{ name: 'node', uid: 1000, home: '/home/node' }],
      // This machine's network intercepts TLS: the stand-in trusts what the machine trusts, or npm ci cannot reach the registry.
      changes: ['ENV PATH=/usr/local/bin:/usr/bin:/bin', `ENV NODE_EXTRA_CA_CERTS=${MACHINE_CA_BUNDLE}`],
      fill: async (rootfs) => {
        await copyWithLibraries(rootfs, [process.execPath]);
        copyTree(rootfs, NPM);
        copyInto(rootfs, MACHINE_CA_BUNDLE);
        // A Debian slim image has all of glibc; the native modules npm ci installs (Temporal's core, swc) need more of it than node.
        for (const lib of await nativeModuleLibraries()) copyInto(rootfs, lib);
        symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/bin/npm'));
        // npm-cli.js starts with `#!/usr/bin/env node`: busybox's env applet.
        symlinkSync(BUSYBOX_IN_IMAGE, path.join(rootfs, 'usr/bin/env'));
      },
    });
    cleanups.push(() => docker(['image', 'rm', '-f', IMAGE, base], 60_000));

    await docker(['build', '--network', 'host', '--tag', IMAGE, ROOT], 840_000);

    const input = testConfigInput();
    const config = parseConfig(input);
    cleanups.push(() => dropAuditSchema(config));
    const configDir = mkdtempSync(path.join(tmpdir(), 'runbooks-image-'));
    cleanups.push(async () => rmSync(configDir, { recursive: true, force: true }));
    chmodSync(configDir, 0o755); // the image's node user reads the mounted file
    writeFileSync(path.join(configDir, 'runbooks.yaml'), stringify(input), { mode: 0o644 });
    const name = `runbooks-image-worker-${process.pid}`;
    await docker(
      [
        'run', '--detach', '--init', '--network', 'host', '--name', name, '--label', 'runbooks.sandbox=true',
        '--env', `TEMPORAL_ADDRESS=${config.temporal.address}`, '--env', `TEMPORAL_NAMESPACE=${config.temporal.namespace}`,
        '--volume', `${path.join(configDir, 'runbooks.yaml')}:/app/runbooks.yaml:ro`, '--env', 'RUNBOOKS_CONFIG=/app/runbooks.yaml',
        IMAGE, 'worker',
      ],
      60_000,
    );
    cleanups.push(() => docker(['rm', '-f', name], 60_000));

    const connection = await Connection.connect({ address: config.temporal.address });
    cleanups.push(() => connection.close());
    // The task queue is this test's own: a poller on it is the container's worker, on the image's pre-built bundle.
    const polling = waitFor("the image's worker to poll its task queue", async () => {
      const { pollers } = await connection.workflowService.describeTaskQueue({
        namespace: config.temporal.namespace,
        taskQueue: { name: config.temporal.taskQueue },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      });
      return pollers.length > 0 ? pollers : undefined;
    }, 120_000);
    await polling.catch(async (err: Error) => {
      throw new Error(`${err.message}; the container's log:\n${await docker(['logs', '--tail', '50', name], 30_000).catch((e: Error) => e.message)}`);
    });
  });
});
