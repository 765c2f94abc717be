/**
 * `runbooks dry-run`: one synthetic alert through its runbook, for real up to its first change, on a worker of its
 * own (in this process, on a throwaway task queue and workflow ID). It reuses the hands-off mechanism: the worker's
 * `handsOffSwitches` answers "on", so the first change or approval is recorded as what would have run, and the
 * incident stops there. Its pages are recorded, not sent; nothing goes to the audit trail. Diagnosis runs for real:
 * reads change nothing, and make the plan the one the runbook would follow now.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Notification, NotifyResult } from '../activities/notify';
import type { Config } from '../config/schema';
import type { IncidentStatusView, TimelineEvent } from '../incidents/model';
import type { Alert } from '../intake/alertmanager';
import { incidentStartOptions } from '../intake/ingest';
import { routeAlert } from '../intake/route';
import { statusQuery } from '../workflows/lifecycle/definitions';
import { createIncidentWorker } from '../worker/worker';
import type { HandsOffSwitch } from './model';

export interface DryRunPlan {
  workflowId: string;
  runbook: string;
  /** Every step as the incident recorded it: findings of the real diagnosis, then what would have run. */
  timeline: TimelineEvent[];
  /** Who would have been told what (the ladder's first page, a runbook's own notifications). */
  pages: { contacts: string[]; text: string }[];
  /** Where it stopped: `needs-human` (at its first change or approval) or `resolved` (nothing to change). */
  phase: string;
}

const DRY_RUN_SWITCH: HandsOffSwitch = { scope: 'global', on: true, by: 'dry-run', at: new Date(0).toISOString(), reason: 'nothing is changed in a dry run' };

/** How long the plan may take: diagnosis only, but some diagnoses sample metrics over a window. */
const PLAN_TIMEOUT_MS = 10 * 60_000;

export async function dryRun(deps: { client: Client; config: Config; logger: Logger; workflowBundlePath?: string }, alert: Alert): Promise<DryRunPlan> {
  const suffix = randomBytes(4).toString('hex');
  const config: Config = { ...deps.config, temporal: { ...deps.config.temporal, taskQueue: `${deps.config.temporal.taskQueue}-dry-run-${suffix}` } };
  const pages: DryRunPlan['pages'] = [];
  const { worker, close } = await createIncidentWorker({
    config,
    logger: deps.logger,
    workflowBundlePath: deps.workflowBundlePath,
    activityOverrides: {
      notify: async ({ contacts, text }: Notification): Promise<NotifyResult> => {
        pages.push({ contacts, text });
        return { delivered: [], unknownContacts: [] };
      },
      recordTimeline: async () => undefined,
      handsOffSwitches: async () => [DRY_RUN_SWITCH],
    },
  });
  const running = worker.run();
  const routed = routeAlert(alert, config);
  const workflowId = `dry-run-${routed.workflowId}-${suffix}`;
  try {
    const handle = await deps.client.workflow.start(routed.workflowType, { ...incidentStartOptions(routed, config), workflowId, staticSummary: `Dry run: ${routed.summary}` });
    const status = await untilPlanned(() => handle.query(statusQuery));
    await handle.terminate('dry run over').catch(() => undefined);
    return { workflowId, runbook: routed.input.runbook, timeline: status.timeline, pages, phase: status.phase };
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await close();
  }
}

/** Polls the status until the incident stopped at its first change (waiting for a human) or closed. */
async function untilPlanned(status: () => Promise<IncidentStatusView>): Promise<IncidentStatusView> {
  const deadline = Date.now() + PLAN_TIMEOUT_MS;
  for (;;) {
    const view = await status();
    if (view.phase === 'needs-human' || view.phase === 'resolved') return view;
    if (Date.now() > deadline) throw new Error(`the dry run did not reach its first change within ${PLAN_TIMEOUT_MS / 60_000} min (phase ${view.phase}: ${view.currentStep})`);
    await delay(250);
  }
}
