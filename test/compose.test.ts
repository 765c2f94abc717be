// docker-compose.yml cannot be brought up here (no container registry to pull its images from), so this
// validates it (test/image-build.test.ts builds the Dockerfile): Compose's own schema check, the services and
// wiring we rely on, and every image tag, environment variable and flag against deploy/images.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { loadConfig, parseConfig } from '../src/config/load';

const execFileP = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  secrets?: { source: string; target: string }[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, unknown> | string[];
  stop_grace_period?: string;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { file?: string }>;
}

function loadCompose(): ComposeFile {
  return parse(readFileSync(COMPOSE_FILE, 'utf8')) as ComposeFile;
}

interface ImageReference {
  docs: string;
  checkedAgainst: string;
  environment: string[];
  flags: string[];
}

function loadImageReference(): Record<string, ImageReference> {
  const file = JSON.parse(readFileSync(path.join(ROOT, 'deploy', 'images.json'), 'utf8')) as { images: Record<string, ImageReference> };
  return file.images;
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
  for (const name of ['postgresql', 'temporal', 'temporal-ui', 'redis', 'worker', 'webhook', 'prometheus', 'pushgateway', 'alertmanager']) {
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

test('every image is pinned to a tag that deploy/images.json documents, and every variable and flag it is given is documented for that tag', () => {
  const { services } = loadCompose();
  const reference = loadImageReference();
  const undocumented: string[] = [];
  for (const [name, svc] of Object.entries(services)) {
    if (svc.build !== undefined) continue; // built from this repository: its variables are the config's (README, Configuration)
    const image = svc.image ?? '';
    assert.match(image, /^[\w./-]+:v?\d+\.\d+(\.\d+)?$/, `${name}: image ${image} is pinned to a release (PostgreSQL numbers its releases major.minor)`);
    const documented = reference[image];
    if (!documented) {
      undocumented.push(`${name}: image ${image} (no entry)`);
      continue;
    }
    assert.match(documented.docs, /^https:\/\//, `${image} names its documentation`);
    for (const variable of Object.keys(svc.environment ?? {})) {
      if (!documented.environment.includes(variable)) undocumented.push(`${name}: ${variable} (${image})`);
    }
    for (const arg of svc.command ?? []) {
      const flag = /^(--?[\w.-]+)/.exec(arg)?.[1];
      if (!flag || !documented.flags.includes(flag)) undocumented.push(`${name}: argument ${arg} (${image})`);
    }
  }
  assert.deepEqual(undocumented, [], 'every image, variable and flag is in deploy/images.json for that exact tag');
});

test('Prometheus runs the shipped config and rules, and Alertmanager the shipped config with its token from a compose secret', () => {
  const { services, secrets } = loadCompose();
  assert.ok(services.prometheus?.volumes?.includes('./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro'));
  assert.ok(services.prometheus?.volumes?.includes('./deploy/prometheus/rules.yml:/etc/prometheus/rules.yml:ro'), 'rule_files: [rules.yml] is next to the config');
  assert.ok(services.prometheus?.command?.includes('--config.file=/etc/prometheus/prometheus.yml'));
  assert.ok(services.alertmanager?.volumes?.includes('./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro'));
  assert.ok(services.alertmanager?.command?.includes('--config.file=/etc/alertmanager/alertmanager.yml'));

  const alertmanagerConfig = parse(readFileSync(path.join(ROOT, 'deploy/alertmanager/alertmanager.yml'), 'utf8')) as {
    receivers: { webhook_configs?: { url: string; http_config?: { authorization?: { credentials_file?: string; credentials?: string } } }[] }[];
  };
  const webhooks = alertmanagerConfig.receivers.flatMap((receiver) => receiver.webhook_configs ?? []);
  assert.ok(webhooks.length > 0, 'alertmanager.yml has a webhook receiver');
  for (const webhook of webhooks) {
    assert.equal(new URL(webhook.url).host, `webhook:${services.webhook?.environment?.PORT}`, 'Alertmanager posts to the webhook service');
    assert.equal(webhook.http_config?.authorization?.credentials, undefined, 'no literal token in alertmanager.yml');
    const tokenFile = webhook.http_config?.authorization?.credentials_file;
    const secret = services.alertmanager?.secrets?.find((s) => s.target === tokenFile);
    assert.ok(secret, `the credentials_file ${tokenFile} is a compose secret of the alertmanager service`);
    assert.ok(secrets?.[secret.source]?.file, `secret ${secret.source} is read from a file outside the compose file`);
  }
});

test("Prometheus scrapes every job of the shipped prometheus.yml from a compose service, the worker's metrics among them", () => {
  const { services } = loadCompose();
  const prometheus = parse(readFileSync(path.join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
  };
  const target = (job: string) => prometheus.scrape_configs.find((c) => c.job_name === job)?.static_configs[0]?.targets[0];
  // The audit-app's own jobs (backend, postgres_exporter) scrape the monitored application, which is not in this stack.
  assert.equal(target('pushgateway'), 'pushgateway:9091', 'the pushgateway job scrapes the pushgateway service');
  assert.ok(services.pushgateway, 'the pushgateway service runs');
  assert.deepEqual(prometheus.alerting.alertmanagers[0]?.static_configs[0]?.targets, ['alertmanager:9093']);

  const worker = services.worker!;
  const config = loadConfig({ file: path.join(ROOT, 'runbooks.example.yaml'), env: worker.environment ?? {} });
  const metricsAddress = config.temporal.workerMetricsAddress;
  assert.ok(metricsAddress, "the worker's environment sets temporal.workerMetricsAddress");
  assert.equal(target('runbooks-worker'), `worker:${metricsAddress.split(':').pop()}`, "the runbooks-worker job scrapes the worker's metrics address");
});

test('the image carries a pre-built workflow bundle that the worker loads', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const bundle = /^ENV RUNBOOKS_WORKFLOW_BUNDLE=(\S+)$/m.exec(dockerfile)?.[1];
  assert.ok(bundle, 'the Dockerfile sets RUNBOOKS_WORKFLOW_BUNDLE');
  assert.match(dockerfile, new RegExp(`^RUN .*src/cli/main\\.ts bundle --out \\$RUNBOOKS_WORKFLOW_BUNDLE`, 'm'), 'the Dockerfile builds it with runbooks bundle');
});
