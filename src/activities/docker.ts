import { ApplicationFailure, Context } from '@temporalio/activity';
import type Docker from 'dockerode';
import { errorPatterns, type ErrorPatterns } from '../checklists/errorPatterns';
import type { Config } from '../config/schema';
import { ActivityErrorType } from '../runbooks/errorTypes';
import { checkLookupTarget } from '../security/address';
import { widestPrefixes } from '../security/denyList';
import { summarizeBackendLog, type BackendLogEvidence } from '../security/evidence';
import { targetConfig, type TargetRef } from './targets';

/** Set at deploy time on the backend container: the image to roll back to. */
export const PREVIOUS_IMAGE_LABEL = 'runbooks.previous-image';
const ROLLED_BACK_FROM_LABEL = 'runbooks.rolled-back-from';

export interface ContainerFacts {
  name: string;
  exists: boolean;
  status?: string;
  running?: boolean;
  exitCode?: number;
  oomKilled?: boolean;
  restartCount?: number;
  startedAt?: string;
  finishedAt?: string;
  image?: string;
  previousImage?: string;
}

export interface ContainerStats {
  name: string;
  running: boolean;
  cpuPercent?: number;
  memoryBytes?: number;
  memoryLimitBytes?: number;
}

export interface RollbackResult {
  image: string;
  replacedImage: string;
  /** The old container, kept stopped for the post-incident review. */
  keptAs?: string;
  alreadyDone: boolean;
}

export interface RateLimitLog {
  container: string;
  linesRead: number;
  /** Lines saying "Rate limit exceeded <client>". */
  rateLimited: number;
  /** Clients by their rate-limited lines, most first (at most 10); `share` of all rate-limited lines, 0..1. */
  top: { client: string; count: number; share: number }[];
}

/** The most log lines `rateLimitLog` reads. */
export const RATE_LIMIT_LOG_MAX_LINES = 20_000;

/**
 * The runbook's `docker logs backend | grep "Rate limit" | awk '{print $NF}' | sort | uniq -c | sort -rn | head -10`,
 * in code: every line saying "Rate limit exceeded", counted by its last field (the client). Pure.
 */
export function countRateLimited(lines: readonly string[], top = 10): { rateLimited: number; top: RateLimitLog['top'] } {
  const counts = new Map<string, number>();
  let rateLimited = 0;
  for (const line of lines) {
    if (!/\bRate limit exceeded\b/i.test(line)) continue;
    const client = line.trim().split(/\s+/).pop() ?? '';
    rateLimited += 1;
    counts.set(client, (counts.get(client) ?? 0) + 1);
  }
  const sorted = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, top)
    .map(([client, count]) => ({ client: client.slice(0, 64), count, share: rateLimited ? count / rateLimited : 0 }));
  return { rateLimited, top: sorted };
}

const LOG_TAIL_LINES = 100;
const LOG_MAX_BYTES = 16 * 1024;

/** Acts only on the containers of configured targets: a workflow names a target, never a container. */
export function createDockerActivities(docker: Docker, config: Pick<Config, 'targets' | 'policies'>) {
  const containerOf = (target: TargetRef['target']) => targetConfig(config, target).container;
  return {
    /** `docker ps` + `docker inspect` for the target's container. Read-only. */
    async inspectContainer({ target }: TargetRef): Promise<ContainerFacts> {
      const name = containerOf(target);
      const info = await inspectOrNull(docker, name);
      if (!info) return { name, exists: false };
      return {
        name,
        exists: true,
        status: info.State.Status,
        running: info.State.Running,
        exitCode: info.State.ExitCode,
        oomKilled: info.State.OOMKilled,
        restartCount: info.RestartCount,
        startedAt: info.State.StartedAt,
        finishedAt: info.State.FinishedAt,
        image: info.Config.Image,
        previousImage: info.Config.Labels?.[PREVIOUS_IMAGE_LABEL],
      };
    },

    /** `docker logs --tail=N` (default 100), cut to the last 16 KiB so workflow history stays small. Read-only. */
    async containerLogs({ target, tailLines = LOG_TAIL_LINES }: TargetRef & { tailLines?: number }): Promise<string> {
      const text = (await tailLogs(docker, containerOf(target), tailLines)) ?? '';
      return text.length > LOG_MAX_BYTES ? `…${text.slice(-LOG_MAX_BYTES)}` : text;
    },

    /**
     * The backend's "Rate limit exceeded <client>" lines of the last `tailLines` log lines (at most 20 000), counted per
     * client in the worker: only the counts reach workflow history. Read-only.
     */
    async rateLimitLog({ target, tailLines = RATE_LIMIT_LOG_MAX_LINES }: TargetRef & { tailLines?: number }): Promise<RateLimitLog> {
      const container = containerOf(target);
      const text = await tailLogs(docker, container, tailLines, RATE_LIMIT_LOG_MAX_LINES);
      if (text === undefined) throw ApplicationFailure.nonRetryable(`container ${container} does not exist`, ActivityErrorType.containerNotFound);
      const lines = text.split('\n').filter((l) => l.length > 0);
      return { container, linesRead: lines.length, ...countRateLimited(lines) };
    },

    /** `docker stats --no-stream` for the target's container: CPU % since the previous sample, memory. Read-only. */
    /**
     * Runbook §7 "Investigate": `docker logs backend | grep <ip>` without a shell or a pattern — the last `tailLines`
     * (up to 20000) lines, those whose client field is the source (or in its network), summarised. Read-only.
     */
    async backendLogForSource({ target, source, tailLines = 5_000 }: TargetRef<'backend'> & { source: string; tailLines?: number }): Promise<BackendLogEvidence> {
      // The workflow checked it already; the worker checks again with its own config: never a look wider than the policy's.
      const parsed = checkLookupTarget(source, widestPrefixes(config));
      if (!parsed.ok) throw ApplicationFailure.nonRetryable(parsed.reason, ActivityErrorType.invalidInput);
      const name = containerOf(target);
      const info = await inspectOrNull(docker, name);
      if (!info) return { ...summarizeBackendLog(name, [], parsed.network), exists: false };
      const tail = Math.max(1, Math.min(Math.floor(tailLines), 20_000));
      const raw = await docker.getContainer(name).logs({ stdout: true, stderr: true, tail, follow: false });
      const lines = (info.Config.Tty ? raw : demultiplex(raw)).toString('utf8').split('\n').filter((l) => l.length > 0);
      return { ...summarizeBackendLog(name, lines, parsed.network), exists: true };
    },

    /**
     * The error patterns of the container's log (the daily checklist's "new errors"): the last `tailLines` lines (up
     * to 20000) with Docker's timestamps, grouped in the worker; new = seen in the last `windowMs`, not before. Read-only.
     */
    async errorPatterns({ target, windowMs, tailLines = 5_000 }: TargetRef & { windowMs: number; tailLines?: number }): Promise<ErrorPatterns> {
      const name = containerOf(target);
      const windowStartMs = Date.now() - windowMs;
      const info = await inspectOrNull(docker, name);
      if (!info) return { ...errorPatterns(name, [], windowStartMs), exists: false };
      const tail = Math.max(1, Math.min(Math.floor(tailLines), 20_000));
      const raw = await docker.getContainer(name).logs({ stdout: true, stderr: true, tail, timestamps: true, follow: false });
      const lines = (info.Config.Tty ? raw : demultiplex(raw)).toString('utf8').split('\n').filter((l) => l.length > 0);
      return errorPatterns(name, lines, windowStartMs);
    },

    async containerStats({ target }: TargetRef): Promise<ContainerStats> {
      const name = containerOf(target);
      const info = await inspectOrNull(docker, name);
      if (!info?.State.Running) return { name, running: false };
      const s = await docker.getContainer(name).stats({ stream: false });
      const cpuDelta = s.cpu_stats.cpu_usage.total_usage - s.precpu_stats.cpu_usage.total_usage;
      const systemDelta = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0);
      const cpus = s.cpu_stats.online_cpus ?? s.cpu_stats.cpu_usage.percpu_usage?.length ?? 1;
      return {
        name,
        running: true,
        cpuPercent: systemDelta > 0 ? Math.round((cpuDelta / systemDelta) * cpus * 1000) / 10 : 0,
        memoryBytes: s.memory_stats.usage,
        memoryLimitBytes: s.memory_stats.limit,
      };
    },

    /**
     * `docker restart`, once: a retry whose earlier attempt restarted the container (the worker died before the server
     * heard) finds it running since after the step was scheduled, and does not restart it again. (Found by
     * `npm run chaos`: the worker SIGKILLed right after the restart made a second one.)
     */
    async restartContainer({ target }: TargetRef): Promise<void> {
      const name = containerOf(target);
      const info = await requireContainer(docker, name);
      const { attempt, scheduledTimestampMs } = Context.current().info;
      if (attempt > 1 && info.State.Running && Date.parse(info.State.StartedAt) >= scheduledTimestampMs) return;
      await docker.getContainer(name).restart({ t: 10 });
    },

    /**
     * Runbook §1's rollback: the container replaced by one on `image` (replaceContainer, `mode: 'rollback'`). Kept
     * under this name for the recorded incidents that call it. Idempotent as replaceContainer is.
     */
    async rollbackContainer({ target, image }: TargetRef & { image: string }): Promise<RollbackResult> {
      return replaceContainer(docker, containerOf(target), image, 'rollback');
    },

    /**
     * Replaces the container by one on `image` — a deployment (`deploy`: the replaced image goes into the
     * `runbooks.previous-image` label) or a rollback (`rollback`: that label is dropped, the replaced image noted — or
     * set to `previousImage`, when a failed deployment puts back a container that had one).
     * Idempotent as replaceContainer is: a retry after a crash at any point finishes the same replacement.
     */
    async replaceContainer({ target, image, mode, previousImage }: TargetRef & { image: string; mode: ReplaceMode; previousImage?: string }): Promise<RollbackResult> {
      return replaceContainer(docker, containerOf(target), image, mode, previousImage, () => Context.current().heartbeat());
    },
  };
}

/** A deployment keeps the image it replaced (to roll back to); a rollback forgets it. */
export type ReplaceMode = 'deploy' | 'rollback';

/**
 * Replaces the container by one running `image`, with the same command, host config and the environment the container
 * set itself (what the replaced image baked in stays behind with it, so the new image's own defaults apply — a bad
 * image's setting must not survive its rollback); the old one is kept, stopped and renamed `<name>-replaced-<id>`, for
 * the post-incident review. Idempotent: a retry after a crash at any point finds either the container already on
 * `image` (started if it is not running), or no container and the kept one to copy from — never two running, and
 * never none for longer than the retry takes.
 */
export async function replaceContainer(
  docker: Docker,
  name: string,
  image: string,
  mode: ReplaceMode,
  previousImage?: string,
  heartbeat: () => void = () => {},
): Promise<RollbackResult> {
  const current = await inspectOrNull(docker, name);
  if (current?.Config.Image === image) {
    if (!current.State.Running) await docker.getContainer(name).start();
    const replaced = current.Config.Labels?.[mode === 'deploy' ? PREVIOUS_IMAGE_LABEL : ROLLED_BACK_FROM_LABEL];
    return { image, replacedImage: replaced ?? image, alreadyDone: true };
  }
  await requireImage(docker, image);
  const template = current ?? (await findKeptContainer(docker, name));
  const keptAs = `${name}-replaced-${template.Id.slice(0, 12)}`;
  if (current) {
    heartbeat();
    if (current.State.Running) await docker.getContainer(name).stop({ t: 10 });
    heartbeat();
    await docker.getContainer(name).rename({ name: keptAs });
  }
  heartbeat();
  const labels: Record<string, string> = { ...template.Config.Labels };
  if (mode === 'deploy') {
    labels[PREVIOUS_IMAGE_LABEL] = template.Config.Image;
    delete labels[ROLLED_BACK_FROM_LABEL];
  } else {
    labels[ROLLED_BACK_FROM_LABEL] = template.Config.Image;
    if (previousImage) labels[PREVIOUS_IMAGE_LABEL] = previousImage;
    else delete labels[PREVIOUS_IMAGE_LABEL];
  }
  const replacement = await docker.createContainer({
    name,
    Image: image,
    Cmd: template.Config.Cmd ?? undefined,
    Entrypoint: template.Config.Entrypoint ?? undefined,
    Env: await ownEnvironment(docker, template),
    Labels: labels,
    ExposedPorts: template.Config.ExposedPorts,
    HostConfig: template.HostConfig,
  });
  await replacement.start();
  return { image, replacedImage: template.Config.Image, keptAs, alreadyDone: false };
}

export type DockerActivities = ReturnType<typeof createDockerActivities>;

/** The container's environment without what its image set (all of it, if that image is gone). */
export async function ownEnvironment(docker: Docker, container: Docker.ContainerInspectInfo): Promise<string[] | undefined> {
  const env = container.Config.Env ?? undefined;
  const fromImage = await docker
    .getImage(container.Image)
    .inspect()
    .then((image) => new Set(image.Config.Env ?? []), () => new Set<string>());
  return env?.filter((entry) => !fromImage.has(entry));
}

/** `docker logs --tail=N` (1 to 1000 lines) of a container, stdout and stderr as text; undefined when it does not exist. */
export async function tailLogs(docker: Docker, name: string, tailLines: number, maxLines = 1000): Promise<string | undefined> {
  const info = await inspectOrNull(docker, name);
  if (!info) return undefined;
  const tail = Math.max(1, Math.min(Math.floor(tailLines), maxLines));
  const raw = await docker.getContainer(name).logs({ stdout: true, stderr: true, tail, follow: false });
  return (info.Config.Tty ? raw : demultiplex(raw)).toString('utf8');
}

export async function inspectOrNull(docker: Docker, name: string): Promise<Docker.ContainerInspectInfo | null> {
  try {
    return await docker.getContainer(name).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

async function requireContainer(docker: Docker, name: string): Promise<Docker.ContainerInspectInfo> {
  const info = await inspectOrNull(docker, name);
  if (!info) throw ApplicationFailure.nonRetryable(`container "${name}" does not exist`, ActivityErrorType.containerNotFound);
  return info;
}

/** The container a crashed rollback already renamed away, to finish the job from. */
async function findKeptContainer(docker: Docker, name: string): Promise<Docker.ContainerInspectInfo> {
  const kept = await docker.listContainers({ all: true, filters: { name: [`^/${name}-replaced-`] } });
  const newest = kept.sort((a, b) => b.Created - a.Created)[0];
  if (!newest) throw ApplicationFailure.nonRetryable(`container "${name}" does not exist`, ActivityErrorType.containerNotFound);
  return docker.getContainer(newest.Id).inspect();
}

export async function requireImage(docker: Docker, image: string): Promise<void> {
  try {
    await docker.getImage(image).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) {
      throw ApplicationFailure.nonRetryable(`image "${image}" is not on this Docker host`, ActivityErrorType.imageNotFound);
    }
    throw err;
  }
}

/**
 * Docker multiplexes stdout/stderr of non-TTY containers in frames: 8-byte header (stream, 0, 0, 0, size).
 * Output that is not framed that way (a TTY container) comes back as it is.
 */
export function demultiplex(raw: Buffer): Buffer {
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const size = raw.readUInt32BE(offset + 4);
    chunks.push(raw.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return offset === raw.length ? Buffer.concat(chunks) : raw;
}

export interface ExecResult {
  exitCode: number;
  /** stdout and stderr, the last 16 KiB. */
  output: string;
}

/** `docker exec <container> argv…` with an argv array (never a shell string), waiting for it to end. */
export async function execInContainer(docker: Docker, container: string, argv: string[]): Promise<ExecResult> {
  const exec = await docker.getContainer(container).exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  const text = demultiplex(Buffer.concat(chunks)).toString('utf8');
  const { ExitCode } = await exec.inspect();
  return { exitCode: ExitCode ?? -1, output: text.length > LOG_MAX_BYTES ? `…${text.slice(-LOG_MAX_BYTES)}` : text };
}
