// Test harness: brings up the infrastructure, runs the tests with Node's test runner,
// tears down what it started.
//
//   tsx test/harness/run.ts [test files...]     (default: every test/**/*.test.ts)
//
// Uses DOCKER_HOST / TEMPORAL_ADDRESS (with TEMPORAL_UI_URL, its Web UI) / DATABASE_URL / REDIS_URL when set (and answering);
// otherwise starts a private dockerd and a Temporal dev server with its Web UI and uses the local
// PostgreSQL and Redis. Exits with the test runner's exit code.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Redis from 'ioredis';
import pino from 'pino';
import { Client as PgClient } from 'pg';
import { DockerEngine, ensureDockerEngine, removeTestContainers } from './dockerd';
import { ensureAuditAppImages } from '../../src/sandbox/auditApp/images';
import { ensureSandboxImages, SandboxImageError } from '../../src/sandbox/images';
import { DevServer, findTemporalCli, findTestServer, startDevServer, waitForTemporal } from './temporal';
import { startTestRun, type TestRun } from './runner';
import { ENSURE_TOOLS, InfraError, PROJECT_ROOT, TOOLS_DIR, isAlive, seconds, whichSync } from './util';
import { redactUrl } from '../../src/logging/redact';
import { writeWorkflowBundle } from '../../src/worker/bundle';

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
const BUNDLE_PATH = path.join(TOOLS_DIR, 'workflow-bundle.js');
const WORKFLOWS_ENTRY = '../../src/workflows/index.ts';

const LOCK_FILE = path.join(TOOLS_DIR, 'harness.lock');

const say = (line: string) => console.log(`harness: ${line}`);

// ---- one run per checkout: runs share .tools/docker and remove each other's containers
let lockHeld = false;

function takeLock(): void {
  fs.mkdirSync(TOOLS_DIR, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(LOCK_FILE, `${process.pid}\n`, { flag: 'wx' });
      lockHeld = true;
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt(fs.readFileSync(LOCK_FILE, 'utf8'), 10);
    if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder) && isHarness(holder)) {
      throw new InfraError(`another test run (pid ${holder}) is using this checkout's dockerd — wait for it to finish, or stop it with kill ${holder}`);
    }
    fs.rmSync(LOCK_FILE, { force: true }); // stale: its run is gone
  }
  throw new InfraError(`could not take ${LOCK_FILE} — remove it if no test run is active`);
}

function isHarness(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('harness/run');
  } catch {
    return false;
  }
}

function releaseLock(): void {
  if (lockHeld) fs.rmSync(LOCK_FILE, { force: true });
  lockHeld = false;
}

// ---- what this run started, for teardown ---------------------------------------------
let engine: DockerEngine | undefined;
let devServer: DevServer | undefined;
let testRun: TestRun | undefined;
let signalled: NodeJS.Signals | undefined;
let signalledAt = 0;
let teardownPromise: Promise<void> | undefined;

function teardown(): Promise<void> {
  teardownPromise ??= (async () => {
    const errors: string[] = [];
    const note = (what: string) => (err: unknown) => {
      errors.push(`${what}: ${(err as Error).message}`);
    };
    await Promise.all([
      engine ? removeTestContainers(engine.docker).catch(note('removing test containers')) : undefined,
      devServer?.stop().catch(note('stopping the Temporal dev server')),
    ]);
    await engine?.stop().catch(note('stopping dockerd'));
    releaseLock();
    // Quiet on success: the test runner's summary stays the last thing printed.
    for (const e of errors) console.error(`harness: teardown: ${e}`);
  })();
  return teardownPromise;
}

function onSignal(signal: NodeJS.Signals): void {
  // A Ctrl-C reaches us several times (the terminal's process group, plus npm and tsx
  // relaying it): repeats within a few seconds are the same request.
  if (signalled) {
    if (Date.now() - signalledAt < 3_000) return;
    console.error(`harness: ${signal} again, exiting without finishing teardown`);
    releaseLock();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  }
  signalled = signal;
  signalledAt = Date.now();
  console.error(`harness: ${signal} received, stopping tests and tearing down`);
  if (testRun) {
    testRun.signal(signal);
    const run = testRun;
    setTimeout(() => run.kill(), 10_000).unref();
  }
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

// ---- test files ----------------------------------------------------------------------
function findTestFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findTestFiles(full));
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) out.push(full);
  }
  return out.sort();
}

function testFiles(args: string[]): string[] {
  if (args.length === 0) {
    const files = findTestFiles(path.join(PROJECT_ROOT, 'test'));
    if (files.length === 0) throw new InfraError('no test files (test/**/*.test.ts) — add one, or pass files as arguments');
    return files;
  }
  return args.map((arg) => {
    const file = path.resolve(arg);
    if (!fs.existsSync(file)) throw new InfraError(`test file ${arg} does not exist — check the path`);
    return file;
  });
}

// ---- setup phases --------------------------------------------------------------------
async function dockerPhase(): Promise<void> {
  const t0 = Date.now();
  engine = await ensureDockerEngine((line) => console.error(line));
  const how =
    engine.origin === 'env' ? 'DOCKER_HOST' : engine.origin === 'reused' ? `reused dockerd pid ${engine.pid}` : `started dockerd pid ${engine.pid}`;
  say(`docker ready in ${seconds(t0)} (${how}, ${engine.dockerHost})`);

  const t1 = Date.now();
  const stale = await removeTestContainers(engine.docker);
  const docker = engine.docker;
  // The busybox backends and Redis, then the audit-app's PostgreSQL and backend (test/sandbox.test.ts), once per run.
  const built = await (async () => {
    const sandbox = await ensureSandboxImages(docker);
    const auditApp = await ensureAuditAppImages(docker);
    return [...sandbox.filter((image) => !auditApp.some((b) => b.image === image)), ...auditApp.map((b) => `${b.image} (${b.seconds.toFixed(1)} s, ${b.megabytes} MB)`)];
  })().catch((err: unknown) => {
    throw err instanceof SandboxImageError ? new InfraError(err.message) : err;
  });
  const what = built.length ? `built ${built.join(', ')}` : 'all present';
  say(`images ready in ${seconds(t1)} (${what}${stale ? `; removed ${stale} stale test containers` : ''})`);
}

async function temporalPhase(): Promise<{ address: string; namespace: string; uiUrl?: string }> {
  const t0 = Date.now();
  const external = process.env.TEMPORAL_ADDRESS;
  if (external) {
    const namespace = process.env.TEMPORAL_NAMESPACE || 'default';
    try {
      await waitForTemporal(external, { namespace, timeoutMs: 10_000 });
    } catch (err) {
      throw new InfraError(
        `Temporal at TEMPORAL_ADDRESS=${external} (namespace ${namespace}) does not answer: ${(err as Error).message} — start it, or unset TEMPORAL_ADDRESS to use a dev server`,
      );
    }
    say(`temporal ready in ${seconds(t0)} (TEMPORAL_ADDRESS ${external})`);
    return { address: external, namespace, uiUrl: process.env.TEMPORAL_UI_URL };
  }
  devServer = await startDevServer({ withUi: true });
  say(`temporal ready in ${seconds(t0)} (dev server pid ${devServer.pid} at ${devServer.address})`);
  return { address: devServer.address, namespace: devServer.namespace, uiUrl: devServer.uiUrl };
}

async function bundlePhase(): Promise<void> {
  const t0 = Date.now();
  try {
    require.resolve(WORKFLOWS_ENTRY);
  } catch {
    throw new InfraError('src/workflows/index.ts does not exist — the workflow bundle needs it (export the workflows from there)');
  }
  let bytes: number;
  try {
    bytes = await writeWorkflowBundle(BUNDLE_PATH, pino({ level: 'warn' }));
  } catch (err) {
    throw new InfraError(`bundling src/workflows failed: ${(err as Error).message.split('\n')[0]}`);
  }
  say(`workflow bundle in ${seconds(t0)} (${path.relative(PROJECT_ROOT, BUNDLE_PATH)}, ${(bytes / 1e6).toFixed(1)} MB)`);
}

async function servicesPhase(databaseUrl: string, redisUrl: string): Promise<void> {
  const t0 = Date.now();
  const pg = new PgClient({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  try {
    await pg.connect();
    await pg.query('select 1');
  } catch (err) {
    throw new InfraError(
      `PostgreSQL at ${redactUrl(databaseUrl)} does not answer (${(err as Error).message}) — run ${ENSURE_TOOLS}, or set DATABASE_URL`,
    );
  } finally {
    await pg.end().catch(() => {});
  }
  const redis = new Redis(redisUrl, { lazyConnect: true, connectTimeout: 5_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new InfraError(`Redis at ${redactUrl(redisUrl)} does not answer (${(err as Error).message}) — run ${ENSURE_TOOLS}, or set REDIS_URL`);
  } finally {
    redis.disconnect();
  }
  say(`postgres and redis answer in ${seconds(t0)}`);
}

function findBin(envVar: string, names: string[], pkg: string): string {
  const fromEnv = process.env[envVar];
  if (fromEnv) return fromEnv;
  for (const name of names) {
    const found = whichSync(name);
    if (found) return found;
  }
  throw new InfraError(`${names[0]} not found (Debian package ${pkg}) — run ${ENSURE_TOOLS}`);
}

// ---- main ----------------------------------------------------------------------------
async function main(): Promise<number> {
  const tStart = Date.now();
  const files = testFiles(process.argv.slice(2));
  takeLock();
  const databaseUrl = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
  const redisUrl = process.env.REDIS_URL || DEFAULT_REDIS_URL;
  const binaries = {
    TEMPORAL_CLI_PATH: findTemporalCli(),
    TEMPORAL_TEST_SERVER_PATH: findTestServer(),
    ALERTMANAGER_BIN: findBin('ALERTMANAGER_BIN', ['prometheus-alertmanager', 'alertmanager'], 'prometheus-alertmanager'),
    AMTOOL_BIN: findBin('AMTOOL_BIN', ['amtool'], 'prometheus-alertmanager'),
    PROMTOOL_BIN: findBin('PROMTOOL_BIN', ['promtool'], 'prometheus'),
    PROMETHEUS_BIN: findBin('PROMETHEUS_BIN', ['prometheus'], 'prometheus'),
    PUSHGATEWAY_BIN: findBin('PUSHGATEWAY_BIN', ['prometheus-pushgateway', 'pushgateway'], 'prometheus-pushgateway'),
  };

  // Independent phases run side by side; every one is awaited before failing, so
  // teardown sees everything that was started.
  const phases = await Promise.allSettled([dockerPhase(), temporalPhase(), bundlePhase(), servicesPhase(databaseUrl, redisUrl)]);
  const failure = phases.find((p): p is PromiseRejectedResult => p.status === 'rejected');
  if (failure) throw failure.reason;
  if (signalled) return 128 + (signalled === 'SIGINT' ? 2 : 15);
  const temporal = (phases[1] as PromiseFulfilledResult<{ address: string; namespace: string; uiUrl?: string }>).value;
  say(`setup done in ${seconds(tStart)}; running ${files.length} test file(s)`);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...binaries,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    ...(temporal.uiUrl ? { TEMPORAL_UI_URL: temporal.uiUrl } : {}),
    DOCKER_HOST: engine!.dockerHost,
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    RUNBOOKS_WORKFLOW_BUNDLE: BUNDLE_PATH,
  };
  testRun = startTestRun(files, env);
  return await testRun.exited;
}

void main()
  .catch((err: unknown) => {
    if (err instanceof InfraError) console.error(`harness: ${err.message}`);
    else console.error(`harness: unexpected error: ${(err as Error)?.stack ?? String(err)}`);
    return 1;
  })
  .then(async (code) => {
    await teardown();
    process.exit(signalled && code === 0 ? 1 : code);
  });
