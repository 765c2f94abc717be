/**
 * What `runbooks sandbox up|status|down|break` do, apart from parsing and printing (src/cli/commands/sandbox.ts):
 * find or start a Docker engine, build the audit-app's images, run it, report on it, break it, remove it.
 * Each step's failure is one line saying what is missing and how to get it.
 */
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  auditAppStatus,
  auditAppTargets,
  auditAppTargetsYaml,
  breakAuditApp,
  DEFAULT_BACKEND_VERSION,
  DEFAULT_PREFIX,
  ensureAuditAppImages,
  findAuditApp,
  removeAuditApp,
  startAuditApp,
  type AuditApp,
  type AuditAppFault,
  type AuditAppOptions,
  type AuditAppStatus,
  type BackendImageSpec,
  type BuiltImage,
  type FaultOptions,
  type FaultResult,
  type StartedAuditApp,
} from './auditApp';
import { runningPrivateEnginePid, sandboxEngine, stopPrivateEngine, SANDBOX_CONTAINERD_NAMESPACE, type DockerEngine } from './engine';

/** Where `runbooks sandbox` keeps a private Docker engine it starts (relative to the working directory). */
export const SANDBOX_ENGINE_DIR = path.join('.runbooks', 'docker');

export class SandboxError extends Error {
  override readonly name = 'SandboxError';
}

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n').find((l) => l.trim()) ?? String(err);

/** Runs `step`, turning any failure into one line that starts with what we were doing. */
async function doing<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    throw new SandboxError(`${what}: ${firstLine(err)}`);
  }
}

export interface EngineInfo {
  dockerHost: string;
  origin: DockerEngine['origin'];
  pid?: number;
  logFile?: string;
}

const engineInfo = (engine: DockerEngine): EngineInfo => ({ dockerHost: engine.dockerHost, origin: engine.origin, pid: engine.pid, logFile: engine.logFile });

function engine(host: string | undefined, start: boolean, log?: (line: string) => void): Promise<DockerEngine> {
  return doing('Docker', () => sandboxEngine({ host, dir: SANDBOX_ENGINE_DIR, start, log }));
}

/** The note to print about a private engine: where it is and how to reuse or stop it. */
export function engineNote(info: EngineInfo): string | undefined {
  if (info.origin !== 'started' && info.origin !== 'reused') return undefined;
  const verb = info.origin === 'started' ? 'started' : 'using';
  return `${verb} a private Docker engine (dockerd pid ${info.pid}, files in ${SANDBOX_ENGINE_DIR}/, log ${info.logFile}): export DOCKER_HOST=${info.dockerHost} to reuse it; \`runbooks sandbox down --engine\` stops it`;
}

export interface SandboxUpResult {
  engine: EngineInfo;
  built: BuiltImage[];
  app: StartedAuditApp;
  /** The runbooks config that points at the app. */
  targets: ReturnType<typeof auditAppTargets>;
  /** The same as YAML, with where each part listens as comments. */
  targetsYaml: string;
}

export type SandboxUpOptions = AuditAppOptions & {
  dockerHost: string | undefined;
  log?: (line: string) => void;
  /** Backend images to build besides the one `backendVersion` runs (e.g. a bad deploy that bakes a fault in). */
  backendImages?: BackendImageSpec[];
};

/** `sandbox up`: an engine (started if none answers), the images (built if missing), the app (healthy). */
export async function sandboxUp(options: SandboxUpOptions): Promise<SandboxUpResult> {
  const log = options.log ?? (() => {});
  const found = await engine(options.dockerHost, true, log);
  const info = engineInfo(found);
  const note = engineNote(info);
  if (note) log(note);
  log('building the audit-app images if needed…');
  const version = options.backendVersion ?? DEFAULT_BACKEND_VERSION;
  const extra = options.backendImages ?? [];
  const backends = extra.some((spec) => spec.version === version) ? extra : [...extra, { version }];
  const built = await doing('building the audit-app images', () => ensureAuditAppImages(found.docker, { backends }));
  for (const image of built) log(`  built ${image.image} in ${image.seconds.toFixed(1)} s (${image.megabytes} MB)`);
  log('starting the audit-app…');
  const app = await doing('starting the audit-app', () => startAuditApp(found.docker, options));
  // The config names the engine only when it is not the one a Docker client finds by default.
  const dockerHost = info.origin === 'default' ? undefined : info.dockerHost;
  return { engine: info, built, app, targets: auditAppTargets(app, dockerHost), targetsYaml: auditAppTargetsYaml(app, dockerHost) };
}

async function requireApp(engineFound: DockerEngine, prefix: string): Promise<AuditApp> {
  const app = await doing('Docker', () => findAuditApp(engineFound.docker, prefix));
  if (!app) throw new SandboxError(`no audit-app with prefix "${prefix}" on ${engineFound.dockerHost} — start it with \`runbooks sandbox up\``);
  return app;
}

/** `sandbox status`: each container's state and the backend's /health. */
export async function sandboxStatus(options: { dockerHost: string | undefined; prefix?: string }): Promise<AuditAppStatus & { engine: EngineInfo }> {
  const found = await engine(options.dockerHost, false);
  const app = await requireApp(found, options.prefix ?? DEFAULT_PREFIX);
  return { ...(await doing('Docker', () => auditAppStatus(found.docker, app))), engine: engineInfo(found) };
}

/** `sandbox break <fault>`: the fault, observable on return. */
export async function sandboxBreak(options: { dockerHost: string | undefined; prefix?: string; fault: AuditAppFault } & FaultOptions): Promise<FaultResult> {
  const found = await engine(options.dockerHost, false);
  const app = await requireApp(found, options.prefix ?? DEFAULT_PREFIX);
  return doing(`breaking the audit-app (${options.fault})`, () => breakAuditApp(found.docker, app, options.fault, options));
}

export interface SandboxDownResult {
  removed: string[];
  /** The private engine stopped (--engine), by its PID; undefined when none was running. */
  stoppedEnginePid?: number;
}

/** `sandbox down`: removes the app's containers; with `stopEngine`, stops the private engine too (by its pidfile). */
export async function sandboxDown(options: { dockerHost: string | undefined; prefix?: string; stopEngine?: boolean }): Promise<SandboxDownResult> {
  const privateEngine = { dir: SANDBOX_ENGINE_DIR, containerdNamespace: SANDBOX_CONTAINERD_NAMESPACE };
  let removed: string[] = [];
  const found = await engine(options.dockerHost, false).catch((err: unknown) => {
    // Nothing answers: nothing to remove. With --engine there may still be a private engine that hangs.
    if (options.stopEngine) return undefined;
    throw err;
  });
  if (found) removed = await doing('removing the audit-app', () => removeAuditApp(found.docker, options.prefix ?? DEFAULT_PREFIX));
  if (!options.stopEngine || runningPrivateEnginePid(privateEngine) === undefined) return { removed };
  const stoppedEnginePid = await doing('stopping the private Docker engine', () => stopPrivateEngine(privateEngine));
  return { removed, stoppedEnginePid };
}


/**
 * Stops the sandbox's private engine, waits `downMs`, and starts it again (npm run chaos's "Docker engine restarted").
 * Its containers keep running meanwhile (--live-restore). An engine that is not the sandbox's own is never touched.
 */
export async function restartSandboxEngine(options: { downMs: number }): Promise<void> {
  const privateEngine = { dir: SANDBOX_ENGINE_DIR, containerdNamespace: SANDBOX_CONTAINERD_NAMESPACE };
  const pid = runningPrivateEnginePid(privateEngine);
  if (pid === undefined) throw new SandboxError(`no private Docker engine of the sandbox runs in ${SANDBOX_ENGINE_DIR}: only that one is restarted`);
  const found = await engine(undefined, false);
  const info = await found.docker.info();
  if (!(info as { LiveRestoreEnabled?: boolean }).LiveRestoreEnabled) {
    throw new SandboxError(`the private engine (pid ${pid}) runs without --live-restore: a restart would stop the sandbox — \`runbooks sandbox down --engine\`, then up`);
  }
  await doing('stopping the private Docker engine', () => stopPrivateEngine(privateEngine));
  await sleep(options.downMs);
  await engine(undefined, true);
}
