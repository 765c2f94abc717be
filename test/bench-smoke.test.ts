/**
 * `npm run bench -- --quick` as a smoke run, so the bench cannot rot: it runs every row end to end with tiny sizes and
 * writes its JSON. Only what must hold at any size is checked (one incident per fingerprint, none lost, every incident
 * closed after a worker's SIGKILL); speed is the full bench's business, never a test's.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Row } from '../bench/rows';

test('the bench in its quick mode runs every row, keeps one incident per fingerprint through a storm and a worker SIGKILL, remediates API-down and backfills every record through a worker SIGKILL', { timeout: 600_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'runbooks-bench-smoke-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const json = path.join(dir, 'bench.json');
  const tsx = require.resolve('tsx/cli');
  const { stdout } = await promisify(execFile)(process.execPath, [tsx, path.resolve(__dirname, '../bench/main.ts'), '--quick', '--json', json], { maxBuffer: 16 * 1024 * 1024 });
  const { rows, quick } = JSON.parse(readFileSync(json, 'utf8')) as { rows: Row[]; quick: boolean };

  assert.equal(quick, true);
  assert.deepEqual(
    rows.map((r) => r.row.split(' (')[0]!.split(':')[0]),
    ['alert ingestion', 'alert storm', 'open incidents', 'API-down MTTR', 'backfill', 'alert ingestion', 'scale-out'],
  );
  for (const row of rows) {
    assert.ok(stdout.includes(`| ${row.row} |`), `the table prints ${row.row}`);
    assert.ok(row.ratio === null || Number.isFinite(row.ratio), `${row.row}: ratio ${row.ratio}`);
  }
  for (const storm of [rows[1]!, rows[6]!]) {
    assert.equal(storm.figures.incidents, storm.figures.fingerprints, `${storm.row}: one incident per fingerprint`);
    assert.equal(storm.figures.lost, 0, storm.row);
    assert.equal(storm.figures.duplicates, 0, storm.row);
    assert.equal(storm.figures.notSignalled, 0, storm.row);
    assert.equal(storm.figures.errors, 0, storm.row);
  }
  assert.equal(rows[6]!.figures.stillRunning, 0, 'the surviving worker closed every incident');
  assert.ok(Number(rows[3]!.figures.oursSeconds) > 0, 'the API-down incident was remediated (the row throws otherwise)');
  assert.equal(rows[4]!.figures.everyRecordOnce, 'true', 'after the worker SIGKILL every record of the backfill is in documents exactly once');
  assert.equal(rows[0]!.figures.errors, 0);
});
