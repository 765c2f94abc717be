/**
 * The deployment procedures' activities (runbook "Standard Deployment", "Rollback Procedure") on `targets.backend`:
 * the image of a version, the migrations in a one-off container of it, the watch after the switch, the deployment
 * history in Postgres. The switch itself is docker.ts's replaceContainer. Argv arrays only; nothing from a request
 * reaches a shell.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type Docker from 'dockerode';
import type { Pool } from 'pg';
import type { Config } from '../config/schema';
import { repositoryOf, versionOf, type DeploymentRecord } from '../deployments/model';
import { readDeployments } from '../deployments/history';
import { redactUrlsIn } from '../logging/redact';
import { histogramSeries } from '../metrics/histogram';
import { ActivityErrorType } from '../runbooks/errorTypes';
import { demultiplex, inspectOrNull, ownEnvironment, PREVIOUS_IMAGE_LABEL, requireImage } from './docker';
import { targetConfig } from './targets';

const execFileP = promisify(execFile);
/** Image tags as Docker takes them. */
const VERSION_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const OUTPUT_MAX = 4_000;
const WATCH_TICK_MS = 2_000;

export interface PreparedImage {
  image: string;
  version: string;
  /** Made now (else the tag was there already). */
  built: boolean;
}

export interface MigrationRun {
  step: MigrationStep;
  exitCode: number;
  /** The schema revision it printed last (`schema revision <N>`), if any. */
  revision?: number;
  /** The last lines of its output. */
  output: string;
}
export type MigrationStep = 'up' | 'down' | 'current';

export interface WatchReport {
  windowMs: number;
  healthChecks: number;
  unhealthy: number;
  /** Log lines matching `deploy.errorPatterns`, the first few. */
  errorLines: number;
  examples: string[];
  requests: number;
  serverErrors: number;
  /** 5xx share of the requests in the window (0 without requests or without a metrics URL). */
  errorRate: number;
  /** Why it failed; absent when the deployment looks good. */
  failure?: string;
}

export interface RollbackPlan {
  currentImage: string;
  /** Where to go: the named version's image, else the `runbooks.previous-image` label's. */
  image: string;
  version?: string;
  /** The schema revision that image ran on, from the deployment history (absent: unknown, no downgrade). */
  revision?: number;
}

const invalid = (message: string) => ApplicationFailure.nonRetryable(message, ActivityErrorType.invalidInput);

export function createDeployActivities(docker: Docker, pool: Pool, config: Pick<Config, 'targets' | 'deploy' | 'audit'>) {
  const backend = () => targetConfig(config, 'backend');
  const running = async () => {
    const info = await inspectOrNull(docker, backend().container);
    if (!info) throw ApplicationFailure.nonRetryable(`container "${backend().container}" does not exist`, ActivityErrorType.containerNotFound);
    return info;
  };
  const imageOf = async (version: string) => {
    if (!VERSION_PATTERN.test(version)) throw invalid(`version "${version}" is not an image tag (letters, digits, _ . -)`);
    return `${config.deploy.repository ?? repositoryOf((await running()).Config.Image)}:${version}`;
  };

  return {
    /**
     * The image of `version`: the tag when it exists, else made by `deploy.build` (a build argv the worker runs, or the
     * sandbox's commit of the current image with the version file). Idempotent: a retry finds the tag made.
     */
    async prepareImage({ version }: { version: string }): Promise<PreparedImage> {
      const image = await imageOf(version);
      if (await imageExists(docker, image)) return { image, version, built: false };
      const build = config.deploy.build;
      if (!build) throw ApplicationFailure.nonRetryable(`image "${image}" is not on this Docker host and no deploy.build is configured`, ActivityErrorType.imageNotFound);
      if ('argv' in build) {
        const [program, ...args] = substitute(build.argv, { version, image });
        await execFileP(program!, args, { timeout: 30 * 60_000, maxBuffer: 16 * 1024 * 1024 });
      } else {
        await commitWithVersionFile(docker, (await running()).Config.Image, image, build.versionFile, version);
      }
      await requireImage(docker, image);
      return { image, version, built: true };
    },

    /**
     * `deploy.migrate.<step>` in a one-off container of `image`, with the backend container's own environment and
     * network, named after `runKey`: a retry after a crash finds that container (running or exited) and waits for it
     * instead of migrating twice. Removed once read.
     */
    async runMigration({ image, step, revision, runKey }: { image: string; step: MigrationStep; revision?: number; runKey: string }): Promise<MigrationRun> {
      const migrate = config.deploy.migrate;
      if (!migrate) throw ApplicationFailure.nonRetryable('no deploy.migrate is configured', ActivityErrorType.targetNotConfigured);
      const name = `${backend().container}-migrate-${createHash('sha256').update(runKey).digest('hex').slice(0, 16)}`;
      let container = await inspectOrNull(docker, name);
      if (!container) {
        const template = await running();
        await requireImage(docker, image);
        await docker.createContainer({
          name,
          Image: image,
          Cmd: substitute(migrate[step], { revision: String(revision ?? 0), image }),
          Env: await ownEnvironment(docker, template),
          Labels: { 'runbooks.migration-of': backend().container },
          HostConfig: { NetworkMode: template.HostConfig.NetworkMode },
        });
        container = await docker.getContainer(name).inspect();
      }
      // Created but not started: start it; running or exited: an attempt that crashed started it, wait for that run.
      if (container.State.Status === 'created') await docker.getContainer(name).start();
      const heartbeat = setInterval(() => Context.current().heartbeat(), 2_000);
      try {
        const { StatusCode } = (await docker.getContainer(name).wait()) as { StatusCode: number };
        const raw = await docker.getContainer(name).logs({ stdout: true, stderr: true, follow: false });
        // A migration tool may print its connection URL: what reaches workflow history has no password.
        const output = redactUrlsIn(demultiplex(raw).toString('utf8'));
        await docker.getContainer(name).remove({ force: true });
        const match = /^schema revision (\d+)$/m.exec(output.trim().split('\n').pop() ?? '');
        return { step, exitCode: StatusCode, ...(match ? { revision: Number(match[1]) } : {}), output: output.slice(-OUTPUT_MAX) };
      } finally {
        clearInterval(heartbeat);
      }
    },

    /**
     * Watches the backend for `windowMs`: /health every 2 s, its log since the watch began against
     * `deploy.errorPatterns`, and the 5xx share of requests from its /metrics. Read-only: a retry watches a new window.
     */
    async watchDeployment({ windowMs }: { windowMs: number }): Promise<WatchReport> {
      const { container, healthUrl, metricsUrl } = backend();
      const patterns = config.deploy.errorPatterns.map((p) => new RegExp(p));
      const since = Math.floor(Date.now() / 1000);
      const before = metricsUrl ? await requestCounts(metricsUrl).catch(() => undefined) : undefined;
      const report: WatchReport = { windowMs, healthChecks: 0, unhealthy: 0, errorLines: 0, examples: [], requests: 0, serverErrors: 0, errorRate: 0 };
      const deadline = Date.now() + windowMs;
      let unhealthyInARow = 0;
      do {
        Context.current().heartbeat(report.healthChecks);
        const healthy = await fetch(healthUrl, { signal: AbortSignal.timeout(3_000) }).then((r) => (void r.body?.cancel(), r.status === 200), () => false);
        report.healthChecks += 1;
        if (!healthy) report.unhealthy += 1;
        unhealthyInARow = healthy ? 0 : unhealthyInARow + 1;
        if (unhealthyInARow >= 2) return { ...report, failure: `/health failed ${unhealthyInARow} times in a row while watched` };
        if (Date.now() < deadline) await Context.current().sleep(Math.min(WATCH_TICK_MS, deadline - Date.now()));
      } while (Date.now() < deadline);
      const raw = await docker.getContainer(container).logs({ stdout: true, stderr: true, since, follow: false });
      const errors = demultiplex(raw).toString('utf8').split('\n').filter((line) => patterns.some((p) => p.test(line)));
      report.errorLines = errors.length;
      report.examples = errors.slice(0, 5).map((line) => redactUrlsIn(line).slice(0, 300));
      if (metricsUrl && before) {
        const after = await requestCounts(metricsUrl);
        report.requests = Math.max(0, after.requests - before.requests);
        report.serverErrors = Math.max(0, after.serverErrors - before.serverErrors);
        report.errorRate = report.requests ? report.serverErrors / report.requests : 0;
      }
      if (report.errorLines > config.deploy.maxErrorLines) report.failure = `${report.errorLines} error line(s) in the log while watched (deploy.maxErrorLines ${config.deploy.maxErrorLines}), e.g. ${report.examples[0]}`;
      else if (report.errorRate > config.deploy.maxErrorRate) report.failure = `error rate ${(report.errorRate * 100).toFixed(1)}% over ${report.requests} request(s) (deploy.maxErrorRate ${config.deploy.maxErrorRate * 100}%)`;
      return report;
    },

    /** Upserts the deployment's row by its ID (the workflow ID): a retry writes the same row again. */
    async recordDeployment({ record }: { record: DeploymentRecord }): Promise<void> {
      await pool.query(
        `INSERT INTO "${config.audit.schema}".deployments
           (id, kind, target, requested_by, version, from_image, from_version, to_image, to_version, from_revision, to_revision, result, reason, started_at, finished_at, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, from_image = EXCLUDED.from_image, from_version = EXCLUDED.from_version,
           to_image = EXCLUDED.to_image, to_version = EXCLUDED.to_version, from_revision = EXCLUDED.from_revision, to_revision = EXCLUDED.to_revision,
           result = EXCLUDED.result, reason = EXCLUDED.reason, finished_at = EXCLUDED.finished_at, duration_ms = EXCLUDED.duration_ms, updated_at = now()`,
        [record.id, record.kind, record.target, record.by, record.version ?? null, record.fromImage ?? null, record.fromVersion ?? null, record.toImage ?? null,
          record.toVersion ?? null, record.fromRevision ?? null, record.toRevision ?? null, record.result, record.reason ?? null, record.startedAt,
          record.finishedAt ?? null, record.durationMs ?? null],
      );
    },

    /**
     * Where a rollback goes: the named version (its image from the deployment history, else its tag) or the image in
     * the container's `runbooks.previous-image` label; with the schema revision that image last ran on. Read-only.
     */
    async rollbackPlan({ toVersion }: { toVersion?: string }): Promise<RollbackPlan> {
      const current = await running();
      const history = await readDeployments(pool, config.audit.schema, { last: 200 });
      let image: string | undefined;
      if (toVersion) {
        image = history.find((d) => d.toVersion === toVersion && d.toImage)?.toImage ?? (await imageOf(toVersion));
      } else {
        image = current.Config.Labels?.[PREVIOUS_IMAGE_LABEL];
        if (!image) throw ApplicationFailure.nonRetryable(`${backend().container} has no ${PREVIOUS_IMAGE_LABEL} label: name a version (--to)`, ActivityErrorType.imageNotFound);
      }
      await requireImage(docker, image);
      // The revision the target image ran on: the schema after its own deployment, or before the one that replaced it.
      const ran = history.find((d) => d.kind === 'deploy' && d.result === 'succeeded' && (d.toImage === image || d.fromImage === image));
      const revision = ran ? (ran.toImage === image ? ran.toRevision : ran.fromRevision) : undefined;
      return { currentImage: current.Config.Image, image, version: versionOf(image), ...(revision !== undefined && revision !== null ? { revision } : {}) };
    },
  };
}

export type DeployActivities = ReturnType<typeof createDeployActivities>;

function substitute(argv: readonly string[], values: Record<string, string>): string[] {
  return argv.map((arg) => arg.replace(/\{(version|image|revision)\}/g, (whole, key: string) => values[key] ?? whole));
}

async function imageExists(docker: Docker, image: string): Promise<boolean> {
  return docker
    .getImage(image)
    .inspect()
    .then(
      () => true,
      (err: { statusCode?: number }) => {
        if (err.statusCode === 404) return false;
        throw err;
      },
    );
}

/** The sandbox's build: a container of `base` (never started) given `file` = the version, committed as `image`. */
async function commitWithVersionFile(docker: Docker, base: string, image: string, file: string, version: string): Promise<void> {
  const scratch = await docker.createContainer({ Image: base, Labels: { 'runbooks.build-of': image } });
  try {
    const slash = file.lastIndexOf('/');
    await scratch.putArchive(tarOfOneFile(file.slice(slash + 1), `${version}\n`), { path: file.slice(0, slash) || '/' });
    await scratch.commit({ repo: repositoryOf(image), tag: versionOf(image), changes: [`LABEL runbooks.audit-app.version=${version}`] });
  } finally {
    await scratch.remove({ force: true });
  }
}

/** A ustar archive of one regular file (mode 0644), as `docker cp` takes it. */
function tarOfOneFile(name: string, content: string): Buffer {
  const body = Buffer.from(content, 'utf8');
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, 'utf8');
  field(0, 100, name);
  field(100, 8, '0000644\0');
  field(108, 8, '0000000\0');
  field(116, 8, '0000000\0');
  field(124, 12, `${body.length.toString(8).padStart(11, '0')}\0`);
  field(136, 12, `${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`);
  field(148, 8, '        ');
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  const padding = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header, body, padding, Buffer.alloc(1024)]);
}

/** Requests and 5xx answers so far, from the backend's latency histogram. */
async function requestCounts(url: string): Promise<{ requests: number; serverErrors: number }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  const series = await histogramSeries(await response.text(), 'http_request_duration_seconds');
  const requests = series.reduce((sum, s) => sum + s.count, 0);
  const serverErrors = series.filter((s) => /^5/.test(s.labels.status ?? '')).reduce((sum, s) => sum + s.count, 0);
  return { requests, serverErrors };
}
