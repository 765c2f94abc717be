/**
 * The harness's test stage (test/harness/runner.ts, what `npm test` runs the test files with) on fixture files: a
 * file that hangs past the test timeout, in a process that will not exit, ends the run red and promptly, with the
 * file named and the runner's summary intact, and leaves no process behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { PROJECT_ROOT } from './harness/util';
import { eventually } from './support/wait';

const RUNNER = path.join(PROJECT_ROOT, 'test/harness/runner.ts');
const HANGS = path.join(PROJECT_ROOT, 'test/harness/fixtures/hangs-after-timeout.ts');
const PASSES = path.join(PROJECT_ROOT, 'test/harness/fixtures/passes.ts');
/** Long enough for the passing fixture to start and pass even while other test files load both cores. */
const TIMEOUT_MS = 10_000;
/** Starting the runner and the fixture processes (tsx compiles them) takes a few seconds on 2 cores. */
const EXIT_BOUND_MS = TIMEOUT_MS + 20_000;
/** If the harness hangs, this test must not: the run is killed here and the test fails. */
const GIVE_UP_MS = 90_000;

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  /** From the runner reporting the timed-out file to the exit. */
  msAfterTimeout?: number;
  output: string;
}

/** Runs the harness's test stage on `files` with a short test timeout, killing it after GIVE_UP_MS. */
function runHarnessStage(files: string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  const startedAt = Date.now();
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, RUNBOOKS_TEST_TIMEOUT_MS: String(TIMEOUT_MS), RUNBOOKS_TEST_CONCURRENCY: '1', NO_COLOR: '1' };
  // We run inside a test runner ourselves: without this the inner runner would talk to ours instead of printing.
  delete childEnv.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, ['--import', 'tsx', RUNNER, ...files], {
    cwd: PROJECT_ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  let timedOutAt: number | undefined;
  const collect = (d: Buffer) => {
    output += d.toString();
    if (timedOutAt === undefined && /timed out after/.test(output)) timedOutAt = Date.now();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const giveUp = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, GIVE_UP_MS);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(giveUp);
      const now = Date.now();
      resolve({ code, signal, ms: now - startedAt, msAfterTimeout: timedOutAt && now - timedOutAt, output });
    });
  });
}

/** Alive and not a zombie. */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('the harness when a test file hangs past the test timeout', () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'harness-timeout-'));
  const pidFile = path.join(scratch, 'fixture.pid');
  after(() => {
    // Whatever happened, the fixture's process must not outlive this test.
    const pid = Number.parseInt(fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8') : '', 10);
    if (Number.isInteger(pid) && running(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  test('the run exits non-zero soon after the timeout, names the file, keeps the summary, and leaves no process behind', async () => {
    const run = await runHarnessStage([PASSES, HANGS], { HANG_FIXTURE_PID_FILE: pidFile });
    const shown = `exit ${run.code ?? run.signal} after ${run.ms} ms; output:\n${run.output}`;
    console.log(`# test timeout ${TIMEOUT_MS} ms: the run exited ${run.msAfterTimeout} ms after the runner reported the timed-out file, ${run.ms} ms after it started`);

    assert.ok(run.ms < GIVE_UP_MS, `the harness did not exit: killed after ${GIVE_UP_MS} ms. ${shown}`);
    assert.ok(run.ms < EXIT_BOUND_MS, `exited only after ${run.ms} ms. ${shown}`);
    assert.notEqual(run.code, 0, shown);
    assert.equal(run.signal, null, shown);

    assert.match(run.output, /test\/harness\/fixtures\/hangs-after-timeout\.ts/, `the hung file is named. ${shown}`);
    assert.match(run.output, new RegExp(`timed out after ${TIMEOUT_MS}ms`), shown);
    // The hung fixture is named; tsx's esbuild service of that file may be listed beside it.
    assert.match(run.output, /harness: killed \d+ process\(es\) the test files left running after the test runner exited: .*\d+ \(test\/harness\/fixtures\/hangs-after-timeout\.ts\)/, shown);
    // The runner's closing lines, which CI reads: the counts, then the failing tests.
    assert.match(run.output, /ℹ tests 2\nℹ suites 0\nℹ pass 1\nℹ fail 0\nℹ cancelled 1\n/, shown);

    const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8'), 10);
    assert.ok(Number.isInteger(pid), `the fixture wrote its pid. ${shown}`);
    await eventually(`the hung file's process ${pid} to be gone. ${shown}`, async () => (running(pid) ? undefined : true), 3_000);
  });
});
