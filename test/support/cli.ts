/** The `runbooks` CLI as users run it: a child process in a scratch working directory, with the harness's environment. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { ConfigInput } from '../../src/config/schema';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'runbooks.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  /** What it printed so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Its exit code, once it has exited. */
  exited: Promise<number | null>;
}

/** The harness's environment (TEMPORAL_ADDRESS, DATABASE_URL…) minus what would override the config file. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!('PORT' in extra)) delete env.PORT;
  delete env.RUNBOOKS_CONFIG;
  return env;
}

export interface CliWorkspace {
  /** The working directory of every command (its .runbooks/ is theirs). */
  scratch: string;
  run(args: string[], options?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult>;
  /** Starts a long-running command (dev, demo), collecting what it prints. */
  spawn(args: string[], env?: NodeJS.ProcessEnv): CliProcess;
  /** Writes a config file into the scratch directory; returns its path. */
  writeConfig(input: ConfigInput): string;
  remove(): void;
}

export function cliWorkspace(name: string): CliWorkspace {
  const scratch = mkdtempSync(path.join(tmpdir(), `runbooks-${name}-`));
  return {
    scratch,
    run(args, { env = cliEnv(), timeoutMs = 60_000 } = {}) {
      return new Promise((resolve) => {
        execFile(process.execPath, [BIN, ...args], { cwd: scratch, env, timeout: timeoutMs }, (err, stdout, stderr) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
        });
      });
    },
    spawn(args, env = cliEnv()) {
      const child = spawn(process.execPath, [BIN, ...args], { cwd: scratch, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const output = { stdout: '', stderr: '' };
      child.stdout.on('data', (d: Buffer) => (output.stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output.stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      return {
        child,
        exited,
        get stdout() {
          return output.stdout;
        },
        get stderr() {
          return output.stderr;
        },
      };
    },
    writeConfig(input) {
      const file = path.join(scratch, `runbooks-${randomBytes(3).toString('hex')}.yaml`);
      writeFileSync(file, toYaml(input));
      return file;
    },
    remove() {
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

/** Waits for a spawned command to exit, up to `ms`; 'timeout' if it did not. */
export function exitWithin(cli: CliProcess, ms: number): Promise<number | null | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([cli.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]).finally(() => clearTimeout(timer));
}
