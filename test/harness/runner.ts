// The harness's test stage: Node's test runner over the test files, bounded in time.
//
//   tsx test/harness/runner.ts FILE...     (no infrastructure: what the files need must already be in the environment)
//
// test/harness/run.ts brings up the infrastructure and calls startTestRun; the command above runs this stage alone,
// which is how test/harness-timeout.test.ts checks it on fixture files.
//
// How a hung test file ends (Node 20.20's runner, measured): --test-timeout bounds each test file as a whole;
// when it runs out the runner reports the file failed and sends its process SIGTERM. A file running a Temporal
// worker survives that SIGTERM (the worker's Runtime catches it to shut down gracefully, while the client and a
// pending result() keep the process alive), and the runner used to wait for it forever after printing its
// summary. --test-force-exit makes the runner exit once its tests are over; the runner runs in a process group of
// its own, and whatever is left of that group (and its descendants) when the runner exits is killed here.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InfraError, PROJECT_ROOT } from './util';

// A hung test must not eat CI's time budget: each test file fails after this long
// (override with RUNBOOKS_TEST_TIMEOUT_MS).
export const TEST_TIMEOUT_MS = Number(process.env.RUNBOOKS_TEST_TIMEOUT_MS) || 300_000;

export interface TestRun {
  /** The runner's exit code (128 + n when it died of signal n), once it and everything it left behind are gone. */
  readonly exited: Promise<number>;
  /** Passes a signal (Ctrl-C, SIGTERM) on to the runner. */
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL to the runner and its process group. */
  kill(): void;
}

/** --test-force-exit came with Node 20.14 (and 22.0). */
function hasTestForceExit(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 20 || (major === 20 && minor >= 14);
}

const TEST_CONCURRENCY = Number(process.env.RUNBOOKS_TEST_CONCURRENCY) || 3;

export function startTestRun(files: string[], env: NodeJS.ProcessEnv, timeoutMs = TEST_TIMEOUT_MS): TestRun {
  if (!hasTestForceExit()) {
    throw new InfraError(`Node ${process.version} has no --test-force-exit, without which a hung test file hangs the whole run — use Node ≥ 20.14`);
  }
  const args = [
    '--import',
    'tsx',
    '--test',
    // Test files run side by side (each has its own task queue, audit schema, containers and ports). Most of a file's
    // time is spent waiting on containers and timers: on this 2-core machine three at a time took 381 s against
    // 490 s for two (same 53 files). RUNBOOKS_TEST_CONCURRENCY=1 runs them one by one.
    `--test-concurrency=${TEST_CONCURRENCY}`,
    `--test-timeout=${timeoutMs}`,
    '--test-force-exit',
    '--test-reporter=spec',
    ...files,
  ];
  // detached: the runner leads a process group, so what its test files leave behind can be found and killed.
  const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, env, stdio: 'inherit', detached: true });
  const group = child.pid;
  const exited = new Promise<number>((resolve) => {
    child.on('error', (err) => {
      console.error(`harness: could not start the test runner: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      if (group !== undefined) reportLeftovers(killLeftovers(group), files);
      resolve(code ?? (signal ? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 9) : 1));
    });
  });
  return {
    exited,
    signal: (signal) => void child.kill(signal),
    kill: () => {
      if (group === undefined) return;
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        /* already gone */
      }
    },
  };
}

// ---- what the test files left behind ------------------------------------------------------------
interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
}

function processTable(): Proc[] {
  const table: Proc[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses.
      const [state, ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z') continue;
      table.push({ pid: Number(name), ppid: Number(ppid), pgid: Number(pgid) });
    } catch {
      /* exited meanwhile */
    }
  }
  return table;
}

function commandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/**
 * SIGKILLs the processes of the runner's group and their descendants (which may lead groups of their own, as a
 * Temporal dev server does), and returns what they were.
 */
function killLeftovers(group: number): { pid: number; command: string }[] {
  const killed: { pid: number; command: string }[] = [];
  // A process may fork while we look: look again until nothing is left.
  for (let round = 0; round < 5; round++) {
    const table = processTable();
    const found = new Set(table.filter((p) => p.pgid === group).map((p) => p.pid));
    for (let grew = true; grew; ) {
      grew = false;
      for (const p of table) {
        if (!found.has(p.pid) && found.has(p.ppid)) {
          found.add(p.pid);
          grew = true;
        }
      }
    }
    found.delete(process.pid);
    if (found.size === 0) break;
    for (const pid of found) {
      const command = commandLine(pid);
      try {
        process.kill(pid, 'SIGKILL');
        if (round === 0 || !killed.some((k) => k.pid === pid)) killed.push({ pid, command });
      } catch {
        /* already gone */
      }
    }
  }
  return killed;
}

function reportLeftovers(killed: { pid: number; command: string }[], files: string[]): void {
  if (killed.length === 0) return;
  const described = killed.map(({ pid, command }) => {
    const file = files.find((f) => command.includes(f));
    const what = file ? path.relative(PROJECT_ROOT, file) : command.length > 120 ? `${command.slice(0, 117)}…` : command;
    return `${pid} (${what})`;
  });
  console.error(`harness: killed ${killed.length} process(es) the test files left running after the test runner exited: ${described.join(', ')}`);
}

if (require.main === module) {
  const files = process.argv.slice(2).map((file) => path.resolve(file));
  try {
    void startTestRun(files, process.env).exited.then((code) => process.exit(code));
  } catch (err) {
    console.error(`harness: ${(err as Error).message}`);
    process.exit(1);
  }
}
