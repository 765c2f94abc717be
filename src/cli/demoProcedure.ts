/**
 * What the procedure demos (backfill, deploy) share: the sandbox brought up, and their worker as a process of its own
 * (`runbooks worker`, as production runs it, so it can be killed) on the demo's task queue, its config the loaded
 * file's pointed at the sandbox plus what the scenario sets; everything stopped and cleaned up afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { loadConfig } from '../config/load';
import type { Config, ConfigInput } from '../config/schema';
import { demoTaskQueue } from '../incidents/operations';
import { loadDemoSandbox } from './lazy';
import type { BrokenSandbox, SandboxPlace } from './demoSandbox';
import { firstLine } from './errors';

export interface ProcedureDemo {
  say(line: string): void;
  sandbox: BrokenSandbox;
  /** The worker's config. */
  config: Config;
  /** Starts one more worker process. */
  startWorker(): ChildProcess;
}

export async function runProcedureDemo(
  options: {
    name: string;
    summary: string;
    place: SandboxPlace;
    keep: boolean;
    loaded: { config: Config; file?: string };
    /** What the scenario adds to the worker's config (the file's section is passed in to extend). */
    configFor(fileInput: ConfigInput): Partial<ConfigInput>;
  },
  body: (demo: ProcedureDemo) => Promise<void>,
): Promise<void> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const scratch = mkdtempSync(path.join(tmpdir(), 'runbooks-demo-'));
  const workers: ChildProcess[] = [];
  let cleanUp: ((keep: boolean) => Promise<string>) | undefined;
  try {
    say(`scenario ${options.name}: ${options.summary}`);
    const sandbox = await loadDemoSandbox().breakSandbox({ scenario: {}, place: options.place, dockerHost: options.loaded.config.docker.host, log: say });
    cleanUp = sandbox.cleanUp;
    const configFile = path.join(scratch, 'runbooks.yaml');
    const fileInput = (options.loaded.file ? parseYaml(readFileSync(options.loaded.file, 'utf8')) : {}) as ConfigInput;
    const workerInput: ConfigInput = {
      ...fileInput,
      ...sandbox.targets,
      temporal: { ...fileInput.temporal, taskQueue: demoTaskQueue(options.loaded.config.temporal.taskQueue) },
      ...options.configFor(fileInput),
    };
    writeFileSync(configFile, toYaml(workerInput));
    const config = loadConfig({ file: configFile });
    const startWorker = () => {
      const worker = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'worker', '--config', configFile], {
        env: { ...process.env, LOG_LEVEL: 'error' },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      workers.push(worker);
      say(`started a worker process (pid ${worker.pid}) on task queue ${config.temporal.taskQueue}`);
      return worker;
    };
    await body({ say, sandbox, config, startWorker });
  } finally {
    for (const worker of workers) if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGTERM');
    rmSync(scratch, { recursive: true, force: true });
    if (cleanUp) say(await cleanUp(options.keep).catch((err: unknown) => `cleaning up: ${firstLine(err)}`));
  }
}
