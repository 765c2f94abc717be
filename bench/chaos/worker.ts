/**
 * A `runbooks worker` for `npm run chaos`, with one fault of its choosing: it SIGKILLs itself at the activity boundary
 * CHAOS_KILL_AT names ({"activityType","occurrence","phase","delayMs"}): `before` the occurrence-th execution of that
 * activity runs (the server has handed it over), `mid` (delayMs into it), or `after` it returned but before its result
 * reached the server. Without CHAOS_KILL_AT it is a plain worker. Its sticky queue times out after 2 s instead of 10 s,
 * so a replacement worker picks the incident up sooner; nothing else differs from production.
 *
 *   tsx bench/chaos/worker.ts CONFIG.json   (the parsed config, as JSON)
 */
import * as fs from 'node:fs';
import { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import pino from 'pino';
import type { Config } from '../../src/config/schema';
import { createIncidentWorker } from '../../src/worker/worker';

export interface KillPoint {
  activityType: string;
  /** 1 = its first execution in this process. */
  occurrence: number;
  phase: 'before' | 'mid' | 'after';
  delayMs?: number;
}

function die(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

class KillAtBoundary implements ActivityInboundCallsInterceptor {
  private static seen = new Map<string, number>();

  constructor(private readonly point: KillPoint) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const type = Context.current().info.activityType;
    if (type !== this.point.activityType) return next(input);
    const seen = (KillAtBoundary.seen.get(type) ?? 0) + 1;
    KillAtBoundary.seen.set(type, seen);
    if (seen !== this.point.occurrence) return next(input);
    if (this.point.phase === 'before') die();
    if (this.point.phase === 'mid') setTimeout(die, this.point.delayMs ?? 0);
    const result = await next(input);
    if (this.point.phase === 'after') die();
    return result;
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as Config;
  const point = process.env.CHAOS_KILL_AT ? (JSON.parse(process.env.CHAOS_KILL_AT) as KillPoint) : undefined;
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
  const { worker, close } = await createIncidentWorker({
    config,
    logger,
    workflowBundlePath: process.env.RUNBOOKS_WORKFLOW_BUNDLE,
    chaos: {
      stickyQueueScheduleToStartTimeout: '2s',
      ...(point ? { activityInterceptors: [() => ({ inbound: new KillAtBoundary(point) })] } : {}),
    },
  });
  const stop = () => worker.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await worker.run();
  await close();
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos worker failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
