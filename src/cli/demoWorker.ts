/** The worker process of a procedure demo (backfill, deploy): `runbooks worker` as production runs it, so it can be killed. */
import { spawn, type ChildProcess } from 'node:child_process';

export interface DemoWorkers {
  /** Starts one more worker process on `configFile`. */
  start(): ChildProcess;
  /** SIGTERMs those still running. */
  stopAll(): void;
}

export function demoWorkers(configFile: string, say: (line: string) => void, taskQueue: string): DemoWorkers {
  const workers: ChildProcess[] = [];
  return {
    start() {
      const worker = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'worker', '--config', configFile], {
        env: { ...process.env, LOG_LEVEL: 'error' },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      workers.push(worker);
      say(`started a worker process (pid ${worker.pid}) on task queue ${taskQueue}`);
      return worker;
    },
    stopAll() {
      for (const worker of workers) if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGTERM');
    },
  };
}
