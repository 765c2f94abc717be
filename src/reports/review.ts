/**
 * The runbook's "Post-Incident Review Template", filled in from an incident's audit trail: summary (date, duration,
 * severity, impact), timeline (HH:MM; with the tasks for humans: added, done by whom with their note, overdue), root
 * cause (the findings before the first action: a draft for people to edit), resolution (the actions), action items
 * (the follow-ups), lessons learned (left for people). Pure: the same trail always gives the same review, as JSON or
 * Markdown.
 */
import type { TimelineKind } from '../incidents/model';
import type { AuditedIncident } from './auditTrail';

export interface Review {
  workflowId: string;
  title: string;
  runbook: string;
  date: string;
  openedAt: string;
  closedAt?: string;
  durationMinutes?: number;
  severity?: string;
  phase: string;
  impact: { servicesImpacted: string[]; usersAffected: string; dataLoss: string };
  timeline: Array<{ time: string; at: string; kind: TimelineKind; actor: string; message: string }>;
  rootCause: string[];
  resolution: string[];
  actionItems: string[];
  lessonsLearned: string;
}


const TO_FILL = '(to be filled in by the review)';

/** The kinds the review keeps (what happened, not the bookkeeping), each a lane of the picture. */
const MARKS: Partial<Record<TimelineKind, { color: string; label: string }>> = {
  detected: { color: '#d62728', label: 'detected' },
  notified: { color: '#7f7f7f', label: 'notified' },
  finding: { color: '#1f77b4', label: 'finding' },
  action: { color: '#2ca02c', label: 'action' },
  undo: { color: '#17becf', label: 'undo' },
  'approval-requested': { color: '#9467bd', label: 'approval asked' },
  approved: { color: '#9467bd', label: 'approved' },
  rejected: { color: '#8c564b', label: 'rejected' },
  escalated: { color: '#ff7f0e', label: 'escalated' },
  acknowledged: { color: '#bcbd22', label: 'acknowledged' },
  // The tasks for humans (rotate credentials…): who did each, and their note, are in the message.
  'task-added': { color: '#e377c2', label: 'task added' },
  'task-done': { color: '#e377c2', label: 'task done' },
  'task-overdue': { color: '#ff7f0e', label: 'task overdue' },
  'alert-resolved': { color: '#2ca02c', label: 'alert resolved' },
  // A fault the response rode through (a worker lost, the Docker engine restarting): when, and which step.
  'activity-retried': { color: '#ff9896', label: 'step retried' },
  // What the hands-off switch held back, and the operators' hands-off, pause, resume and abort.
  'would-have': { color: '#c5b0d5', label: 'held back' },
  control: { color: '#8c564b', label: 'operator control' },
  resolved: { color: '#2ca02c', label: 'resolved' },
  note: { color: '#aaaaaa', label: 'note' },
};

export function buildReview({ incident, events }: AuditedIncident): Review {
  const firstAction = events.findIndex((e) => e.kind === 'action');
  const findingsBefore = (firstAction === -1 ? events : events.slice(0, firstAction)).filter((e) => e.kind === 'finding');
  const closedAt = incident.closedAt;
  const durationMinutes = closedAt ? Math.max(0, Math.round((Date.parse(closedAt) - Date.parse(incident.openedAt)) / 60_000)) : undefined;
  return {
    workflowId: incident.workflowId,
    title: `${incident.alertname ?? incident.runbook} on ${incident.service}`,
    runbook: incident.runbook,
    date: incident.openedAt.slice(0, 10),
    openedAt: incident.openedAt,
    ...(closedAt ? { closedAt, durationMinutes } : {}),
    ...(incident.severity ? { severity: incident.severity } : {}),
    phase: incident.phase,
    impact: { servicesImpacted: [incident.service], usersAffected: TO_FILL, dataLoss: TO_FILL },
    timeline: events.filter((e) => e.kind in MARKS).map((e) => ({ time: hhmm(e.at), at: e.at, kind: e.kind, actor: e.actor, message: e.message })),
    rootCause: findingsBefore.map((e) => e.message),
    resolution: events.filter((e) => e.kind === 'action' || e.kind === 'undo' || e.kind === 'resolved').map((e) => e.message),
    actionItems: events.filter((e) => e.kind === 'follow-up').map((e) => e.message),
    lessonsLearned: TO_FILL,
  };
}

/** UTC HH:MM, as the template writes times. */
function hhmm(at: string): string {
  return at.slice(11, 16);
}

function duration(minutes: number | undefined): string {
  if (minutes === undefined) return 'still open';
  return minutes < 60 ? `${minutes} minutes` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function reviewMarkdown(review: Review): string {
  const list = (items: string[], numbered = false) => (items.length ? items.map((item, i) => `${numbered ? `${i + 1}.` : '-'} ${item}`).join('\n') : `- ${TO_FILL}`);
  return [
    `# Post-Incident Review: ${review.title}`,
    '',
    `**Incident:** ${review.title} (${review.workflowId}, runbook ${review.runbook})  `,
    `**Date:** ${review.date}  `,
    `**Duration:** ${duration(review.durationMinutes)}  `,
    `**Severity:** ${review.severity ? review.severity[0]!.toUpperCase() + review.severity.slice(1) : 'none'}`,
    '',
    '**Timeline (UTC):**',
    '',
    ...review.timeline.map((e) => `- ${e.time} - ${e.kind}: ${e.message} (${e.actor})`),
    '',
    '**Root Cause:** (drafted from the findings before the first action; edit it)',
    '',
    list(review.rootCause),
    '',
    '**Impact:**',
    '',
    `- Users affected: ${review.impact.usersAffected}`,
    `- Services impacted: ${review.impact.servicesImpacted.join(', ')}`,
    `- Data loss: ${review.impact.dataLoss}`,
    '',
    '**Resolution:**',
    '',
    list(review.resolution),
    '',
    '**Action Items:**',
    '',
    list(review.actionItems, true),
    '',
    `**Lessons Learned:** ${review.lessonsLearned}`,
    '',
  ].join('\n');
}

// ---- the timeline picture ----------------------------------------------------------------------------------------


/** An SVG of the incident over time: one lane per kind of event, a mark per event, open and resolved as the span. */
export function timelineSvg(review: Review): string {
  const width = 960;
  const laneHeight = 26;
  const left = 130;
  const right = 30;
  const kinds = Object.keys(MARKS).filter((kind) => review.timeline.some((e) => e.kind === kind)) as TimelineKind[];
  const top = 40;
  const height = top + kinds.length * laneHeight + 40;
  const start = Date.parse(review.openedAt);
  const end = Math.max(review.closedAt ? Date.parse(review.closedAt) : start, ...review.timeline.map((e) => Date.parse(e.at)), start + 1_000);
  const x = (at: string) => left + ((Date.parse(at) - start) / (end - start)) * (width - left - right);
  const lanes = kinds.map((kind, i) => {
    const y = top + i * laneHeight + laneHeight / 2;
    const { color, label } = MARKS[kind]!;
    const marks = review.timeline
      .filter((e) => e.kind === kind)
      .map((e) => `<circle class="event ${kind}" cx="${x(e.at).toFixed(1)}" cy="${y}" r="6" fill="${color}"><title>${escapeXml(`${e.time} ${e.kind}: ${e.message}`)}</title></circle>`);
    return [
      `<text x="10" y="${y + 4}" font-size="12" fill="#333">${escapeXml(label)}</text>`,
      `<line x1="${left}" y1="${y}" x2="${width - right}" y2="${y}" stroke="#eee"/>`,
      ...marks,
    ].join('\n');
  });
  const axisY = height - 25;
  const spanEnd = review.closedAt ? x(review.closedAt) : width - right;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="incident-timeline" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(`Timeline of ${review.title}`)}">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="22" font-size="14" font-weight="bold" fill="#111">${escapeXml(`${review.title} — ${review.date}, ${duration(review.durationMinutes)}`)}</text>`,
    `<rect class="open-span" x="${left}" y="${top - 6}" width="${Math.max(1, spanEnd - left).toFixed(1)}" height="${kinds.length * laneHeight + 12}" fill="#d62728" fill-opacity="0.06"/>`,
    ...lanes,
    `<line x1="${left}" y1="${axisY}" x2="${width - right}" y2="${axisY}" stroke="#333"/>`,
    `<text x="${left}" y="${axisY + 16}" font-size="11" fill="#333">${hhmm(review.openedAt)} UTC</text>`,
    `<text x="${width - right}" y="${axisY + 16}" font-size="11" fill="#333" text-anchor="end">${review.closedAt ? `${hhmm(review.closedAt)} resolved` : 'open'}</text>`,
    '</svg>',
  ].join('\n');
}

/** The review as a page: the picture and the Markdown's content, every value escaped. */
export function reviewHtml(review: Review): string {
  const items = (list: string[]) => (list.length ? `<ul>${list.map((i) => `<li>${escapeXml(i)}</li>`).join('')}</ul>` : `<p>${TO_FILL}</p>`);
  return [
    '<!doctype html>',
    `<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(`Post-incident review: ${review.title}`)}</title>`,
    '<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#111}td,th{padding:2px 8px;text-align:left;vertical-align:top}</style></head><body>',
    `<h1>Post-incident review: ${escapeXml(review.title)}</h1>`,
    `<p><b>Incident</b> ${escapeXml(review.workflowId)} (runbook ${escapeXml(review.runbook)}) · <b>Date</b> ${review.date} · <b>Duration</b> ${duration(review.durationMinutes)} · <b>Severity</b> ${escapeXml(review.severity ?? 'none')}</p>`,
    timelineSvg(review),
    '<h2>Timeline (UTC)</h2>',
    `<table class="timeline"><tr><th>Time</th><th>What</th><th>Who</th><th></th></tr>${review.timeline
      .map((e) => `<tr><td>${e.time}</td><td>${e.kind}</td><td>${escapeXml(e.actor)}</td><td>${escapeXml(e.message)}</td></tr>`)
      .join('')}</table>`,
    '<h2>Root cause (draft from the findings)</h2>',
    items(review.rootCause),
    '<h2>Impact</h2>',
    items([`Users affected: ${review.impact.usersAffected}`, `Services impacted: ${review.impact.servicesImpacted.join(', ')}`, `Data loss: ${review.impact.dataLoss}`]),
    '<h2>Resolution</h2>',
    items(review.resolution),
    '<h2>Action items</h2>',
    items(review.actionItems),
    '<h2>Lessons learned</h2>',
    `<p>${review.lessonsLearned}</p>`,
    '</body></html>',
  ].join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);
}

