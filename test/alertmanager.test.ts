import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { Config } from '../src/config/schema';
import { buildHttpServer } from '../src/http/server';
import { freePort } from './harness/util';
import { amtool, startAlertmanager } from './support/alertmanager';
import { dropAuditSchema } from './support/audit';
import type { RunningDaemon } from './support/daemon';
import { testConfig, tokenHash } from './support/config';
import { everyContactOn, outcomeOf } from './support/incidents';
import { waitFor } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

const TOKEN = 's3cret';

/** A TCP door in front of Temporal that the test opens and closes: closed, the webhook cannot reach Temporal. */
async function temporalDoor(target: string): Promise<{ address: string; open(): Promise<void>; close(): Promise<void> }> {
  const [host, port] = target.split(':') as [string, string];
  const listenPort = await freePort();
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  return {
    address: `127.0.0.1:${listenPort}`,
    open: () =>
      new Promise((resolve) => {
        server = createServer((inbound) => {
          const outbound = connect(Number(port), host);
          for (const s of [inbound, outbound]) {
            sockets.add(s);
            s.on('close', () => sockets.delete(s));
            s.on('error', () => undefined);
          }
          inbound.pipe(outbound).pipe(inbound);
        });
        server.listen(listenPort, '127.0.0.1', () => resolve());
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };
}

describe('a real Alertmanager with the shipped config posting to the webhook', () => {
  let config: Config;
  let worker: RunningWorker;
  let app: FastifyInstance;
  let door: Awaited<ReturnType<typeof temporalDoor>>;
  let alertmanager: RunningDaemon;
  let webhookClient: Connection;
  const alertname = `DiskFull${Date.now()}`;

  before(async () => {
    config = testConfig({
      tokens: [{ name: 'alertmanager', sha256: tokenHash(TOKEN), scopes: ['alerts'] }],
      contacts: everyContactOn('log'),
    });
    worker = await startWorker(config);
    door = await temporalDoor(config.temporal.address);
    // The webhook reaches Temporal only through the door, which starts closed.
    webhookClient = Connection.lazy({ address: door.address });
    app = await buildHttpServer({
      config,
      client: new Client({ connection: webhookClient, namespace: config.temporal.namespace }),
      logger: pino({ level: 'silent' }),
    });
    const port = await freePort();
    await app.listen({ host: '127.0.0.1', port });
    alertmanager = await startAlertmanager({ webhookUrl: `http://127.0.0.1:${port}/alerts`, token: TOKEN });
  });

  after(async () => {
    await alertmanager?.stop();
    await app?.close();
    await door?.close();
    await new Promise((r) => setTimeout(r, 5_500)); // let the client's last retry settle before closing it
    await webhookClient?.close().catch(() => undefined);
    await worker?.stop();
    await dropAuditSchema(config);
  });

  test('an alert fired while Temporal is unreachable is retried by Alertmanager and starts one incident once it is back; its resolution closes it', { timeout: 120_000 }, async () => {
    await amtool(['alert', 'add', `alertname=${alertname}`, 'service=etl', 'severity=warning', '--annotation=summary=disk almost full', `--alertmanager.url=${alertmanager.url}`]);

    const metrics = async () => (await app.inject({ method: 'GET', url: '/metrics' })).body;
    await waitFor('the webhook to answer 503 at least once', async () => (/runbooks_alert_failures_total\{reason="unavailable"\} [1-9]/.test(await metrics()) ? true : undefined), 60_000);

    await door.open();
    const query = `AlertName = '${alertname}'`;
    const started = await waitFor(
      'the incident to start',
      async () => {
        for await (const execution of worker.client.workflow.list({ query })) return execution;
        return undefined;
      },
      60_000,
    );
    assert.match(started.workflowId, new RegExp(`^${alertname}-[0-9a-f]{16}$`));

    await amtool(['alert', 'add', `alertname=${alertname}`, 'service=etl', 'severity=warning', '--annotation=summary=disk almost full', `--end=${new Date(Date.now() - 1000).toISOString()}`, `--alertmanager.url=${alertmanager.url}`]);
    const outcome = await outcomeOf(worker.client, started.workflowId);
    assert.equal(outcome.resolution, 'alert-resolved');
    const runs: string[] = [];
    for await (const execution of worker.client.workflow.list({ query })) runs.push(execution.runId);
    assert.equal(runs.length, 1, 'retries and re-sends never opened a second incident');
  });
});
