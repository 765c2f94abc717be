import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { stringify } from 'yaml';
import type { Config } from '../src/config/schema';
import { buildHttpServer } from '../src/http/server';
import { freePort } from './harness/util';
import { dropAuditSchema } from './support/audit';
import { testConfig, tokenHash } from './support/config';
import { everyContactOn, outcomeOf } from './support/incidents';
import { requireEnv } from './support/env';
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

/** A real Prometheus Alertmanager 0.25 whose only receiver is our webhook. */
async function startAlertmanager(webhookUrl: string): Promise<{ url: string; process: ChildProcess; dir: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'runbooks-am-'));
  const configFile = path.join(dir, 'alertmanager.yml');
  writeFileSync(
    configFile,
    stringify({
      route: { receiver: 'runbooks', group_by: ['alertname', 'service'], group_wait: '1s', group_interval: '2s', repeat_interval: '1h' },
      receivers: [
        {
          name: 'runbooks',
          webhook_configs: [{ url: webhookUrl, send_resolved: true, http_config: { authorization: { credentials: TOKEN } } }],
        },
      ],
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    requireEnv('ALERTMANAGER_BIN'),
    [`--config.file=${configFile}`, `--storage.path=${dir}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await waitFor('Alertmanager to answer', async () => ((await fetch(`${url}/-/ready`)).ok ? true : undefined));
  return { url, process: child, dir };
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  return exited;
}

function amtool(alertmanagerUrl: string, args: string[]): Promise<unknown> {
  return promisify(execFile)(requireEnv('AMTOOL_BIN'), [...args, `--alertmanager.url=${alertmanagerUrl}`]);
}

describe('a real Alertmanager posting to the webhook', () => {
  let config: Config;
  let worker: RunningWorker;
  let app: FastifyInstance;
  let door: Awaited<ReturnType<typeof temporalDoor>>;
  let alertmanager: Awaited<ReturnType<typeof startAlertmanager>>;
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
    alertmanager = await startAlertmanager(`http://127.0.0.1:${port}/alerts`);
  });

  after(async () => {
    // Alertmanager writes its snapshot on the way out: remove its directory only once it has exited.
    if (alertmanager) await stopProcess(alertmanager.process);
    await app?.close();
    await door?.close();
    await new Promise((r) => setTimeout(r, 5_500)); // let the client's last retry settle before closing it
    await webhookClient?.close().catch(() => undefined);
    await worker?.stop();
    await dropAuditSchema(config);
    if (alertmanager) rmSync(alertmanager.dir, { recursive: true, force: true });
  });

  test('an alert fired while Temporal is unreachable is retried by Alertmanager and starts one incident once it is back; its resolution closes it', { timeout: 120_000 }, async () => {
    await amtool(alertmanager.url, ['alert', 'add', `alertname=${alertname}`, 'service=etl', 'severity=warning', '--annotation=summary=disk almost full']);

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

    await amtool(alertmanager.url, ['alert', 'add', `alertname=${alertname}`, 'service=etl', 'severity=warning', '--annotation=summary=disk almost full', `--end=${new Date(Date.now() - 1000).toISOString()}`]);
    const outcome = await outcomeOf(worker.client, started.workflowId);
    assert.equal(outcome.resolution, 'alert-resolved');
    const runs: string[] = [];
    for await (const execution of worker.client.workflow.list({ query })) runs.push(execution.runId);
    assert.equal(runs.length, 1, 'retries and re-sends never opened a second incident');
  });
});
