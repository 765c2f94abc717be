/** Human-readable output: tables, an incident's status and timeline. */
import type { IncidentSummary } from '../incidents/operations';
import { alertOf, describeTrigger, type IncidentOutcome, type IncidentStatusView, type TimelineEvent } from '../incidents/model';

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** 2026-11-27T13:57:01.123Z → 2026-11-27 13:57:01Z */
function shortTime(iso: string | undefined): string {
  if (!iso) return '-';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function incidentsTable(incidents: IncidentSummary[]): string {
  return table(
    ['WORKFLOW ID', 'RUNBOOK', 'SEVERITY', 'STATUS', 'LEVEL', 'STARTED'],
    incidents.map((i) => [
      i.workflowId,
      i.runbook ?? '-',
      i.severity ?? '-',
      describeStatus(i),
      i.escalationLevel === undefined ? '-' : String(i.escalationLevel),
      shortTime(i.startTime),
    ]),
  );
}

/** The incident's phase; how the workflow ended when that says more (terminated, timed out…). */
function describeStatus(i: IncidentSummary): string {
  const phase = i.status ?? '-';
  const execution = i.executionStatus.toLowerCase();
  return execution === 'running' || execution === 'completed' ? phase : `${phase} (${execution.replace(/_/g, ' ')})`;
}

export function timelineLine(event: TimelineEvent): string {
  return `${shortTime(event.at)}  ${event.kind.padEnd(19)} ${event.actor.padEnd(12)} ${event.message}`;
}

export function incidentReport(view: IncidentStatusView, uiLinks?: UiLinks, cli = 'runbooks'): string {
  const alert = alertOf(view.trigger);
  const lines = [
    `${view.workflowId}`,
    `  runbook       ${view.runbook} (${describeTrigger(view.trigger)} on ${view.service}, ${view.severity ?? 'no severity'})`,
    ...uiLines(uiLinks),
    `  phase         ${view.phase}${view.phase === 'resolved' ? '' : ` — ${view.currentStep}`}`,
    `  escalation    ${view.escalatedTo ? `level ${view.escalationLevel} (${view.escalatedTo})` : 'none (no severity applies)'}`,
    `  acknowledged  ${view.acknowledgedBy ? `by ${view.acknowledgedBy}` : 'no'}`,
    ...(alert ? [`  alert         ${view.alertResolved ? 'resolved' : 'firing'} (fingerprint ${alert.fingerprint})`] : []),
    ...(view.handsOff ? [`  hands-off     on (${view.handsOff.scope}, by ${view.handsOff.by}${view.handsOff.reason ? `: ${view.handsOff.reason}` : ''}): no remediation starts`] : []),
    ...(view.paused ? [`  paused        by ${view.paused.by} ${shortTime(view.paused.at)} (runbooks resume ${view.workflowId})`] : []),
    ...(view.aborted ? [`  aborted       by ${view.aborted.by} ${shortTime(view.aborted.at)}: ${view.aborted.reason}`] : []),
  ];
  if (view.pendingApprovals.length > 0) {
    lines.push('', 'Waiting for approval:');
    for (const p of view.pendingApprovals) {
      lines.push(`  ${p.step} (${p.kind}): ${p.question}`);
      const quorum = p.quorum ? `; ${p.approvedBy?.length ?? 0} of ${p.quorum} approved${p.approvedBy?.length ? ` (${p.approvedBy.join(', ')})` : ''}` : '';
      lines.push(`    approvers: ${p.approvers.join(', ')}; asked ${shortTime(p.askedAt)}${quorum}${p.expiresAt ? `; escalates ${shortTime(p.expiresAt)}` : ''}`);
      lines.push(`    ${cli} approve ${view.workflowId} --step ${quoteArg(p.step)} --by NAME   (or reject)`);
    }
  }
  const tasks = view.tasks ?? [];
  if (tasks.length > 0) {
    lines.push('', 'Tasks:');
    for (const t of tasks) {
      const state = t.state === 'open' ? `open${t.dueAt ? `, due ${shortTime(t.dueAt)}` : ''}${t.overdue ? ', OVERDUE' : ''}` : `${t.state} by ${t.by} ${shortTime(t.at)}${t.note ? `: ${t.note}` : ''}`;
      lines.push(`  ${t.id}: ${t.title} (${state})`);
    }
    if (tasks.some((t) => t.state === 'open')) lines.push(`    ${cli} complete-task ${view.workflowId} --task TASK --note '…'   (or resolve --reason '…')`);
  }
  const undos = view.undos ?? [];
  if (undos.length > 0) {
    lines.push('', 'Undo steps:');
    for (const u of undos) {
      const when = u.state === 'pending' ? (u.dueAt ? `due ${shortTime(u.dueAt)} (or when the incident closes, if sooner)` : 'when the incident closes') : u.state;
      lines.push(`  - ${u.title}: ${when}`);
    }
  }
  if (view.followUps.length > 0) {
    lines.push('', 'Follow-ups:', ...view.followUps.map((f) => `  - ${f}`));
  }
  lines.push('', 'Timeline:', ...view.timeline.map((e) => `  ${timelineLine(e)}`));
  return lines.join('\n');
}

/** A closed incident, as Temporal remembers it: search attributes, and the outcome if it completed. */
export interface ClosedIncident {
  workflowId: string;
  closed: true;
  executionStatus: string;
  startTime: string;
  closeTime?: string;
  runbook?: string;
  alertname?: string;
  severity?: string;
  service?: string;
  outcome?: IncidentOutcome;
}

export function closedIncidentReport(incident: ClosedIncident, uiLinks?: UiLinks): string {
  const { outcome } = incident;
  const lines = [
    incident.workflowId,
    `  runbook       ${incident.runbook ?? '-'} (${incident.alertname ?? '-'} on ${incident.service ?? '-'}, ${incident.severity ?? '-'})`,
    ...uiLines(uiLinks),
    `  closed        ${incident.executionStatus.toLowerCase().replace(/_/g, ' ')} ${shortTime(incident.closeTime)} (started ${shortTime(incident.startTime)})`,
  ];
  if (!outcome) {
    lines.push('', 'No outcome: the workflow did not complete normally (see it in the Temporal UI).');
    return lines.join('\n');
  }
  lines.push(`  outcome       ${outcome.resolution} by ${outcome.resolvedBy}, escalation level ${outcome.escalationLevel}`);
  lines.push('', 'Timeline:', ...outcome.timeline.map((e) => `  ${timelineLine(e)}`));
  return lines.join('\n');
}

/** Where to see an incident, and the open ones, in the Temporal UI. */
export interface UiLinks {
  incident: string;
  openIncidents: string;
}

function uiLines(links: UiLinks | undefined): string[] {
  return links ? [`  Temporal UI   ${links.incident}`, `  open ones     ${links.openIncidents}`] : [];
}

/** Quotes a shell argument only when it needs it. */
export function quoteArg(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
