/**
 * The HTTP API under fuzzed input (bench/fuzz.ts): a few hundred generated requests — valid, near-valid and hostile —
 * against the real webhook and incident actions on a real Temporal with a worker. `npm run chaos` runs 10,000.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { formatFuzzReport, fuzzHttp } from '../bench/fuzz';
import { terminateAll } from '../bench/stack';
import type { Config } from '../src/config/schema';
import { buildHttpServer } from '../src/http/server';
import { testConfig, tokenHash } from './support/config';
import { alert, fire } from './support/incidents';
import { startWorker, type RunningWorker } from './support/worker';

const RUNS = 400;
/** Fixed, so a failure here fails the same way on every machine; RUNBOOKS_FUZZ_SEED tries another. */
const SEED = Number(process.env.RUNBOOKS_FUZZ_SEED ?? 20261128);

describe('the HTTP API under fuzzed input', () => {
  let config: Config;
  let worker: RunningWorker;
  let app: FastifyInstance;

  before(async () => {
    config = testConfig({
      tokens: [
        { name: 'alertmanager', sha256: tokenHash('alerts-token'), scopes: ['alerts'] },
        { name: 'alice', sha256: tokenHash('incidents-token'), scopes: ['incidents'] },
      ],
    });
    worker = await startWorker(config);
    app = await buildHttpServer({ config, client: worker.client, logger: pino({ level: 'silent' }) });
  });

  after(async () => {
    await app?.close();
    if (worker) {
      await terminateAll(worker.client, config.temporal.taskQueue);
      await worker.stop();
    }
  });

  test(`${RUNS} generated requests: no 5xx, valid payloads handled, nothing started by an invalid one, the server still answers`, { timeout: 600_000 }, async () => {
    const incidents = await Promise.all([fire(worker.client, config, alert('APIDown')), fire(worker.client, config, alert('RedisDown'))]);
    const report = await fuzzHttp(
      { app, client: worker.client, taskQueue: config.temporal.taskQueue, alertsToken: 'alerts-token', incidentsToken: 'incidents-token', incidentIds: incidents.map((i) => i.workflowId) },
      { runs: RUNS, seed: SEED },
    );
    console.log(formatFuzzReport(report));

    assert.deepEqual(report.failures, []);
    // The run reached every kind of input and both kinds of answer, so it cannot pass by fuzzing nothing.
    for (const kind of ['valid', 'near-valid', 'deep nesting', 'huge array', 'duplicate keys', 'header games', 'action approve']) {
      assert.ok((report.kinds[kind] ?? 0) > 0, `no "${kind}" request was generated: ${JSON.stringify(report.kinds)}`);
    }
    assert.ok((report.statuses['200'] ?? 0) > 0 && (report.statuses['400'] ?? 0) > 0, JSON.stringify(report.statuses));
    assert.ok(report.incidentsReported > 0);
  });
});
