/**
 * What a monitoring checklist run reports, as plain types shared by the checklist workflows, the activity that
 * stores the report in Postgres and the CLI that reads it. Pure: safe in workflows.
 */
export const checkResults = ['pass', 'fail', 'skipped', 'signed-off'] as const;
export type CheckResult = (typeof checkResults)[number];

export interface CheckReport {
  /** The runbook's checklist item, e.g. "Verify ETL jobs succeeded". */
  name: string;
  result: CheckResult;
  /** One sentence: what was found. */
  summary: string;
  /** What it was judged on (numbers, the evidence line…), small enough for workflow history. */
  evidence: Record<string, unknown>;
  /** The incident a failed check opened (its workflow ID). */
  incident?: string;
}

export interface ChecklistReport {
  workflowId: string;
  runId: string;
  /** The checklist's runbook name (daily-checklist…). */
  checklist: string;
  startedAt: string;
  finishedAt?: string;
  checks: CheckReport[];
}
