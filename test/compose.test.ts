// docker-compose.yml and the Dockerfile cannot be run here (no container registry), so
// this validates them: Compose's own schema check, plus the services and wiring we rely on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { parseConfig } from '../src/config/load';

const execFileP = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, unknown> | string[];
  stop_grace_period?: string;
}

function loadCompose(): { services: Record<string, ComposeService> } {
  return parse(readFileSync(COMPOSE_FILE, 'utf8')) as { services: Record<string, ComposeService> };
}

test('docker-compose config -q accepts docker-compose.yml', async () => {
  try {
    await execFileP('docker-compose', ['-f', COMPOSE_FILE, 'config', '-q'], { cwd: ROOT });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; code?: string | number };
    if (e.code === 'ENOENT') {
      assert.fail('docker-compose not found (Debian package docker-compose) — run bash scripts/ensure-tools.sh');
    }
    assert.fail(`docker-compose config -q failed (exit ${String(e.code)}): ${e.stderr ?? e.message}`);
  }
});

test('compose file has the expected services', () => {
  const { services } = loadCompose();
  for (const name of ['postgresql', 'temporal', 'temporal-ui', 'redis', 'worker', 'webhook']) {
    assert.ok(services[name], `service ${name} is defined`);
  }
});

test('Temporal uses the PostgreSQL service for persistence', () => {
  const { services } = loadCompose();
  const env = services.temporal?.environment ?? {};
  assert.match(services.temporal?.image ?? '', /^temporalio\/auto-setup:/);
  assert.equal(env.DB, 'postgres12');
  assert.equal(env.POSTGRES_SEEDS, 'postgresql');
  assert.match(services['temporal-ui']?.image ?? '', /^temporalio\/ui:/);
  assert.ok(services['temporal-ui']?.ports?.some((p) => p.endsWith(':8080')), 'temporal-ui publishes 8080');
});

test('worker and webhook are built from this repo and wired to the stack', () => {
  const { services } = loadCompose();
  for (const [name, command] of [
    ['worker', 'worker'],
    ['webhook', 'server'],
  ] as const) {
    const svc = services[name];
    assert.ok(svc, `${name} defined`);
    assert.equal(svc.build, '.', `${name} is built from the Dockerfile`);
    assert.deepEqual(svc.command, [command]);
    const env = svc.environment ?? {};
    assert.equal(env.TEMPORAL_ADDRESS, 'temporal:7233');
    assert.match(env.DATABASE_URL ?? '', /^postgres:\/\/.*@postgresql:5432\//);
    assert.equal(env.REDIS_URL, 'redis://redis:6379');
    assert.equal(env.RUNBOOKS_CONFIG, '/app/runbooks.yaml');
    assert.ok(svc.volumes?.includes('./runbooks.example.yaml:/app/runbooks.yaml:ro'), `${name} mounts runbooks.example.yaml`);
  }
  assert.ok(services.webhook?.ports?.includes('3000:3000'), 'webhook publishes 3000');
});

test("the worker's container is given longer to stop than the worker gives its running activities", () => {
  const { services } = loadCompose();
  const grace = /^(\d+)s$/.exec(services.worker?.stop_grace_period ?? '');
  assert.ok(grace, 'the worker service sets stop_grace_period in seconds');
  const config = parseConfig(parse(readFileSync(path.join(ROOT, 'runbooks.example.yaml'), 'utf8')));
  assert.ok(Number(grace[1]) * 1000 > config.temporal.shutdownGraceTime, `${grace[1]} s > temporal.shutdownGraceTime ${config.temporal.shutdownGraceTime} ms`);
});

test('Dockerfile runs the CLI with tsx from production dependencies', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /^FROM node:20-bookworm-slim$/m);
  assert.match(dockerfile, /npm ci --omit=dev/);
  assert.match(dockerfile, /^ENTRYPOINT \["\/app\/node_modules\/\.bin\/tsx", "src\/cli\/main\.ts"\]$/m);
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  assert.ok(pkg.dependencies.tsx, 'tsx is a production dependency (the image omits devDependencies)');
});
