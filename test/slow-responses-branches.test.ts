// Every branch of the high-response-times runbook in seconds: the real workflow on the time-skipping test server,
// its activities typed stubs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LatencySample, LatencyWait } from '../src/activities/metrics';
import type { TableReport } from '../src/activities/postgres';
import type { ConfigInput } from '../src/config/schema';
import { approveUpdate, rejectUpdate } from '../src/workflows/lifecycle/definitions';
import { timeSkippingIncidents, type ActivityStubs } from './support/timeSkipping';

const incidents = timeSkippingIncidents({ taskQueuePrefix: 'slow-branches', runbook: 'slow-responses', labels: { alertname: 'HighResponseTime', service: 'audit-app' } });
const { observe, outcomeOf, calls } = incidents;

const config: ConfigInput = {
  targets: {
    backend: { container: 'audit-app-backend', healthUrl: 'http://127.0.0.1:9/health', metricsUrl: 'http://127.0.0.1:9/metrics' },
    postgres: { container: 'audit-app-postgres', url: 'postgres://postgres@127.0.0.1:9/audit_app' },
  },
  approvers: { 'create-index': ['erin'], 'scale-backend': ['erin'] },
};

const slow: LatencySample = { windowMs: 15_000, routes: [{ route: '/api/v1/documents', requests: 40, p95: 3.2 }], worstP95Ms: 3200 };
const fast: LatencySample = { windowMs: 15_000, routes: [{ route: '/api/v1/documents', requests: 40, p95: 0.04 }], worstP95Ms: 40 };
const seqScanned: TableReport = {
  hot: [{ table: 'documents', seqScans: 900, seqRowsRead: 9_000_000, indexScans: 0, liveRows: 10_000 }],
  suggestions: [{ table: 'documents', column: 'county', because: 'SELECT * FROM documents WHERE county = $1' }],
};

/** `fixedBy` says which change brings p95 back: the index, the restart, or nothing. */
function stubs({ sample = slow, tables = seqScanned, fixedBy = 'index' as 'index' | 'restart' | 'nothing' } = {}): ActivityStubs {
  let fixed = false;
  const wait = (): LatencyWait => (fixed ? { ...fast, belowThreshold: true, samples: 1 } : { ...slow, belowThreshold: false, samples: 8 });
  return {
    sampleLatency: async () => sample,
    waitForLatency: async () => wait(),
    topQueries: async () => ({ enabled: true, queries: [{ query: 'SELECT * FROM documents WHERE county = $1', calls: 40, meanMs: 3100, maxMs: 4000 }] }),
    inspectTables: async () => tables,
    containerStats: async () => ({ name: 'audit-app-backend', running: true, cpuPercent: 12.5, memoryBytes: 50 * 1_048_576, memoryLimitBytes: 1024 * 1_048_576 }),
    vacuumAnalyze: async ({ tables: names }) => ({ vacuumed: names }),
    createIndex: async ({ table, column }) => {
      fixed = fixedBy === 'index';
      return { index: `idx_${table}_${column}`, created: true };
    },
    restartContainer: async () => {
      fixed = fixedBy === 'restart';
    },
  };
}

describe('High Response Times runbook, branch by branch (time-skipping server, stub activities)', { timeout: 120_000 }, () => {
  before(() => incidents.start());
  after(() => incidents.stop());

  test('a slow database: VACUUM ANALYZE, then the suggested index once approved, p95 is verified back under 2 s, and the prevention notes become follow-ups', async () => {
    const incident = await incidents.startIncident({}, config, stubs());
    const waiting = await observe(incident);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.question), ['Create an index on documents(county) concurrently? Slow statement: SELECT * FROM documents WHERE county = $1']);
    assert.equal(calls(incident).vacuumAnalyze, 1, 'VACUUM needs no approval');
    assert.equal(calls(incident).createIndex, undefined, 'no index before approval');
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'create-index', by: 'erin' }] });
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.ok(outcome.timeline.some((e) => e.message === 'Created index idx_documents_county concurrently.'));
    assert.ok(outcome.timeline.some((e) => e.message === 'p95 is 40 ms, under 2000 ms (1 window(s)).'));
    assert.equal(calls(incident).restartContainer, undefined);
    // The section's Prevention notes, as the closed incident's follow-ups.
    assert.deepEqual((await observe(incident)).followUps, [
      'Regular database maintenance (VACUUM, ANALYZE).',
      'Add indexes for common queries.',
      'Implement query result caching.',
      'Use database read replicas for heavy loads.',
    ]);
  });

  test('an index that does not help leads to the restart question; approved, the restart brings p95 back', async () => {
    const incident = await incidents.startIncident({}, config, stubs({ fixedBy: 'restart' }));
    await observe(incident);
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'create-index', by: 'erin' }] });
    const waiting = await observe(incident);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['scale-backend']);
    await incident.executeUpdate(approveUpdate, { args: [{ step: 'scale-backend', by: 'erin' }] });
    assert.equal((await outcomeOf(incident)).resolution, 'remediated');
    assert.equal(calls(incident).restartContainer, 1);
  });

  test('a slow API with a healthy database goes straight to the restart question; rejected, nothing restarts', async () => {
    const incident = await incidents.startIncident({}, config, stubs({ tables: { hot: [], suggestions: [] }, fixedBy: 'restart' }));
    const waiting = await observe(incident);
    assert.deepEqual(waiting.pendingApprovals.map((p) => p.kind), ['scale-backend']);
    assert.equal(calls(incident).vacuumAnalyze, undefined);
    await incident.executeUpdate(rejectUpdate, { args: [{ step: 'scale-backend', by: 'erin' }] });
    assert.equal((await observe(incident)).phase, 'needs-human');
    assert.equal(calls(incident).restartContainer, undefined);
    await incident.terminate('test over');
  });

  test('p95 already under the threshold and no sequential scans: nothing is changed', async () => {
    const incident = await incidents.startIncident({}, config, stubs({ sample: fast, tables: { hot: [], suggestions: [] } }));
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.ok(!outcome.timeline.some((e) => e.kind === 'action' || e.kind === 'approval-requested'));
  });

  test('the threshold is the policy: 5 s lets a 3.2 s p95 pass (policies.slow-responses.p95ThresholdMs)', async () => {
    const incident = await incidents.startIncident({}, { ...config, policies: { 'slow-responses': { p95ThresholdMs: 5000 } } }, stubs({ tables: { hot: [], suggestions: [] } }));
    const outcome = await outcomeOf(incident);
    assert.equal(outcome.resolution, 'remediated');
    assert.equal(calls(incident).restartContainer, undefined);
  });
});
