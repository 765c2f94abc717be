/**
 * The audit trail's activity against a real Postgres: however often Temporal retries it (a lost reply, an attempt
 * timed out while still running, a later batch overlapping an earlier one), each timeline event is stored exactly
 * once, and the retry succeeds instead of failing forever.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Pool } from 'pg';
import { createAuditActivities, type IncidentRecord } from '../src/activities/audit';
import { migrateAuditSchema } from '../src/audit/migrate';
import type { Config } from '../src/config/schema';
import type { TimelineEvent } from '../src/incidents/model';
import { dropAuditSchema } from './support/audit';
import { testConfig } from './support/config';

interface StoredEvent {
  seq: number;
  at: Date;
  kind: string;
  actor: string;
  message: string;
  data: Record<string, unknown> | null;
}

describe('the audit trail activity (recordTimeline) against a real Postgres', () => {
  let config: Config;
  let pool: Pool;
  let schema: string;

  before(async () => {
    config = testConfig();
    schema = config.audit.schema;
    await migrateAuditSchema(config.audit.databaseUrl, schema);
    pool = new Pool({ connectionString: config.audit.databaseUrl, max: 4 });
  });

  after(async () => {
    await pool?.end();
    if (config) await dropAuditSchema(config);
  });

  /** The one place this file calls the activity, as the worker would on each attempt. */
  function recordTimeline(incident: IncidentRecord, events: TimelineEvent[]): Promise<void> {
    return createAuditActivities(pool, schema).recordTimeline({ incident, events });
  }

  function newIncident(changes: Partial<IncidentRecord> = {}): IncidentRecord {
    const runId = randomUUID();
    return {
      workflowId: `APIDown-${runId.slice(0, 8)}`,
      runId,
      runbook: 'api-down',
      trigger: 'alert',
      triggeredBy: 'a1ebaf6b84df2c5a',
      alertname: 'APIDown',
      fingerprint: 'a1ebaf6b84df2c5a',
      severity: 'critical',
      service: 'audit-app-backend',
      phase: 'investigating',
      openedAt: '2026-11-27T13:24:01.312Z',
      ...changes,
    };
  }

  function events(...seqs: number[]): TimelineEvent[] {
    return seqs.map((seq) => ({
      seq,
      at: new Date(Date.parse('2026-11-27T13:24:01.312Z') + seq * 1_000).toISOString(),
      kind: seq === 0 ? 'detected' : 'finding',
      actor: seq === 0 ? 'alertmanager' : 'runbooks',
      message: `event ${seq}`,
      ...(seq % 2 === 0 ? { data: { seq, note: 'with data' } } : {}),
    }));
  }

  async function stored(runId: string): Promise<StoredEvent[]> {
    const { rows } = await pool.query<StoredEvent>(
      `SELECT seq, at, kind, actor, message, data FROM "${schema}".incident_events WHERE run_id = $1 ORDER BY seq, at`,
      [runId],
    );
    return rows;
  }

  async function incidentRows(runId: string): Promise<{ phase: string; closed_at: Date | null }[]> {
    const { rows } = await pool.query<{ phase: string; closed_at: Date | null }>(`SELECT phase, closed_at FROM "${schema}".incidents WHERE run_id = $1`, [runId]);
    return rows;
  }

  /** Exactly the given events, each once, as they were sent. */
  async function assertStoredOnce(runId: string, expected: TimelineEvent[]): Promise<void> {
    const rows = await stored(runId);
    assert.deepEqual(
      rows.map((r) => r.seq),
      expected.map((e) => e.seq),
      'each event stored exactly once',
    );
    assert.deepEqual(
      rows.map((r) => ({ seq: r.seq, at: r.at.toISOString(), kind: r.kind, actor: r.actor, message: r.message, data: r.data ?? undefined })),
      expected.map((e) => ({ seq: e.seq, at: e.at, kind: e.kind, actor: e.actor, message: e.message, data: e.data })),
    );
  }

  test('the same incident and events written twice (a retry after a lost reply): the retry succeeds, each event is stored once', async () => {
    const incident = newIncident();
    const batch = events(0, 1, 2);

    await recordTimeline(incident, batch);
    await recordTimeline(incident, batch);

    await assertStoredOnce(incident.runId, batch);
    assert.equal((await incidentRows(incident.runId)).length, 1, 'one incident row');
  });

  test('a batch overlapping one already written stores only the new events, and updates the incident row', async () => {
    const incident = newIncident();
    await recordTimeline(incident, events(0, 1, 2));

    const closedAt = '2026-11-27T13:30:00.000Z';
    await recordTimeline({ ...incident, phase: 'resolved', closedAt }, events(1, 2, 3, 4));

    await assertStoredOnce(incident.runId, events(0, 1, 2, 3, 4));
    assert.deepEqual(await incidentRows(incident.runId), [{ phase: 'resolved', closed_at: new Date(closedAt) }]);
  });

  test('a retry that runs while the first attempt is still writing (it timed out but did not die): both succeed, each event once', async () => {
    const incident = newIncident();
    const batch = events(0, 1, 2, 3, 4, 5);

    const attempts = await Promise.allSettled([recordTimeline(incident, batch), recordTimeline(incident, batch), recordTimeline(incident, batch)]);

    assert.deepEqual(
      attempts.map((a) => (a.status === 'rejected' ? `rejected: ${(a.reason as Error).message}` : a.status)),
      ['fulfilled', 'fulfilled', 'fulfilled'],
    );
    await assertStoredOnce(incident.runId, batch);
  });

  test('incidents do not share events: the same seq in another run is another event', async () => {
    const first = newIncident();
    const second = newIncident({ workflowId: first.workflowId });
    await recordTimeline(first, events(0, 1));
    await recordTimeline(second, events(0, 1));
    await recordTimeline(second, events(0, 1));

    await assertStoredOnce(first.runId, events(0, 1));
    await assertStoredOnce(second.runId, events(0, 1));
  });
});

describe('the audit schema migration', () => {
  test('workers that start together take turns at the migration lock instead of failing', async () => {
    const configs = [testConfig(), testConfig(), testConfig()];
    try {
      await Promise.all(configs.map((c) => migrateAuditSchema(c.audit.databaseUrl, c.audit.schema)));
      await Promise.all(configs.map((c) => migrateAuditSchema(c.audit.databaseUrl, c.audit.schema)));
    } finally {
      await Promise.all(configs.map((c) => dropAuditSchema(c)));
    }
  });
});
