/**
 * `runbooks demo --scenario backfill`: runbook §3's backfill through a crash, for real. The worker runs as a child
 * process (`runbooks worker`, as in production) on the demo's task queue with the config pointed at the sandbox;
 * once the backfill is under way, the demo SIGKILLs it in the middle of a chunk and starts another, and the bar
 * goes on: the new worker resumes the chunk from its last heartbeat. Exits 0 when the backfill is done.
 */
import type { BackfillView } from '../backfills/operations';
import { chunkName } from '../backfills/model';
import type { Config, ConfigInput } from '../config/schema';
import { BackfillRefused, startBackfill } from '../intake/backfill';
import type { BackfillScenario } from '../sandbox/scenarios';
import { followBackfill } from './commands/backfill';
import { withClient } from './context';
import type { SandboxPlace } from './demoSandbox';
import { runProcedureDemo } from './demoProcedure';
import { CliError } from './errors';

interface BackfillDemoInput {
  scenario: BackfillScenario;
  place: SandboxPlace;
  keep: boolean;
}

export async function runBackfillDemo(input: BackfillDemoInput, loaded: { config: Config; file?: string }): Promise<void> {
  const configFor = (fileInput: ConfigInput) => ({ backfill: { ...fileInput.backfill, delay: input.scenario.backfill.delay } });
  await runProcedureDemo({ name: 'backfill', summary: input.scenario.summary, place: input.place, keep: input.keep, loaded, configFor }, async ({ say, config, startWorker }) => {
    let worker = startWorker();
    const thisYear = new Date().getUTCFullYear();
    const from = thisYear - input.scenario.backfill.years;
    await withClient(config, async (client) => {
      const { handle } = await startBackfill(client, config, { from, to: thisYear - 1, by: 'demo' }).catch((err: unknown) => {
        throw err instanceof BackfillRefused ? new CliError(err.message) : err;
      });
      say(`started ${handle.workflowId}: ${from}–${thisYear - 1}, every county (${config.backfill.counties.length}), delay ${config.backfill.delay} ms per record\n`);
      let killed = false;
      const done = await followBackfill(client, handle.workflowId, async (view: BackfillView) => {
        if (killed || view.chunksDone < 2 || (view.cursor?.lastRecord ?? 0) < 10 || !view.current) return;
        killed = true;
        worker.kill('SIGKILL');
        say(`\n  → SIGKILLed the worker (pid ${worker.pid}) in the middle of ${chunkName(view.current)}, after record ${view.cursor!.lastRecord}`);
        worker = startWorker();
        say('  → the new worker resumes that chunk from its last heartbeat once the old one is declared dead (heartbeat timeout 10 s)\n');
      });
      const seconds = Math.round((Date.now() - Date.parse(done.startedAt)) / 100) / 10;
      say(`\n${done.chunksDone} of ${done.chunksTotal} chunk(s), ${done.recordsWritten} record(s) written in ${seconds} s, worker crash included; see it in the Temporal UI, or: npx runbooks backfill status`);
      for (const event of done.log.slice(-5)) say(`  ${event.at.replace('T', ' ').slice(0, 19)}Z  ${event.by.padEnd(10)} ${event.message}`);
    });
  });
}
