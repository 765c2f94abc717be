import { condition, patched } from '@temporalio/workflow';
import { recordTimeline, recordTimelineLocally } from '../activityProxies';
import type { Incident } from './incident';

/**
 * Copies the timeline to Postgres as it grows, in batches while a write is in flight, and ends once the
 * closed incident and its last event are written. Runs beside the response so a slow database never
 * holds up remediation. Written by a local activity, so the UI's timeline and the history show the runbook's
 * steps rather than a write between each (incidents started before this change write by an activity, and replay so).
 */
export async function keepAuditTrail(incident: Incident): Promise<void> {
  const write = patched('audit-trail-local-activity') ? recordTimelineLocally : (batch: Parameters<typeof recordTimeline>[0]) =>
    recordTimeline.executeWithOptions({ summary: `Audit: ${batch.events.length} event(s)` }, [batch]);
  let written = 0;
  for (;;) {
    await condition(() => incident.timelineLength > written || incident.closed);
    const record = incident.auditRecord();
    const events = incident.eventsFrom(written);
    await write({ incident: record, events });
    written += events.length;
    if (record.closedAt !== undefined && written === incident.timelineLength) return;
  }
}
