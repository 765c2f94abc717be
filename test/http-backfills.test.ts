/**
 * The backfill endpoints against a real Temporal and a real worker: who may start one (scope `operations`, the
 * token's name recorded as who asked), bad bodies named, a second start refused naming the running one, and the
 * decisions on a chunk that fails for good (its ETL container does not exist: the failure is permanent at once).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { BackfillView } from '../src/backfills/operations';
import type { Config } from '../src/config/schema';
import { buildHttpServer } from '../src/http/server';
import { testConfig, tokenHash } from './support/config';
import { terminateAll } from './support/incidents';
import { eventually } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });
const tokens = { alertmanager: `am-${randomBytes(8).toString('hex')}`, erin: `erin-${randomBytes(8).toString('hex')}`, dana: `dana-${randomBytes(8).toString('hex')}` };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('backfill endpoints against a real Temporal', () => {
  let config: Config;
  let worker: RunningWorker;
  let app: FastifyInstance;
  const container = `no-such-etl-${randomBytes(3).toString('hex')}`;
  const workflowId = `backfill-${container}`;

  const post = (url: string, body: unknown, token = tokens.erin) =>
    app.inject({ method: 'POST', url, headers: { ...bearer(token), 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  const status = async () => (await app.inject({ method: 'GET', url: `/backfills/${workflowId}`, headers: bearer(tokens.erin) })).json() as BackfillView;

  before(async () => {
    config = testConfig({
      targets: { etl: { container } },
      backfill: { counties: ['Kisumu', 'Nairobi'] },
      tokens: [
        { name: 'alertmanager', sha256: tokenHash(tokens.alertmanager), scopes: ['alerts'] },
        { name: 'erin', sha256: tokenHash(tokens.erin), scopes: ['operations'] },
        { name: 'dana', sha256: tokenHash(tokens.dana), scopes: ['operations'] },
      ],
    });
    worker = await startWorker(config, { logLevel: 'error' });
    app = await buildHttpServer({ config, client: worker.client, logger });
  });

  after(async () => {
    await app?.close();
    if (worker) {
      await terminateAll(worker.client, [workflowId]);
      await worker.stop();
    }
  });

  test('starting needs a token with the operations scope, and a bad body is refused naming the field', async () => {
    assert.equal((await app.inject({ method: 'POST', url: '/backfills', payload: { from: 2024 } })).statusCode, 401);
    assert.equal((await post('/backfills', { from: 2024 }, tokens.alertmanager)).statusCode, 403);
    const notAYear = await post('/backfills', { from: 'last year' });
    assert.equal(notAYear.statusCode, 400);
    assert.match(notAYear.body, /from/);
    const backwards = await post('/backfills', { from: 2024, to: 2020 });
    assert.equal(backwards.statusCode, 400);
    assert.match(backwards.body, /to: `from` must not be after `to`/);
    const unknown = await post('/backfills', { from: 2024, counties: ['Atlantis'] });
    assert.equal(unknown.statusCode, 400);
    assert.match(unknown.body, /unknown county: Atlantis/);
  });

  test("a start records the token's name; a second start while it runs is refused with 409 naming it", async () => {
    const started = await post('/backfills', { from: 2024, counties: ['Kisumu'] });
    assert.equal(started.statusCode, 201, started.body);
    const body = started.json() as { workflowId: string; status: BackfillView };
    assert.equal(body.workflowId, workflowId);
    assert.equal(body.status.request.by, 'erin');
    assert.equal(body.status.chunksTotal, 1);

    const again = await post('/backfills', { from: 2020, to: 2021 }, tokens.dana);
    assert.equal(again.statusCode, 409, again.body);
    assert.match(again.json<{ error: string }>().error, new RegExp(`a backfill is already running on ${container}: ${workflowId} \\(2024–2024, 0 of 1 chunk\\(s\\) done, \\S+, started by erin\\)`));
  });

  test('a chunk that fails for good waits for a decision: retry-chunk and skip-chunk over HTTP, then 409 once it has finished', async () => {
    const waiting = await eventually('the chunk to wait for a human', async () => {
      const view = await status();
      return view.phase === 'waiting-for-human' ? view : undefined;
    });
    assert.deepEqual(waiting.current, { county: 'Kisumu', year: 2024 });
    assert.match(waiting.failure ?? '', new RegExp(container));

    assert.equal((await post(`/backfills/${workflowId}/pause`, {})).statusCode, 200, 'pausing while a chunk waits is allowed');
    assert.equal((await post(`/backfills/${workflowId}/resume`, {})).statusCode, 200);
    const retried = await post(`/backfills/${workflowId}/retry-chunk`, { reason: 'container fixed?' });
    assert.equal(retried.statusCode, 200, retried.body);
    await eventually('the retried chunk to fail again', async () => ((await status()).phase === 'waiting-for-human' && (await status()).log.some((e) => e.message.startsWith('Retrying')) ? true : undefined));
    const skipped = await post(`/backfills/${workflowId}/skip-chunk`, { reason: 'no such container here' }, tokens.dana);
    assert.equal(skipped.statusCode, 403, 'dana neither started it nor is a decider');
    assert.equal((await post(`/backfills/${workflowId}/skip-chunk`, { reason: 'no such container here' })).statusCode, 200);

    const done = await eventually('the backfill to finish', async () => {
      const view = await status();
      return view.phase === 'done' ? view : undefined;
    });
    assert.deepEqual(done.skipped, [{ county: 'Kisumu', year: 2024 }]);
    assert.equal((await post(`/backfills/${workflowId}/cancel`, {})).statusCode, 409);
  });
});
