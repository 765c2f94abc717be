import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { workflowTypes } from '../src/runbooks/catalog';
import { HISTORIES_DIR } from './support/histories';

const histories = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));

describe('recorded incident histories', () => {
  test('exist for every workflow type of the catalog (record them with RECORD_HISTORIES=1 npm test)', () => {
    const recorded = new Set(
      histories.map((file) => JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')).events[0].workflowExecutionStartedEventAttributes.workflowType.name as string),
    );
    for (const type of workflowTypes()) assert.ok(recorded.has(type), `no recorded history of ${type} in ${HISTORIES_DIR}`);
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
