import { condition } from '@temporalio/workflow';
import { recordTimeline } from '../activityProxies';
import type { Incident } from './incident';

/**
 * Copies the timeline to Postgres as it grows, in batches while a write is in flight, and ends once the
 * closed incident and its last event are written. Runs beside the response so a slow database never
 * holds up remediation.
 */
export async function keepAuditTrail(incident: Incident): Promise<void> {
  let written = 0;
  for (;;) {
    await condition(() => incident.timelineLength > written || incident.closed);
    const record = incident.auditRecord();
    const events = incident.eventsFrom(written);
    await recordTimeline.executeWithOptions({ summary: `Audit: ${events.length} event(s)` }, [{ incident: record, events }]);
    written += events.length;
    if (record.closedAt !== undefined && written === incident.timelineLength) return;
  }
}
