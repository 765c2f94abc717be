/**
 * The audit-app's images, built without any registry from this machine's own binaries (src/sandbox/rootfs.ts):
 *
 *   runbooks-audit-app-postgres:15        PostgreSQL 15 from /usr/lib/postgresql/15 (Debian postgresql-15 and
 *                                         postgresql-client-15): postgres, initdb, pg_ctl, pg_isready, psql, pg_dump,
 *                                         pg_restore, their libraries, the extension libraries (pg_stat_statements…),
 *                                         /usr/share/postgresql/15, the time zones; runs as `postgres` (uid 999)
 *   runbooks-audit-app-backend:<version>  this process's `node` + its libraries, server.ts bundled with esbuild (as tsx
 *                                         ships it) into /app/server.js, and the npm packages it imports with their
 *                                         dependency closure copied from node_modules; runs as `app` (uid 10001)
 *   runbooks-audit-app-etl:1              the same `node`, etl.ts bundled into /app/etl.js and `pg` with its dependency
 *                                         closure; runs as `app` (uid 10001); /var/lib/etl (state) writable by it
 *   runbooks-sandbox-redis:1              the existing Redis image (src/sandbox/images.ts)
 *
 * Every image has busybox and its applets (ls, cat, ps…) for `docker exec`. Each carries a recipe label that hashes
 * what went into it (the sources, the package versions, the binaries' versions), so an edit rebuilds and nothing else does.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { ensureSandboxImages, REDIS_IMAGE } from '../images';
import {
  BUSYBOX_IN_IMAGE,
  buildImage,
  copyInto,
  copyTree,
  copyWithLibraries,
  hasImage,
  SandboxImageError,
  sharedLibraries,
  sharedLibrariesOf,
  staticBusybox,
  verifyImage,
  type ImageUser,
} from '../rootfs';
import { BACKUP_DIR, EtlPaths } from './contract';
import { dependencyClosure } from './nodeModules';

const execFileP = promisify(execFile);
const PROJECT_ROOT = path.resolve(__dirname, '..', '..', '..');

export const POSTGRES_IMAGE = 'runbooks-audit-app-postgres:15';
export const BACKEND_REPOSITORY = 'runbooks-audit-app-backend';
export const DEFAULT_BACKEND_VERSION = '1.0.0';
export const ETL_IMAGE = 'runbooks-audit-app-etl:1';
export { REDIS_IMAGE };

/** Bump when a recipe changes in a way the hashed inputs (including the builders' own source) do not show. */
const RECIPE_VERSION = '1';
const BUILDER_SOURCES = [__filename, path.join(__dirname, '..', 'rootfs.ts')];

/** The recipe label: a hash of the recipe version, the builders' source and `inputs`. */
function recipeHash(...inputs: Array<string | Buffer>): string {
  const hash = createHash('sha256').update(RECIPE_VERSION);
  for (const file of BUILDER_SOURCES) if (fs.existsSync(file)) hash.update(fs.readFileSync(file));
  for (const input of inputs) hash.update(input);
  return hash.digest('hex').slice(0, 16);
}

// ---- PostgreSQL -------------------------------------------------------------------------------------------------

const PG_BIN = '/usr/lib/postgresql/15/bin';
const PG_LIB = '/usr/lib/postgresql/15/lib';
const PG_SHARE = '/usr/share/postgresql/15';
const ZONEINFO = '/usr/share/zoneinfo';
const PG_SERVER_BINARIES = ['postgres', 'initdb', 'pg_ctl'];
const PG_CLIENT_BINARIES = ['pg_isready', 'psql', 'pg_dump', 'pg_restore'];
const POSTGRES_FILES = path.join(__dirname, 'postgres');
export const POSTGRES_USER: ImageUser = { name: 'postgres', uid: 999, home: '/var/lib/postgresql' };
export const POSTGRES_DATA_DIR = '/var/lib/postgresql/data';
const POSTGRES_ENTRYPOINT = '/usr/local/bin/audit-app-postgres';

/** One line naming the Debian package that provides what is missing. */
function requirePostgresFiles(): void {
  const missing = (files: string[]) => files.filter((f) => !fs.existsSync(f));
  const server = missing([...PG_SERVER_BINARIES.map((b) => path.join(PG_BIN, b)), path.join(PG_LIB, 'pg_stat_statements.so'), PG_SHARE]);
  if (server.length) throw new SandboxImageError(`PostgreSQL 15 server files are missing (${server.join(', ')}) — apt-get install -y postgresql-15`);
  const client = missing(PG_CLIENT_BINARIES.map((b) => path.join(PG_BIN, b)));
  if (client.length) throw new SandboxImageError(`PostgreSQL 15 client programs are missing (${client.join(', ')}) — apt-get install -y postgresql-client-15`);
  if (!fs.existsSync(path.join(ZONEINFO, 'UTC'))) throw new SandboxImageError(`${ZONEINFO} is missing — apt-get install -y tzdata`);
}

/** Extension libraries, without the JIT (llvmjit pulls in LLVM, >100 MB; the server runs with jit = off). */
const pgLibraryWanted = (relative: string) => !/^(bitcode|llvmjit)/.test(relative);

async function postgresRecipe(): Promise<string> {
  const { stdout } = await execFileP(path.join(PG_BIN, 'postgres'), ['--version']);
  const files = fs.readdirSync(POSTGRES_FILES).sort().flatMap((file) => [file, fs.readFileSync(path.join(POSTGRES_FILES, file))]);
  return recipeHash(stdout, ...files);
}

async function buildPostgres(docker: Docker, recipe: string): Promise<void> {
  requirePostgresFiles();
  const applets = await busyboxApplets();
  await buildImage(docker, POSTGRES_IMAGE, recipe, {
    users: [POSTGRES_USER],
    changes: [
      `ENV PATH=${PG_BIN}:/usr/local/bin:/usr/bin:/bin`,
      `ENV PGDATA=${POSTGRES_DATA_DIR}`,
      'ENV PGPORT=5432',
      'ENV PGUSER=postgres',
      'ENV TZ=UTC',
      `USER ${POSTGRES_USER.name}`,
      `WORKDIR ${POSTGRES_USER.home}`,
      `CMD ["${POSTGRES_ENTRYPOINT}"]`,
    ],
    fill: async (rootfs) => {
      linkApplets(rootfs, applets);
      const binaries = [...PG_SERVER_BINARIES, ...PG_CLIENT_BINARIES].map((b) => path.join(PG_BIN, b));
      copyTree(rootfs, PG_LIB, PG_LIB, (relative) => !pgLibraryWanted(relative));
      const extensionLibraries = fs.readdirSync(PG_LIB).filter((f) => f.endsWith('.so') && pgLibraryWanted(f)).map((f) => path.join(PG_LIB, f));
      await copyWithLibraries(rootfs, binaries);
      for (const dep of await sharedLibrariesOf(extensionLibraries, { sharedObject: true })) copyInto(rootfs, dep);
      copyTree(rootfs, PG_SHARE, PG_SHARE, (relative) => relative === 'man');
      copyTree(rootfs, ZONEINFO, ZONEINFO, (relative) => relative === 'right' || relative === 'posix');
      copyInto(rootfs, path.join(POSTGRES_FILES, 'entrypoint.sh'), POSTGRES_ENTRYPOINT);
      copyInto(rootfs, path.join(POSTGRES_FILES, 'init.sql'), '/etc/audit-app/init.sql');
      copyInto(rootfs, path.join(POSTGRES_FILES, 'postgresql.conf'), '/etc/audit-app/postgresql.conf');
      // Files in the image are root's: what postgres writes to is world-writable with the sticky bit. PGDATA itself
      // is made by initdb (as postgres, mode 0700).
      for (const dir of [POSTGRES_USER.home, '/var/run/postgresql', BACKUP_DIR]) {
        fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
        fs.chmodSync(path.join(rootfs, dir), 0o1777);
      }
    },
  });
  // One container (each costs a copy of the image on vfs): the user, and every program answering.
  const programs = [...PG_SERVER_BINARIES, ...PG_CLIENT_BINARIES].map((b) => `${b} --version`).join(' && ');
  await verifyImage(docker, POSTGRES_IMAGE, ['sh', '-c', `id -un && ${programs}`], /^postgres\s[\s\S]*postgres \(PostgreSQL\) 15\.[\s\S]*pg_restore \(PostgreSQL\) 15\./);
}

// ---- backend ----------------------------------------------------------------------------------------------------

export const BACKEND_USER: ImageUser = { name: 'app', uid: 10001, home: '/app' };
const SERVER_SOURCE = path.join(__dirname, 'server.ts');
export const BACKEND_SERVER_IN_IMAGE = '/app/server.js';
export const NODE_IN_IMAGE = '/usr/bin/node';

/** A backend image: its version (the tag, /app/VERSION) and environment baked in, e.g. a bad deploy's FAULT_*. */
export interface BackendImageSpec {
  version: string;
  env?: Readonly<Record<string, string>>;
}

export function backendImage(version: string = DEFAULT_BACKEND_VERSION): string {
  return `${BACKEND_REPOSITORY}:${version}`;
}

interface EsbuildModule {
  build(options: Record<string, unknown>): Promise<{ outputFiles: Array<{ text: string }>; metafile: { inputs: Record<string, { imports: Array<{ path: string; external?: boolean }> }> } }>;
}

/** esbuild as tsx (a dependency of this project) ships it. */
function esbuild(): EsbuildModule {
  try {
    const tsxDir = path.dirname(require.resolve('tsx/package.json'));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(require.resolve('esbuild', { paths: [tsxDir] })) as EsbuildModule;
  } catch (err) {
    throw new SandboxImageError(`esbuild (installed with tsx) cannot be loaded: ${(err as Error).message.split('\n')[0]} — run npm ci`);
  }
}

interface Bundle {
  code: string;
  /** The npm packages it requires. */
  packages: string[];
}

/** `source` (server.ts, etl.ts) and what it imports from this project in one CommonJS file; npm packages stay `require`s. */
async function bundle(source: string): Promise<Bundle> {
  const result = await esbuild().build({
    entryPoints: [source],
    // Paths in the output's comments are relative to it: the project root, not the caller's cwd, keeps the recipe stable.
    absWorkingDir: PROJECT_ROOT,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const packages = new Set<string>();
  for (const input of Object.values(result.metafile.inputs)) {
    for (const imported of input.imports) {
      if (!imported.external || imported.path.startsWith('node:')) continue;
      const parts = imported.path.split('/');
      packages.add(imported.path.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
    }
  }
  return { code: result.outputFiles[0]!.text, packages: [...packages].sort() };
}

/** The node binary: the one running this (the project's Node 20), which must be a dynamically linked ELF. */
function nodeBinary(): string {
  const node = fs.realpathSync(process.execPath);
  if (!fs.existsSync(node)) throw new SandboxImageError('the node binary is missing — apt-get install -y nodejs');
  return node;
}

async function backendRecipe(spec: BackendImageSpec, server: Bundle): Promise<string> {
  const closure = dependencyClosure(PROJECT_ROOT, server.packages);
  return recipeHash(process.version, server.code, JSON.stringify(closure.map((p) => [p.relativeDir, p.version])), JSON.stringify(spec));
}

async function buildBackend(docker: Docker, spec: BackendImageSpec, server: Bundle, recipe: string): Promise<void> {
  const image = backendImage(spec.version);
  const node = nodeBinary();
  const closure = dependencyClosure(PROJECT_ROOT, server.packages);
  const applets = await busyboxApplets();
  const env = Object.entries(spec.env ?? {}).map(([key, value]) => `ENV ${key}=${value}`);
  await buildImage(docker, image, recipe, {
    users: [BACKEND_USER],
    changes: [
      'ENV PATH=/usr/local/bin:/usr/bin:/bin',
      'ENV NODE_ENV=production',
      ...env,
      `LABEL runbooks.audit-app.version=${spec.version}`,
      `USER ${BACKEND_USER.name}`,
      'WORKDIR /app',
      `CMD ["${NODE_IN_IMAGE}", "${BACKEND_SERVER_IN_IMAGE}"]`,
    ],
    fill: async (rootfs) => {
      linkApplets(rootfs, applets);
      copyInto(rootfs, node, NODE_IN_IMAGE);
      for (const lib of await sharedLibraries(node)) copyInto(rootfs, lib);
      fs.mkdirSync(path.join(rootfs, 'app'), { recursive: true });
      fs.writeFileSync(path.join(rootfs, BACKEND_SERVER_IN_IMAGE), server.code);
      fs.writeFileSync(path.join(rootfs, 'app', 'VERSION'), `${spec.version}\n`);
      fs.writeFileSync(path.join(rootfs, 'app', 'package.json'), `${JSON.stringify({ name: 'audit-app-backend', version: spec.version, private: true }, null, 2)}\n`);
      // Nested node_modules are packages of their own: copied when the closure holds them.
      for (const pkg of closure) copyTree(rootfs, pkg.dir, path.join('/app', pkg.relativeDir), (relative) => relative === 'node_modules');
    },
  });
  // Every package resolves from /app as it will at run time.
  const requires = server.packages.map((p) => `require.resolve(${JSON.stringify(p)})`).join(';');
  await verifyImage(docker, image, [NODE_IN_IMAGE, '-e', `${requires};console.log('ok', process.version, require('fs').readFileSync('/app/VERSION','utf8').trim())`], /^ok v\d+/m);
}

// ---- etl --------------------------------------------------------------------------------------------------------

const ETL_SOURCE = path.join(__dirname, 'etl.ts');

function etlRecipe(etl: Bundle): string {
  const closure = dependencyClosure(PROJECT_ROOT, etl.packages);
  return recipeHash('etl', process.version, etl.code, JSON.stringify(closure.map((p) => [p.relativeDir, p.version])));
}

async function buildEtl(docker: Docker, etl: Bundle, recipe: string): Promise<void> {
  const node = nodeBinary();
  const closure = dependencyClosure(PROJECT_ROOT, etl.packages);
  const applets = await busyboxApplets();
  await buildImage(docker, ETL_IMAGE, recipe, {
    users: [BACKEND_USER],
    changes: [
      'ENV PATH=/usr/local/bin:/usr/bin:/bin',
      'ENV NODE_ENV=production',
      `ENV ETL_DOWNLOADS_DIR=${EtlPaths.downloadsDir}`,
      `USER ${BACKEND_USER.name}`,
      'WORKDIR /app',
      `CMD ["${EtlPaths.node}", "${EtlPaths.program}", "daemon"]`,
    ],
    fill: async (rootfs) => {
      linkApplets(rootfs, applets);
      copyInto(rootfs, node, EtlPaths.node);
      for (const lib of await sharedLibraries(node)) copyInto(rootfs, lib);
      fs.mkdirSync(path.join(rootfs, 'app'), { recursive: true });
      fs.writeFileSync(path.join(rootfs, EtlPaths.program), etl.code);
      fs.writeFileSync(path.join(rootfs, 'app', 'package.json'), `${JSON.stringify({ name: 'audit-app-etl', version: '1.0.0', private: true }, null, 2)}\n`);
      for (const pkg of closure) copyTree(rootfs, pkg.dir, path.join('/app', pkg.relativeDir), (relative) => relative === 'node_modules');
      // Files in the image are root's: what `app` writes to is world-writable with the sticky bit. The container
      // mounts a small tmpfs over the downloads dir; the directory here is for a container run without it.
      for (const dir of [EtlPaths.stateDir, EtlPaths.downloadsDir]) {
        fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
        fs.chmodSync(path.join(rootfs, dir), 0o1777);
      }
    },
  });
  // One container (each costs a copy of the image on vfs): the program loads (its `require('pg')` resolves from
  // /app) and answers, as `app`, writing its state dir and reading the downloads dir.
  // (`id -un` first: an answer that is all JSON would come back parsed from the engine's log API.)
  await verifyImage(docker, ETL_IMAGE, ['sh', '-c', `id -un && ${EtlPaths.node} ${EtlPaths.program} status`], /^app\s[\s\S]*"downloads"/);
}

// ---- shared -----------------------------------------------------------------------------------------------------

/** The applets of the machine's static busybox (ls, cat, ps, sleep…), linked in /bin for `docker exec`. */
async function busyboxApplets(): Promise<string[]> {
  const { stdout } = await execFileP(await staticBusybox(), ['--list']);
  return stdout.split('\n').filter((name) => /^[a-z0-9_.[-]+$/i.test(name) && name !== 'busybox');
}

function linkApplets(rootfs: string, applets: readonly string[]): void {
  for (const applet of applets) {
    const link = path.join(rootfs, 'bin', applet);
    if (!fs.existsSync(link)) fs.symlinkSync(path.basename(BUSYBOX_IN_IMAGE), link);
  }
}

export interface BuiltImage {
  image: string;
  seconds: number;
  /** Size the engine reports for the image. */
  megabytes: number;
}

export interface AuditAppImageOptions {
  /** Backend images to make sure of (default: the default version, nothing baked in). */
  backends?: readonly BackendImageSpec[];
}

/**
 * Makes sure the audit-app's images exist, building what is missing or stale: PostgreSQL, Redis, each backend
 * version asked for and the ETL. Returns what it built, with build time and size.
 */
export async function ensureAuditAppImages(docker: Docker, options: AuditAppImageOptions = {}): Promise<BuiltImage[]> {
  const built: BuiltImage[] = [];
  const measure = async (image: string, build: () => Promise<void>) => {
    const started = Date.now();
    await build();
    const seconds = (Date.now() - started) / 1000;
    const info = await docker.getImage(image).inspect();
    built.push({ image, seconds, megabytes: Math.round((info.Size / 1e6) * 10) / 10 });
  };

  requirePostgresFiles();
  const pgRecipe = await postgresRecipe();
  if (!(await hasImage(docker, POSTGRES_IMAGE, pgRecipe))) await measure(POSTGRES_IMAGE, () => buildPostgres(docker, pgRecipe));

  const redisStarted = Date.now();
  if ((await ensureSandboxImages(docker, [REDIS_IMAGE])).length) {
    const info = await docker.getImage(REDIS_IMAGE).inspect();
    built.push({ image: REDIS_IMAGE, seconds: (Date.now() - redisStarted) / 1000, megabytes: Math.round((info.Size / 1e6) * 10) / 10 });
  }

  const server = await bundle(SERVER_SOURCE);
  for (const spec of options.backends ?? [{ version: DEFAULT_BACKEND_VERSION }]) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(spec.version)) throw new SandboxImageError(`backend version "${spec.version}" is not a valid image tag`);
    const recipe = await backendRecipe(spec, server);
    if (!(await hasImage(docker, backendImage(spec.version), recipe))) await measure(backendImage(spec.version), () => buildBackend(docker, spec, server, recipe));
  }

  const etl = await bundle(ETL_SOURCE);
  const recipe = etlRecipe(etl);
  if (!(await hasImage(docker, ETL_IMAGE, recipe))) await measure(ETL_IMAGE, () => buildEtl(docker, etl, recipe));
  return built;
}
