/**
 * The messages a backfill answers to, shared with its clients (CLI, HTTP API, tests). Same rule as the incidents'
 * (lifecycle/definitions.ts): named by the verb in camelCase, and each decision exists as a Signal (Temporal UI,
 * `temporal workflow signal`) and as an Update (callers that need the answer) under one name.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { BackfillStatus } from '../../backfills/model';

export const BackfillDecisionSchema = z.strictObject({ by: z.string().trim().min(1).max(100), reason: z.string().max(1000).optional() });
export type BackfillDecision = z.infer<typeof BackfillDecisionSchema>;

export const backfillVerbs = ['pause', 'resume', 'cancel', 'retryChunk', 'skipChunk'] as const;
export type BackfillVerb = (typeof backfillVerbs)[number];

export const backfillSignals = Object.fromEntries(backfillVerbs.map((verb) => [verb, defineSignal<[BackfillDecision]>(verb)])) as Record<
  BackfillVerb,
  ReturnType<typeof defineSignal<[BackfillDecision]>>
>;
export const backfillUpdates = Object.fromEntries(backfillVerbs.map((verb) => [verb, defineUpdate<BackfillStatus, [BackfillDecision]>(verb)])) as Record<
  BackfillVerb,
  ReturnType<typeof defineUpdate<BackfillStatus, [BackfillDecision]>>
>;

export const backfillStatusQuery = defineQuery<BackfillStatus>('status');

/** ApplicationFailure types a backfill Update fails with; the HTTP API and the CLI map them to status and exit codes. */
export const BackfillRefusal = {
  invalidPayload: 'InvalidPayload',
  /** retryChunk / skipChunk while no chunk waits; resume while not paused… */
  notNow: 'NotNow',
  notADecider: 'NotADecider',
  finished: 'BackfillFinished',
} as const;
