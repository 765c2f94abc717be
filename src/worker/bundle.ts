/** The workflows as one bundle: built at worker start, or ahead of time (`runbooks bundle`, the image, tests, bench). */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { Logger } from 'pino';
import { sdkLoggerFor } from '../logging/sdkLogger';

/** Webpack's statistics are noise at start-up: only its warnings and errors are logged. */
export async function bundleWorkflows(logger: Logger): Promise<{ code: string }> {
  const bundlerLogger = sdkLoggerFor(logger.child({ component: 'workflow-bundler' }, { level: 'warn' }));
  return bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: bundlerLogger });
}

/**
 * Bundles the workflows into `outFile` for RUNBOOKS_WORKFLOW_BUNDLE; returns its size in bytes. Written to a temporary
 * file and renamed, so a worker never loads half a bundle.
 */
export async function writeWorkflowBundle(outFile: string, logger: Logger): Promise<number> {
  const { code } = await bundleWorkflows(logger);
  mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
  const partial = `${outFile}.${process.pid}.tmp`;
  writeFileSync(partial, code);
  renameSync(partial, outFile);
  return Buffer.byteLength(code);
}
