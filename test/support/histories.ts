import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { requireEnv } from './env';

export const HISTORIES_DIR = path.resolve(__dirname, '../histories');

/**
 * With RECORD_HISTORIES=1, saves the finished workflow's history (of `runId`, e.g. a run that continued as new) (as `temporal workflow show --output json`
 * prints it) under test/histories/, so test/replay.test.ts replays it against today's workflow code and a
 * non-deterministic change fails CI.
 */
export async function recordHistoryIfAsked(workflowId: string, name: string, options: { runId?: string; address?: string } = {}): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  const run = options.runId ? ['--run-id', options.runId] : [];
  const { stdout } = await promisify(execFile)(
    requireEnv('TEMPORAL_CLI_PATH'),
    ['workflow', 'show', '--workflow-id', workflowId, ...run, '--output', 'json', '--address', options.address ?? requireEnv('TEMPORAL_ADDRESS')],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  mkdirSync(HISTORIES_DIR, { recursive: true });
  writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), stdout);
}
