import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { HISTORIES_DIR } from './support/histories';

const histories = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));

describe('recorded incident histories', () => {
  test('are present (record them with RECORD_HISTORIES=1 npm test)', () => {
    assert.ok(histories.length >= 3, `expected recorded histories in ${HISTORIES_DIR}, found ${histories.length}`);
  });

  for (const file of histories) {
    test(`${path.basename(file, '.json')} replays deterministically against the current workflow code`, async () => {
      const history = JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8'));
      const bundle = process.env.RUNBOOKS_WORKFLOW_BUNDLE;
      await Worker.runReplayHistory(
        bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('../src/workflows') },
        history,
        file,
      );
    });
  }
});
