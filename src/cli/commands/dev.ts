/**
 * `runbooks dev` (what `npm start` runs): a Temporal dev server (unless TEMPORAL_ADDRESS is set), the worker
 * and the HTTP server in one process, and how to fire a first alert. Ctrl-C stops all of it, in order.
 */
import type { Command } from 'commander';
import type { Config } from '../../config/schema';
import { incidentWorkflowId } from '../../intake/route';
import { createLogger } from '../../logging/logger';
import { createLazyClient } from '../../temporal/client';
import { loadCliConfig, type GlobalOptions } from '../context';
import { CliError, firstLine } from '../errors';
import { quoteArg } from '../format';
import { loadDevTemporal, loadServices } from '../lazy';
import type { DevTemporal } from '../devTemporal';

/** Fixed, so the printed commands stay the same from one start to the next. */
const TEST_ALERT = 'TestAlert';
const TEST_FINGERPRINT = 'ba5eba1100000001';

export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description('local development: Temporal dev server (unless TEMPORAL_ADDRESS is set) + worker + HTTP server; Ctrl-C stops everything')
    .action(async (_options: unknown, command: Command) => {
      const loaded = loadCliConfig(command);
      const { startDevTemporal, waitForTemporal } = loadDevTemporal();
      const { startWorker, startHttpServer, untilStopSignal } = loadServices();
      const logger = createLogger('runbooks', { pretty: process.stdout.isTTY });
      const say = (line: string) => process.stdout.write(`${line}\n`);

      let temporal: DevTemporal | undefined;
      const stopSignal = untilStopSignal(() => temporal?.kill());
      const abort = new AbortController();
      void stopSignal.signal.then((signal) => {
        say(`\n${signal}: stopping…`);
        abort.abort();
      });
      // Stopped in reverse order: HTTP server, worker, client connection, Temporal.
      const stops: Array<{ what: string; stop: () => Promise<void> }> = [];
      const interrupted = () => abort.signal.aborted;

      try {
        let config = loaded.config;
        if (process.env.TEMPORAL_ADDRESS) {
          const { address, namespace } = config.temporal;
          say(`using Temporal at ${address} (TEMPORAL_ADDRESS)`);
          await waitForTemporal(address, namespace, 60_000, () => (interrupted() ? 'interrupted' : undefined)).catch((err: unknown) => {
            throw new CliError(`Temporal at TEMPORAL_ADDRESS=${address} does not answer: ${firstLine(err)}`);
          });
        } else {
          say(`starting the Temporal dev server (state in ${config.temporal.devDbFile})…`);
          temporal = await startDevTemporal(config, { abort: abort.signal });
          stops.push({ what: 'the Temporal dev server', stop: temporal.stop });
          config = {
            ...config,
            temporal: { ...config.temporal, address: temporal.address },
            http: { ...config.http, temporalUiUrl: config.http.temporalUiUrl ?? temporal.uiUrl },
          };
        }
        if (interrupted()) return;

        say('starting the worker…');
        const worker = await startWorker(config, logger);
        stops.push({ what: 'the worker', stop: worker.stop });
        if (interrupted()) return;

        const { client, connection } = createLazyClient(config);
        stops.push({ what: 'the Temporal client', stop: () => connection.close() });
        const server = await startHttpServer({ config, client, logger });
        stops.push({ what: 'the HTTP server', stop: server.stop });

        say(banner(config, loaded.file, command.optsWithGlobals<GlobalOptions>().config, server.baseUrl, temporal));
        await Promise.race([stopSignal.signal, worker.done]);
      } finally {
        const problems: string[] = [];
        for (const { what, stop } of stops.reverse()) {
          await stop().catch((err: unknown) => problems.push(`stopping ${what}: ${firstLine(err)}`));
        }
        stopSignal.dispose();
        for (const problem of problems) process.stderr.write(`${problem}\n`);
        if (interrupted()) say('stopped.');
      }
    });
}

function banner(config: Config, file: string | undefined, explicitFile: string | undefined, baseUrl: string, temporal: DevTemporal | undefined): string {
  // Other commands find RUNBOOKS_CONFIG and ./runbooks.yaml by themselves; only --config must be repeated.
  const cli = `npx runbooks${explicitFile ? ` --config ${quoteArg(explicitFile)}` : ''}`;
  const webhook = `${baseUrl}/alerts`;
  const workflowId = incidentWorkflowId(TEST_ALERT, TEST_FINGERPRINT);
  const payload = {
    version: '4',
    status: 'firing',
    receiver: 'runbooks',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: TEST_ALERT, severity: 'warning', service: 'demo' },
        annotations: { summary: 'A test alert from runbooks dev' },
        startsAt: new Date().toISOString(),
        fingerprint: TEST_FINGERPRINT,
      },
    ],
  };
  const needsToken = config.tokens.some((t) => t.scopes.includes('alerts'));
  const curl = [
    `curl -sS -X POST ${webhook}`,
    `-H 'content-type: application/json'`,
    ...(needsToken ? [`-H "authorization: Bearer $RUNBOOKS_TOKEN"`] : []),
    `-d '${JSON.stringify(payload)}'`,
  ].join(' ');
  const uiUrl = temporal?.uiUrl ?? config.http.temporalUiUrl;
  return [
    '',
    'runbooks dev is running — Ctrl-C stops everything it started.',
    `  Temporal UI   ${uiUrl ?? `(not started here: Temporal is at ${config.temporal.address}; set http.temporalUiUrl to show its UI)`}`,
    `  Temporal      ${config.temporal.address}, namespace ${config.temporal.namespace}, task queue ${config.temporal.taskQueue}` +
      (temporal ? `\n                state ${temporal.dbFile}, log ${temporal.logFile}` : ''),
    `  Webhook       ${webhook}`,
    `  Health        ${baseUrl}/healthz`,
    `  Config        ${file ?? 'embedded defaults (no runbooks.yaml; see runbooks.example.yaml)'}`,
    '',
    `Fire a test alert (${TEST_ALERT} has no route, so it runs the generic runbook: notify and escalate):`,
    ...(needsToken ? ['  export RUNBOOKS_TOKEN=…   # a token with the "alerts" scope from your config'] : []),
    `  ${curl}`,
    'Then:',
    `  ${cli} incidents`,
    `  ${cli} show ${workflowId}`,
    `  ${cli} resolve ${workflowId}   # --by defaults to your user name`,
    '',
  ].join('\n');
}
