/**
 * `runbooks backfill --from 2023 --to 2024 [--county C]… [--follow]` (runbook §3 "backfill specific date range"),
 * and `runbooks backfill status [--follow] | pause | resume | cancel | retry-chunk | skip-chunk`: the one backfill
 * of the configured ETL target (targets.etl). `--follow` draws a progress bar until it is done.
 */
import { SingleBar } from 'cli-progress';
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { z } from 'zod';
import { BackfillOperationError, actOnBackfill, getBackfill, type BackfillView } from '../../backfills/operations';
import { chunkName } from '../../backfills/model';
import type { Config } from '../../config/schema';
import { BackfillRefused, backfillWorkflowId, startBackfill } from '../../intake/backfill';
import type { BackfillVerb } from '../../workflows/backfill/messages';
import { actorOrDefault, ActorNameSchema, loadCliConfig, NoteSchema, osUserName, parseInput, withClient } from '../context';
import { CliError } from '../errors';

const year = z.coerce.number().int('a whole year').min(1900, 'from 1900').max(2200, 'up to 2200');
const StartInputSchema = z.object({
  from: year,
  to: year,
  county: z.array(z.string().min(1)).optional(),
  by: ActorNameSchema,
  follow: z.boolean().default(false),
});
const StatusInputSchema = z.object({ follow: z.boolean().default(false), json: z.boolean().default(false) });
const DecisionInputSchema = z.object({ by: ActorNameSchema, reason: NoteSchema });

const decisions: Array<{ command: string; verb: BackfillVerb; description: string; done: string }> = [
  { command: 'pause', verb: 'pause', description: 'pause after the current chunk (no chunk starts until resume)', done: 'paused' },
  { command: 'resume', verb: 'resume', description: 'resume a paused backfill', done: 'resumed' },
  { command: 'cancel', verb: 'cancel', description: 'stop after the current chunk', done: 'cancelling' },
  { command: 'retry-chunk', verb: 'retryChunk', description: 'load the chunk that failed for good again', done: 'retrying the failed chunk' },
  { command: 'skip-chunk', verb: 'skipChunk', description: 'skip the chunk that failed for good and go on', done: 'skipping the failed chunk' },
];

export function registerBackfillCommands(program: Command): void {
  const me = osUserName();
  const byDefault = `default: your OS user name${me ? `, "${me}"` : ''}`;
  const backfill = program
    .command('backfill')
    .description('load a range of years through the ETL pipeline, chunk by chunk, surviving crashes (runbook §3); or steer the running one')
    .option('--from <year>', 'first year')
    .option('--to <year>', 'last year (default: --from)')
    .option('--county <county>', 'only this county (repeatable; default: backfill.counties)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--by <who>', `who asks (${byDefault})`)
    .option('--follow', 'draw a progress bar until it is done')
    .action(async (options: Record<string, unknown>, command: Command) => {
      if (options.from === undefined) throw new CliError('--from: required (the first year to load); or one of: status, pause, resume, cancel, retry-chunk, skip-chunk', 2);
      const input = parseInput(StartInputSchema, { ...options, to: options.to ?? options.from, by: actorOrDefault(options.by) });
      const { config } = loadCliConfig(command);
      await withClient(config, async (client) => {
        const { handle, input: started } = await refusedAsCliError(() =>
          startBackfill(client, config, { from: input.from, to: input.to, by: input.by, ...(input.county ? { counties: input.county } : {}) }),
        );
        const chunks = (input.to - input.from + 1) * started.counties.length;
        process.stdout.write(`started ${handle.workflowId}: ${input.from}–${input.to}, ${chunks} chunk(s) (${started.counties.join(', ')}), delay ${started.policy.delayMs} ms per record\n`);
        if (input.follow) await followBackfill(client, handle.workflowId);
        else process.stdout.write(`  follow it: runbooks backfill status --follow\n`);
      });
    });

  backfill
    .command('status')
    .description('chunks and records done, the current chunk and its cursor, throughput, ETA')
    .option('--follow', 'draw a progress bar until it is done')
    .option('--json', 'print the status as JSON')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(StatusInputSchema, options);
      const { config } = loadCliConfig(command);
      const workflowId = workflowIdOf(config);
      await withClient(config, async (client) => {
        if (input.follow) return void (await followBackfill(client, workflowId));
        const view = await operation(() => getBackfill(client, workflowId));
        process.stdout.write(input.json ? `${JSON.stringify(view, null, 2)}\n` : statusText(view));
      });
    });

  for (const { command: name, verb, description, done } of decisions) {
    backfill
      .command(name)
      .description(description)
      .option('--by <who>', `who decides (${byDefault})`)
      .option('--reason <text>', 'why, for the backfill log')
      .action(async (options: Record<string, unknown>, command: Command) => {
        const input = parseInput(DecisionInputSchema, { ...options, by: actorOrDefault(options.by) });
        const { config } = loadCliConfig(command);
        const workflowId = workflowIdOf(config);
        const status = await withClient(config, (client) => operation(() => actOnBackfill(client, workflowId, verb, { by: input.by, ...(input.reason ? { reason: input.reason } : {}) })));
        process.stdout.write(`${workflowId}: ${done} by ${input.by} (${status.chunksDone} of ${status.chunksTotal} chunk(s) done)\n`);
      });
  }
}

function workflowIdOf(config: Config): string {
  try {
    return backfillWorkflowId(config);
  } catch (err) {
    if (err instanceof BackfillRefused) throw new CliError(err.message);
    throw err;
  }
}

async function refusedAsCliError<T>(start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof BackfillRefused) throw new CliError(err.message, err.reason === 'invalid' ? 2 : 1);
    throw err;
  }
}

async function operation<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof BackfillOperationError) throw new CliError(err.message);
    throw err;
  }
}

function where(view: BackfillView): string {
  if (!view.current) return view.phase;
  const cursor = view.cursor ? ` record ${view.cursor.lastRecord}` : '';
  return view.failure ? `${chunkName(view.current)} FAILED: ${view.failure}` : `${chunkName(view.current)}${cursor}`;
}

/** `≈160`, `160` or `?`: the records the backfill will have written. */
function recordsTotal(view: BackfillView): string {
  if (view.recordsTotal === undefined) return '?';
  return `${view.recordsTotalEstimated ? '≈' : ''}${view.recordsTotal}`;
}

function statusText(view: BackfillView): string {
  const eta = view.etaSeconds === undefined ? '' : `, ETA ${view.etaSeconds} s`;
  const estimate = view.recordsTotalEstimated && view.recordsTotal !== undefined ? ` (≈: the chunks left counted at ${view.cursor?.records ?? view.recordsPerChunk} records, the latest county-year's)` : '';
  return [
    `${view.workflowId}  ${view.phase}${view.paused && view.phase !== 'paused' ? ' (paused)' : ''}  ${view.request.from}–${view.request.to}, started by ${view.request.by} at ${view.startedAt}`,
    `  chunks   ${view.chunksDone} of ${view.chunksTotal} done${view.skipped.length ? `, skipped ${view.skipped.map(chunkName).join(', ')}` : ''}`,
    `  records  ${view.recordsSoFar} of ${recordsTotal(view)} written${estimate}, ${view.recordsPerSecond}/s of loading${eta}`,
    `  now      ${where(view)}`,
    `  runs     ${view.runs} (continue-as-new after backfill.chunksPerRun chunks)`,
    ...(view.phase === 'waiting-for-human' ? ['  decide   runbooks backfill retry-chunk | skip-chunk [--reason …]'] : []),
    'Log:',
    ...view.log.slice(-10).map((e) => `  ${e.at.replace('T', ' ').slice(0, 19)}Z  ${e.by.padEnd(12)} ${e.message}`),
    '',
  ].join('\n');
}

/**
 * Polls the status until the backfill ends: a progress bar on a terminal, else one line per change. Survives a
 * worker or server restart in between (a failed poll is retried). `onView` sees each status first (the demo kills
 * a worker from there).
 */
export async function followBackfill(client: Client, workflowId: string, onView?: (view: BackfillView) => Promise<void>): Promise<BackfillView> {
  const tty = process.stdout.isTTY === true;
  const bar = tty ? new SingleBar({ format: '{bar} {percentage}% | {value}/{total} chunks | {records}/{records_total} records, {rate}/s | ETA {eta_s}s | {where}', hideCursor: true }) : undefined;
  let lastLine = '';
  let failures = 0;
  for (;;) {
    let view: BackfillView;
    try {
      view = await getBackfill(client, workflowId);
      failures = 0;
    } catch (err) {
      if (err instanceof BackfillOperationError || ++failures > 120) throw err;
      await sleep(1_000);
      continue;
    }
    await onView?.(view);
    const done = view.chunksDone + view.skipped.length;
    const fields = { records: view.recordsSoFar, records_total: recordsTotal(view), rate: view.recordsPerSecond, eta_s: view.etaSeconds ?? '?', where: where(view) };
    if (bar) {
      if (!bar.isActive) bar.start(view.chunksTotal, done, fields);
      bar.update(done, fields);
    } else {
      const line = `${Math.floor((100 * done) / Math.max(view.chunksTotal, 1))}% ${done}/${view.chunksTotal} chunks, ${fields.records} of ${fields.records_total} records, ${fields.rate}/s, ETA ${fields.eta_s} s, ${fields.where}`;
      if (line !== lastLine) process.stdout.write(`${line}\n`);
      lastLine = line;
    }
    if (view.phase === 'done' || view.phase === 'cancelled') {
      bar?.stop();
      process.stdout.write(`${workflowId} ${view.phase}: ${view.log.at(-1)?.message ?? ''}\n`);
      return view;
    }
    await sleep(500);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
