/** A server binary a test runs for a while (Prometheus, Alertmanager): its own directory and port, ready when it says so. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../harness/util';
import { waitFor } from './wait';

export interface RunningDaemon {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Its own directory (config, storage), removed by stop(). */
  dir: string;
  process: ChildProcess;
  /** SIGTERM, wait for it to exit (it may write to its directory on the way out), then remove the directory. */
  stop(): Promise<void>;
}

export interface DaemonSpec {
  /** What it is, for the wait's message. */
  name: string;
  bin: string;
  /** Its argv, given its directory and the address to listen on (127.0.0.1:<port>). */
  args(dir: string, listen: string): string[];
  /** Answers 200 once it serves. */
  readyPath: string;
  /** Writes what it needs into its directory before it starts. */
  prepare?(dir: string): void;
}

export async function startDaemon(spec: DaemonSpec): Promise<RunningDaemon> {
  const dir = mkdtempSync(path.join(tmpdir(), `runbooks-${spec.name.toLowerCase()}-`));
  spec.prepare?.(dir);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(spec.bin, spec.args(dir, `127.0.0.1:${port}`), { stdio: ['ignore', 'ignore', 'inherit'] });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`${spec.name} to answer ${spec.readyPath}`, async () => ((await fetch(`${url}${spec.readyPath}`)).ok ? true : undefined));
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, dir, process: child, stop };
}
