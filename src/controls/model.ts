/**
 * The operator controls every incident obeys, shared by the workflows (which import only this file), the HTTP API and
 * the CLI: the hands-off switch (global or per runbook), and pause/resume/abort of one incident's remediation.
 */
import { z } from 'zod';
import { runbookNames, type RunbookName } from '../runbooks/catalog';

const who = z.string().trim().min(1).max(100);
const reason = z.string().trim().min(1).max(1000);

/** `global`, or one runbook's name: the switch of that runbook alone. */
export const HandsOffScopeSchema = z.union([z.literal('global'), z.enum(runbookNames)]);
export type HandsOffScope = z.infer<typeof HandsOffScopeSchema>;

/** One switch as it stands: who set it, when and why. The signal to incidents carries the same. */
export const HandsOffSwitchSchema = z.strictObject({ scope: HandsOffScopeSchema, on: z.boolean(), by: who, at: z.iso.datetime(), reason: reason.optional() });
export type HandsOffSwitch = z.infer<typeof HandsOffSwitchSchema>;

/** The switch that holds remediation back for an incident of this runbook (global first), or undefined when none is on. */
export function handsOffFor(switches: readonly HandsOffSwitch[], runbook: RunbookName): HandsOffSwitch | undefined {
  const on = switches.filter((s) => s.on && (s.scope === 'global' || s.scope === runbook));
  return on.find((s) => s.scope === 'global') ?? on[0];
}

/** `pause` and `resume` of one incident's remediation; `abort` needs a reason, which goes on the timeline and into the page. */
export const PauseSchema = z.strictObject({ by: who, note: z.string().max(1000).optional() });
export const AbortSchema = z.strictObject({ by: who, reason });
export type Pause = z.infer<typeof PauseSchema>;
export type Abort = z.infer<typeof AbortSchema>;
