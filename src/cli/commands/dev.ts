/**
 * `runbooks dev` (what `npm start` runs): a Temporal dev server (unless TEMPORAL_ADDRESS is set), the worker
 * and the HTTP server in one process, and how to fire a first alert. Ctrl-C stops all of it, in order.
 *
 * When the configuration has no tokens, a local one (named after the OS user, scopes alerts and incidents) is
 * made once, kept in .runbooks/dev-token, and added to the in-memory configuration: the HTTP API's incident
 * actions then work out of the box, as whoever runs `npm start`.
 *
 * `--sandbox` (`npm start -- --sandbox`) also brings the audit-app sandbox up (`runbooks sandbox up`'s code: a
 * private Docker engine when none answers) and points the in-memory configuration at it, with the local user as
 * an approver of every kind: every alert of every runbook then does real work on this machine. The sandbox keeps
 * running after Ctrl-C (`runbooks sandbox down` removes it).
 */
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/schema';
import { approvalKinds } from '../../runbooks/catalog';
import { DEFAULT_PREFIX } from '../../sandbox/auditApp/contract';
import type { SandboxUpResult } from '../../sandbox/commands';
import { incidentWorkflowId } from '../../intake/route';
import { createLogger } from '../../logging/logger';
import { createLazyClient } from '../../temporal/client';
import { z } from 'zod';
import { loadCliConfig, osUserName, parseInput, type GlobalOptions } from '../context';
import { CliError, firstLine } from '../errors';
import { quoteArg } from '../format';
import { loadDevTemporal, loadSandboxCommands, loadServices } from '../lazy';
import type { DevTemporal } from '../devTemporal';
import { pointAtSandbox } from '../sandboxConfig';
import { incidentListUiUrl, incidentUiUrl } from '../../temporal/uiLinks';
import { addSandboxPlaceOptions, SandboxPlaceSchema, sandboxPorts, sandboxStep } from './sandbox';
import { generateToken, TokenNameSchema, tokenScopes, tokenSha256 } from './token';

/** Fixed, so the printed commands stay the same from one start to the next. */
const TEST_ALERT = 'TestAlert';
const TEST_FINGERPRINT = 'ba5eba1100000001';
const SANDBOX_FINGERPRINT = 'ba5eba1100000002';
/** Where the local token is kept, beside the dev server's state (relative to where `runbooks dev` runs). */
const DEV_TOKEN_FILE = path.join('.runbooks', 'dev-token');

/** The token `runbooks dev` adds when the configuration has none. */
interface LocalToken {
  name: string;
  token: string;
  file: string;
  created: boolean;
}

const DevInputSchema = SandboxPlaceSchema.extend({ sandbox: z.boolean().default(false) });

export function registerDevCommand(program: Command): void {
  addSandboxPlaceOptions(
    program
      .command('dev')
      .description('local development: Temporal dev server (unless TEMPORAL_ADDRESS is set) + worker + HTTP server; Ctrl-C stops everything')
      .option('--sandbox', 'also run the audit-app sandbox and point the runbooks at it, with you as an approver of every kind'),
    ' (with --sandbox)',
  )
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(DevInputSchema, options);
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
        const local = config.tokens.length === 0 ? localToken(DEV_TOKEN_FILE) : undefined;
        if (local) {
          config = { ...config, tokens: [{ name: local.name, sha256: tokenSha256(local.token), scopes: [...tokenScopes] }] };
        }
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

        let sandbox: SandboxUpResult | undefined;
        if (input.sandbox) {
          say('starting the audit-app sandbox…');
          sandbox = await sandboxStep(() =>
            loadSandboxCommands().sandboxUp({ dockerHost: config.docker.host, prefix: input.prefix, ports: sandboxPorts(input), log: (line) => say(`  ${line}`) }),
          );
          config = pointAtSandbox(config, { sandbox: sandbox.targets, approver: local?.name ?? osUserName() ?? 'local', kinds: approvalKinds });
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

        say(banner({ config, file: loaded.file, explicitFile: command.optsWithGlobals<GlobalOptions>().config, baseUrl: server.baseUrl, temporal, local, sandbox }));
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

/**
 * The local token: read from `file`, else made now (32 random bytes, hex) and written there with mode 0600. Its
 * name is the OS user's when that is a valid token name, else "local".
 */
function localToken(file: string): LocalToken {
  const userName = osUserName();
  const name = userName !== undefined && TokenNameSchema.safeParse(userName).success ? userName : 'local';
  for (let attempt = 0; attempt < 2; attempt++) {
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`cannot read the local token in ${file}: ${firstLine(err)}`);
    }
    if (text !== undefined) {
      const token = text.trim();
      if (!/^[A-Za-z0-9_-]{32,512}$/.test(token)) {
        throw new CliError(`${file} does not hold a token (32 to 512 letters, digits, _ or -): delete it, and runbooks dev makes a new one`);
      }
      // It is a secret: keep it to its owner, even if someone loosened the file's mode.
      if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
      return { name, token, file, created: false };
    }
    const token = generateToken();
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
      return { name, token, file, created: true };
    } catch (err) {
      // Another `runbooks dev` made it first: read theirs.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new CliError(`cannot write the local token to ${file}: ${firstLine(err)}`);
    }
  }
  throw new CliError(`cannot read or create the local token in ${file}`);
}

interface BannerInput {
  config: Config;
  /** The configuration file, or undefined for the embedded defaults. */
  file: string | undefined;
  /** `--config`, which the printed commands must repeat. */
  explicitFile: string | undefined;
  baseUrl: string;
  temporal: DevTemporal | undefined;
  local: LocalToken | undefined;
  sandbox: SandboxUpResult | undefined;
}

function banner({ config, file, explicitFile, baseUrl, temporal, local, sandbox }: BannerInput): string {
  // Other commands find RUNBOOKS_CONFIG and ./runbooks.yaml by themselves; only --config must be repeated.
  const cli = `npx runbooks${explicitFile ? ` --config ${quoteArg(explicitFile)}` : ''}`;
  const webhook = `${baseUrl}/alerts`;
  const workflowId = incidentWorkflowId(TEST_ALERT, TEST_FINGERPRINT);
  const alertsNeedToken = config.tokens.some((t) => t.scopes.includes('alerts'));
  const actionsTakeToken = config.tokens.some((t) => t.scopes.includes('incidents'));
  const bearer = `-H "authorization: Bearer $RUNBOOKS_TOKEN"`;
  /** A curl that posts one firing alert as Alertmanager would (webhook payload v4). */
  const curlAlert = (labels: Record<string, string>, summary: string, fingerprint: string) => {
    const alert = { status: 'firing', labels, annotations: { summary }, startsAt: new Date().toISOString(), fingerprint };
    const payload = { version: '4', status: 'firing', receiver: 'runbooks', alerts: [alert] };
    return [`curl -sS -X POST ${webhook}`, `-H 'content-type: application/json'`, ...(alertsNeedToken ? [bearer] : []), `-d '${JSON.stringify(payload)}'`].join(' ');
  };
  const curl = curlAlert({ alertname: TEST_ALERT, severity: 'warning', service: 'demo' }, 'A test alert from runbooks dev', TEST_FINGERPRINT);
  const ackCurl = `curl -sS -X POST ${baseUrl}/incidents/${workflowId}/acknowledge ${bearer}`;
  const uiUrl = temporal?.uiUrl ?? config.http.temporalUiUrl;
  const scopesOf = (t: Config['tokens'][number]) => t.scopes.join(', ');
  const tokens = local
    ? `local token "${local.name}" (scopes ${scopesOf(config.tokens[0]!)}), ${local.created ? 'created now in' : 'kept in'} ${local.file}: the config has no tokens`
    : `the config's own tokens apply (no local token is added): ${config.tokens.map((t) => `${t.name} (${scopesOf(t)})`).join(', ')}`;
  const me = local?.name ?? 'NAME';
  const configured = approvalKinds.filter((kind) => config.approvers[kind]?.length);
  const approvers = `${configured.map((kind) => `${kind}: ${config.approvers[kind]!.join(', ')}`).join('; ')}${configured.length < approvalKinds.length ? '; other kinds: nobody' : ''}`;
  const noApprovers = configured.length === 0;
  return [
    '',
    'runbooks dev is running — Ctrl-C stops everything it started.',
    `  Temporal UI   ${uiUrl ?? `(not started here: Temporal is at ${config.temporal.address}; set http.temporalUiUrl to show its UI)`}`,
    `  Temporal      ${config.temporal.address}, namespace ${config.temporal.namespace}, task queue ${config.temporal.taskQueue}` +
      (temporal ? `\n                state ${temporal.dbFile}, log ${temporal.logFile}` : ''),
    `  Webhook       ${webhook}`,
    `  Health        ${baseUrl}/healthz`,
    `  Config        ${file ?? 'embedded defaults (no runbooks.yaml; see runbooks.example.yaml)'}`,
    `  Tokens        ${tokens}`,
    sandbox
      ? `  Sandbox       audit-app ${sandbox.app.prefix}*: backend ${sandbox.app.urls.api}, postgres ${sandbox.app.urls.database}, redis ${sandbox.app.urls.redis};\n` +
        `                the runbooks' targets point at it. It keeps running after Ctrl-C (${cli} sandbox down${prefixOption(sandbox)} removes it).` +
        (engineNoteOf(sandbox) ? `\n                ${engineNoteOf(sandbox)}` : '')
      : `  Targets       ${targetsLine(config)}`,
    noApprovers
      ? `  Approvers     none configured: nobody can approve a dangerous step (runbooks catalog lists the kinds). To approve as yourself, add to ${file ?? 'runbooks.yaml'}:\n` +
        `                  approvers: { ${approvalKinds.map((kind) => `${kind}: [${me}]`).join(', ')} }   (token names for the HTTP API, --by for the CLI)`
      : `  Approvers     ${approvers} (token names for the HTTP API, --by for the CLI)`,
    '',
    ...(local
      ? [`Your local token; the HTTP API records what you do with it as "${local.name}":`, `  export RUNBOOKS_TOKEN=${local.token}`, '']
      : alertsNeedToken || actionsTakeToken
        ? ['Use a token of your config (runbooks token create makes one):', '  export RUNBOOKS_TOKEN=…', '']
        : []),
    `Fire a test alert (${TEST_ALERT} has no route, so it runs the generic runbook: notify and escalate):`,
    `  ${curl}`,
    'Then:',
    `  ${cli} incidents`,
    `  ${cli} show ${workflowId}`,
    ...(uiUrl
      ? [
          `  ${incidentUiUrl(uiUrl, config.temporal.namespace, workflowId)}   # the incident in the Temporal UI`,
          `  ${incidentListUiUrl(uiUrl, config, 'open')}   # the open incidents`,
        ]
      : []),
    ...(actionsTakeToken
      ? [`  ${ackCurl}   # acknowledge over HTTP${local ? ` as ${local.name}` : ' (a token with the "incidents" scope)'}`]
      : ['  (no token has the "incidents" scope, so the HTTP API refuses incident actions; the CLI acts as an operator)']),
    `  ${cli} resolve ${workflowId}   # --by defaults to your user name`,
    '',
    ...(sandbox
      ? [
          'Or break the sandbox for real and fire the alert Prometheus would (DatabaseDown runs the db-connections runbook):',
          `  ${cli} sandbox break db-stopped${prefixOption(sandbox)}`,
          `  ${curlAlert({ alertname: 'DatabaseDown', severity: 'critical', service: 'audit-app' }, 'PostgreSQL does not answer', SANDBOX_FINGERPRINT)}`,
          `  ${cli} show ${incidentWorkflowId('DatabaseDown', SANDBOX_FINGERPRINT)}`,
          '',
        ]
      : []),
  ].join('\n');
}

function targetsLine(config: Config): string {
  const named = Object.entries(config.targets).flatMap(([name, target]) => (target ? [`${name} (${target.container})`] : []));
  return named.length
    ? named.join(', ')
    : 'none: the runbooks diagnose, notify and escalate but have nothing to act on — `npm start -- --sandbox` runs the audit-app sandbox and points them at it';
}

/** `--prefix P` for the printed sandbox commands when the sandbox is not at the default one. */
function prefixOption(sandbox: SandboxUpResult): string {
  return sandbox.app.prefix === DEFAULT_PREFIX ? '' : ` --prefix ${quoteArg(sandbox.app.prefix)}`;
}

function engineNoteOf(sandbox: SandboxUpResult): string | undefined {
  return loadSandboxCommands().engineNote(sandbox.engine);
}
