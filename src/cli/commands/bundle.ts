/** `runbooks bundle --out FILE`: the workflows bundled ahead of time, for RUNBOOKS_WORKFLOW_BUNDLE (the image runs it). */
import type { Command } from 'commander';
import { z } from 'zod';
import { createLogger } from '../../logging/logger';
import { parseInput } from '../context';
import { doing } from '../errors';
import { loadWorkflowBundler } from '../lazy';

const BundleInputSchema = z.object({ out: z.string().trim().min(1, 'must name a file') });

export function registerBundleCommand(program: Command): void {
  program
    .command('bundle')
    .description('bundle the workflows into FILE; a worker started with RUNBOOKS_WORKFLOW_BUNDLE=FILE skips bundling at start-up')
    .requiredOption('--out <file>', 'where to write the bundle')
    .action(async (options: unknown) => {
      const { out } = parseInput(BundleInputSchema, options);
      const { writeWorkflowBundle } = loadWorkflowBundler();
      const bytes = await doing('bundling the workflows', () => writeWorkflowBundle(out, createLogger('runbooks-bundle')));
      process.stdout.write(`workflow bundle: ${out} (${(bytes / 1e6).toFixed(1)} MB)\n`);
    });
}
