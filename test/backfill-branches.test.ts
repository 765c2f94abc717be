// The backfill workflow's branches on the time-skipping test server, its one activity (loadChunk) a typed stub:
// the order of the chunks, a chunk that fails for good (skip, retry, nobody answers), pause / resume / cancel,
// continue-as-new carrying the progress, and the pace (records/s, ETA) its status and current details show.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { workflowMetadataQuery } from '@temporalio/workflow';
import type { ChunkRef, ChunkResult } from '../src/activities/etl';
import { chunkName, paceOf, type BackfillInput, type BackfillOutcome, type BackfillStatus } from '../src/backfills/model';
import { parseConfig } from '../src/config/load';
import { backfillInput } from '../src/intake/backfill';
import { ActivityErrorType } from '../src/runbooks/errorTypes';
import type { backfill } from '../src/workflows/backfill';
import { backfillStatusQuery, backfillUpdates } from '../src/workflows/backfill/messages';
import { timeSkippingIncidents } from './support/timeSkipping';

const suite = timeSkippingIncidents({ taskQueuePrefix: 'backfill-branches', labels: { alertname: 'Unused' } });
const config = parseConfig({
  targets: { etl: { container: 'etl' } },
  backfill: { counties: ['Kisumu', 'Nairobi'], answerWithin: '30m', deciders: ['dana'] },
  escalation: { high: { responseTime: '1h', escalateTo: ['oncall', 'team-lead'] } },
});

type Backfill = WorkflowHandle<typeof backfill>;
const input = (from: number, to: number, overrides: Partial<BackfillInput['policy']> = {}): BackfillInput => {
  const made = backfillInput({ from, to, by: 'erin' }, config);
  return { ...made, policy: { ...made.policy, ...overrides } };
};
const loaded = (ref: ChunkRef): ChunkResult => ({ county: ref.county, year: ref.year, from: 1, written: 40, records: 40 });

describe('backfill, on the time-skipping test server', () => {
  before(() => suite.start());
  after(() => suite.stop());

  async function status(handle: Backfill): Promise<BackfillStatus> {
    await suite.settle(handle);
    return handle.query(backfillStatusQuery);
  }
  const result = (handle: Backfill): Promise<BackfillOutcome> => handle.result();
  async function until(what: string, predicate: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(predicate(), what);
  }

  test('loads every chunk of the range year by year, county by county, and reports what it wrote', async () => {
    const chunks: string[] = [];
    const handle = await suite.startWorkflow<typeof backfill>('backfill', input(2022, 2023), {
      loadChunk: async (ref) => (chunks.push(`${ref.county} ${ref.year}`), loaded(ref)),
    });
    assert.deepEqual(await result(handle), { cancelled: false, chunksDone: 4, recordsWritten: 160, skipped: [], runs: 1 });
    assert.deepEqual(chunks, ['Kisumu 2022', 'Nairobi 2022', 'Kisumu 2023', 'Nairobi 2023']);
    const done = await handle.query(backfillStatusQuery);
    assert.equal(done.phase, 'done');
    assert.match(done.log.at(-1)!.message, /^Done: 4 of 4 chunk\(s\), 160 record\(s\) written\.$/);
  });

  test('a chunk that fails for good waits for a human; a non-decider is refused, skip-chunk goes on without it', async () => {
    const handle = await suite.startWorkflow<typeof backfill>('backfill', input(2023, 2023), {
      loadChunk: async (ref) => {
        if (ref.county === 'Kisumu') throw ApplicationFailure.nonRetryable('source format changed: selector "table.audit-reports" matched nothing', ActivityErrorType.etlSourceChanged);
        return loaded(ref);
      },
    });
    const waiting = await status(handle);
    assert.equal(waiting.phase, 'waiting-for-human');
    assert.deepEqual(waiting.current, { county: 'Kisumu', year: 2023 });
    assert.match(waiting.failure ?? '', /selector "table\.audit-reports" matched nothing/);
    const page = suite.pages.find((p) => p.workflowId === handle.workflowId);
    assert.deepEqual(page?.contacts, ['oncall']);
    assert.match(page!.text, /chunk Kisumu 2023 failed for good .* `runbooks backfill retry-chunk` or `skip-chunk`/);

    await assert.rejects(handle.executeUpdate(backfillUpdates.skipChunk, { args: [{ by: 'mallory' }] }), (err: unknown) => {
      assert.ok(err instanceof WorkflowUpdateFailedError);
      assert.equal((err.cause as ApplicationFailure).type, 'NotADecider');
      return true;
    });
    await handle.executeUpdate(backfillUpdates.skipChunk, { args: [{ by: 'dana', reason: 'fixed by hand' }] });
    const outcome = await result(handle);
    assert.deepEqual(outcome.skipped, [{ county: 'Kisumu', year: 2023 }]);
    assert.equal(outcome.chunksDone, 1);
    const log = (await handle.query(backfillStatusQuery)).log.map((e) => `${e.by}: ${e.message}`);
    assert.ok(log.includes('dana: Skipping the failed chunk (fixed by hand).'), log.join('\n'));
  });

  test('retry-chunk by whoever started the backfill loads the failed chunk again', async () => {
    let attempts = 0;
    const handle = await suite.startWorkflow<typeof backfill>('backfill', input(2023, 2023), {
      loadChunk: async (ref) => {
        if (ref.county === 'Kisumu' && ++attempts === 1) throw ApplicationFailure.nonRetryable('disk full: ENOSPC', ActivityErrorType.etlDiskFull);
        return loaded(ref);
      },
    });
    assert.equal((await status(handle)).phase, 'waiting-for-human');
    await assert.rejects(handle.executeUpdate(backfillUpdates.resume, { args: [{ by: 'erin' }] }), (err: Error) => /it is not paused/.test(String(err.cause)));
    await handle.executeUpdate(backfillUpdates.retryChunk, { args: [{ by: 'erin' }] });
    const outcome = await result(handle);
    assert.equal(attempts, 2);
    assert.deepEqual({ chunksDone: outcome.chunksDone, skipped: outcome.skipped }, { chunksDone: 2, skipped: [] });
  });

  test('when nobody answers a failed chunk within backfill.answerWithin, the next contact is told', async () => {
    const handle = await suite.startWorkflow<typeof backfill>('backfill', input(2023, 2023), {
      loadChunk: async () => {
        throw ApplicationFailure.nonRetryable('source format changed', ActivityErrorType.etlSourceChanged);
      },
    });
    await status(handle);
    const told = () => suite.pages.filter((p) => p.workflowId === handle.workflowId).map((p) => p.contacts.join());
    assert.deepEqual(told(), ['oncall']);
    await suite.env.sleep('31m');
    const after = await status(handle);
    assert.deepEqual(told(), ['oncall', 'team-lead']);
    assert.ok(after.log.some((e) => e.message === 'Nobody answered within 30 min: telling team-lead.'));
    await handle.executeUpdate(backfillUpdates.cancel, { args: [{ by: 'erin' }] });
    assert.equal((await result(handle)).cancelled, true);
  });

  test('pause: no chunk starts until resume; cancel stops after the current chunk and says what was written', async () => {
    const started: string[] = [];
    const gates = new Map<string, () => void>();
    const handle = await suite.startWorkflow<typeof backfill>('backfill', input(2021, 2023), {
      loadChunk: (ref) =>
        new Promise((resolve) => {
          started.push(chunkName(ref));
          gates.set(chunkName(ref), () => resolve(loaded(ref)));
        }),
    });
    await until('the first chunk starts', () => gates.has('Kisumu 2021'));
    const paused = await handle.executeUpdate(backfillUpdates.pause, { args: [{ by: 'erin' }] });
    assert.equal(paused.phase, 'paused');
    gates.get('Kisumu 2021')!();
    const whilePaused = await status(handle);
    assert.deepEqual(started, ['Kisumu 2021'], 'nothing starts while paused');
    assert.equal(whilePaused.chunksDone, 1);

    await handle.executeUpdate(backfillUpdates.resume, { args: [{ by: 'erin' }] });
    await until('the second chunk starts', () => gates.has('Nairobi 2021'));
    await handle.executeUpdate(backfillUpdates.cancel, { args: [{ by: 'erin', reason: 'wrong range' }] });
    gates.get('Nairobi 2021')!();
    const outcome = await result(handle);
    assert.deepEqual(outcome, { cancelled: true, chunksDone: 2, recordsWritten: 80, skipped: [], runs: 1 });
    assert.deepEqual(started, ['Kisumu 2021', 'Nairobi 2021'], 'cancel stops after the current chunk');
    const final = await handle.query(backfillStatusQuery);
    assert.equal(final.phase, 'cancelled');
    assert.equal(final.log.at(-1)!.message, 'Cancelled: 2 of 6 chunk(s), 80 record(s) written.');
  });

  test('its current details show the records written of ≈ the total, records/s and an ETA, from the chunks loaded by workflow time', async () => {
    const gates = new Map<string, () => void>();
    const handle = await suite.startWorkflow<typeof backfill>('backfill', input(2023, 2024), {
      loadChunk: (ref) => new Promise((resolve) => void gates.set(chunkName(ref), () => resolve(loaded(ref)))),
    });
    await until('the first chunk starts', () => gates.has('Kisumu 2023'));
    const LOADING_MS = 300;
    await new Promise((resolve) => setTimeout(resolve, LOADING_MS));
    gates.get('Kisumu 2023')!();
    await until('the second chunk starts', () => gates.has('Nairobi 2023'));

    const status = await handle.query(backfillStatusQuery);
    assert.equal(status.recordsPerChunk, 40);
    assert.ok(status.loadingMs >= LOADING_MS, `the first chunk took ${status.loadingMs} ms of workflow time`);
    assert.ok(status.currentSince, 'the running chunk says when it started');
    const { currentDetails } = (await handle.query(workflowMetadataQuery)) as { currentDetails: string };
    const perSecond = Math.round((40 / (status.loadingMs / 1000)) * 10) / 10;
    assert.match(currentDetails, new RegExp(`^\\*\\*running\\*\\* — 1 of 4 chunk\\(s\\) \\(25%\\), 40 of ≈160 record\\(s\\) written, ${perSecond} records/s over 1 chunk\\(s\\) loaded, ETA \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z$`, 'm'));
    assert.match(currentDetails, new RegExp(`^Loading: Nairobi 2023 since ${status.currentSince!.replace(/[.]/g, '\\.')}; its cursor .* heartbeat$`, 'm'));
    for (const chunk of ['Nairobi 2023', 'Kisumu 2024', 'Nairobi 2024']) {
      await until(`${chunk} starts`, () => gates.has(chunk));
      gates.get(chunk)!();
    }
    assert.equal((await result(handle)).recordsWritten, 160);
    const { currentDetails: done } = (await handle.query(workflowMetadataQuery)) as { currentDetails: string };
    assert.match(done, /^\*\*done\*\* — 4 of 4 chunk\(s\) \(100%\), 160 of 160 record\(s\) written, [\d.]+ records\/s over 4 chunk\(s\) loaded$/m);
  });

  test('a long range continues as new every chunksPerRun chunks, and the progress carries across runs', async () => {
    const handle = await suite.startWorkflow<typeof backfill>('backfill', input(2020, 2022, { chunksPerRun: 2 }), { loadChunk: async (ref) => loaded(ref) });
    const outcome = await result(handle);
    assert.deepEqual(outcome, { cancelled: false, chunksDone: 6, recordsWritten: 240, skipped: [], runs: 3 });
    const final = await handle.query(backfillStatusQuery);
    assert.equal(final.runs, 3);
    assert.equal(final.log[0]!.message, 'Backfill of 2020–2022 requested: 6 chunk(s).', 'the log carries across runs');
  });
});

describe('the pace of a backfill (records/s, total, ETA), at a fixed now', () => {
  const T0 = Date.parse('2026-11-28T10:00:00.000Z');
  // 4 chunks: 2 loaded (80 records in 10 s of loading), the third running since T0.
  const facts = { chunksTotal: 4, chunksDone: 2, recordsWritten: 80, skipped: [], loadingMs: 10_000, recordsPerChunk: 40, currentSince: new Date(T0).toISOString() };

  test('between chunks: the records of the chunks loaded over their loading time, the chunks left counted at the latest one\'s records', () => {
    assert.deepEqual(paceOf(facts, T0 + 60_000), { recordsSoFar: 80, recordsTotal: 160, recordsTotalEstimated: true, recordsPerSecond: 8, etaSeconds: 10 });
  });

  test('with the running chunk\'s heartbeat: its records so far and its time up to now count, and its own record count', () => {
    // 80 + 20 records in 10 s + 2.5 s: 8/s; the running county-year has 50 records: 80 + 2 × 50 in all, 80 left.
    assert.deepEqual(paceOf(facts, T0 + 2_500, { lastRecord: 20, records: 50 }), { recordsSoFar: 100, recordsTotal: 180, recordsTotalEstimated: true, recordsPerSecond: 8, etaSeconds: 10 });
  });

  test('a chunk waiting for a human adds no loading time; skipped chunks are not counted in the total', () => {
    const waiting = { ...facts, failure: 'source changed', skipped: [{ county: 'Kisumu', year: 2026 }] };
    assert.deepEqual(paceOf(waiting, T0 + 3_600_000), { recordsSoFar: 80, recordsTotal: 120, recordsTotalEstimated: true, recordsPerSecond: 8, etaSeconds: 5 });
  });

  test('before anything is loaded there is no total and no ETA; once every chunk is done the total is exact', () => {
    assert.deepEqual(paceOf({ ...facts, chunksDone: 0, recordsWritten: 0, loadingMs: 0, recordsPerChunk: undefined }, T0 + 1_000), { recordsSoFar: 0, recordsTotalEstimated: true, recordsPerSecond: 0 });
    assert.deepEqual(paceOf({ ...facts, chunksDone: 4, recordsWritten: 160, loadingMs: 20_000 }, T0), { recordsSoFar: 160, recordsTotal: 160, recordsTotalEstimated: false, recordsPerSecond: 8, etaSeconds: 0 });
  });
});
