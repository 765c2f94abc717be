/**
 * `runbooks demo`: the API-down runbook end to end against a throwaway backend container.
 *
 * By default the demo is self-contained: it runs its own worker (task queue `<taskQueue>-demo`, which
 * `runbooks incidents` and `GET /incidents` list too) and HTTP server (a free port) in-process, with the
 * loaded config plus the sandbox as `targets.backend`, `demo` as a rollback approver and a one-time webhook
 * token. It only needs Temporal (e.g. `npx runbooks dev` in another
 * terminal), PostgreSQL and Docker. With `--webhook URL` it instead posts to a running `runbooks dev`/`server`,
 * whose config must contain the snippet `runbooks demo --print-config` prints.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { Option, type Command } from 'commander';
import pino from 'pino';
import { z } from 'zod';
import type { Config } from '../../config/schema';
import { actOnIncident, demoTaskQueue, getIncident, IncidentOperationError } from '../../incidents/operations';
import { incidentWorkflowId } from '../../intake/route';
import { createLazyClient } from '../../temporal/client';
import type { IncidentStatusView } from '../../incidents/model';
import { loadCliConfig, parseInput, withClient } from '../context';
import { CliError, firstLine } from '../errors';
import { quoteArg, timelineLine } from '../format';
import { loadDevTemporal, loadSandbox, loadServices } from '../lazy';
import type { Scenario } from '../sandbox';

const DEMO_APPROVER = 'demo';
const ALERTNAME = 'APIDown';

const DemoInputSchema = z.object({
  scenario: z.enum(['stopped', 'bad-deploy']).default('stopped'),
  port: z.coerce.number().int('a whole number').min(1, 'a TCP port').max(65535, 'a TCP port').default(18080),
  webhook: z.url({ protocol: /^https?$/, message: 'an http(s) URL such as http://127.0.0.1:3000/alerts' }).optional(),
  token: z.string().min(1, 'must not be empty').optional(),
  approve: z.boolean().default(false),
  keep: z.boolean().default(false),
  timeout: z.coerce.number().int('whole seconds').min(10, 'at least 10 seconds').default(600),
  printConfig: z.boolean().default(false),
});
type DemoInput = z.infer<typeof DemoInputSchema>;

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('break a sandbox backend container, fire APIDown, and follow the incident until it is resolved (needs Docker and Temporal)')
    .addOption(
      new Option('--scenario <name>', 'stopped: the backend is stopped, a restart fixes it; bad-deploy: a broken image, only an approved rollback fixes it')
        .choices(['stopped', 'bad-deploy'])
        .default('stopped'),
    )
    .option('--port <port>', 'port the sandbox backend serves on (127.0.0.1, host network)', '18080')
    .option('--approve', `approve the rollback as "${DEMO_APPROVER}" instead of waiting for you to`)
    .option('--webhook <url>', 'post the alert to this running runbooks server instead of an in-process one (see --print-config)')
    .option('--token <token>', 'bearer token for --webhook (a token with the "alerts" scope)')
    .option('--timeout <seconds>', 'give up following after this long', '600')
    .option('--keep', 'leave the sandbox container behind')
    .option('--print-config', 'print the config snippet a server needs for `demo --webhook`, and exit')
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(DemoInputSchema, options);
      if (input.printConfig) {
        process.stdout.write(configSnippet(input.port));
        return;
      }
      await runDemo(input, loadCliConfig(command).config);
    });
}

function configSnippet(port: number): string {
  const { DEMO_CONTAINER, sandboxHealthUrl } = loadSandbox();
  return [
    '# Add to the config of the runbooks server `runbooks demo --webhook URL` posts to, then restart it.',
    'targets:',
    '  backend:',
    `    container: ${DEMO_CONTAINER}`,
    `    healthUrl: ${sandboxHealthUrl(port)}`,
    '    healthyWithin: 10s',
    'approvers:',
    `  rollback: [${DEMO_APPROVER}]     # keep your own approvers in this list too`,
    '',
  ].join('\n');
}

async function runDemo(input: DemoInput, config: Config): Promise<void> {
  const sandbox = loadSandbox();
  const services = loadServices();
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const external = input.webhook !== undefined;
  const stops: Array<() => Promise<void>> = [];
  const stopSignal = services.untilStopSignal();
  let interrupted = false;
  void stopSignal.signal.then(() => (interrupted = true));
  let finished = false;

  try {
    const docker = await sandbox.connectDocker(config.docker.host);
    await loadDevTemporal()
      .waitForTemporal(config.temporal.address, config.temporal.namespace, 5_000)
      .catch((err: unknown) => {
        throw new CliError(
          `cannot reach Temporal at ${config.temporal.address} (${firstLine(err)}) — start \`npx runbooks dev\` (npm start) in another terminal, or set TEMPORAL_ADDRESS`,
        );
      });

    if (input.webhook) await checkServerAnswers(input.webhook);

    say('building the sandbox images if needed…');
    const built = await sandbox.ensureSandboxImages(docker);
    if (built.length) say(`  built ${built.join(', ')}`);
    const backend = await sandbox.createBrokenBackend(docker, input.port, input.scenario);
    if (!input.keep) stops.push(() => sandbox.removeSandbox(docker).then(() => undefined));
    say(describeBreakage(input.scenario, backend.container, backend.image, backend.healthUrl));

    let webhook = input.webhook;
    let token = input.token;
    let demoConfig = config;
    if (!external) {
      token = randomBytes(16).toString('hex');
      demoConfig = inProcessConfig(config, backend.container, backend.healthUrl, token);
      say(`starting an in-process worker (task queue ${demoConfig.temporal.taskQueue}) and HTTP server…`);
      const logger = pino({ name: 'runbooks-demo', level: process.env.LOG_LEVEL ?? 'warn' });
      const worker = await services.startWorker(demoConfig, logger);
      stops.push(worker.stop);
      const { client, connection } = createLazyClient(demoConfig);
      stops.push(() => connection.close());
      const server = await services.startHttpServer({ config: demoConfig, client, logger });
      stops.push(server.stop);
      webhook = `${server.baseUrl}/alerts`;
    }
    if (interrupted) return;

    const fingerprint = randomBytes(8).toString('hex');
    const workflowId = incidentWorkflowId(ALERTNAME, fingerprint);
    await postAlert(webhook!, token, fingerprint, input.port);
    say(`fired ${ALERTNAME} at ${webhook} → incident ${workflowId}\n`);

    await withClient(demoConfig, async (client) => {
      // A Ctrl-C also stops the worker at once (the Temporal runtime sees the signal too): stop following then.
      const following = follow(client, workflowId, input, () => interrupted, say);
      following.catch(() => {}); // still awaited below unless a signal came first; a late failure must not crash us
      const view = await Promise.race([following, stopSignal.signal.then(() => undefined)]);
      finished = view !== undefined;
      if (view) say(`\n${workflowId} resolved. See it in the Temporal UI, or: npx runbooks show ${workflowId}`);
      else if (!external) {
        // Its worker stops with us and its task queue is ours alone: nobody would ever finish it.
        await client.workflow
          .getHandle(workflowId)
          .terminate('runbooks demo stopped before the incident was resolved')
          .then(() => say(`terminated ${workflowId}: the demo stopped before it was resolved`))
          .catch((err: unknown) => say(`could not terminate ${workflowId}: ${firstLine(err)}`));
      }
    });
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    stopSignal.dispose();
  }
  if (!finished && !interrupted) throw new CliError(`the incident was not resolved within ${input.timeout} s`);
}

function describeBreakage(scenario: Scenario, container: string, image: string, healthUrl: string): string {
  return scenario === 'stopped'
    ? `broke the backend: container ${container} (${image}) served ${healthUrl}, and is now stopped`
    : `broke the backend: container ${container} runs ${image}, a bad deploy whose ${healthUrl} answers 404`;
}

/** The loaded config plus what the demo needs; a task queue of its own keeps its worker apart from `runbooks dev`'s. */
function inProcessConfig(config: Config, container: string, healthUrl: string, token: string): Config {
  const rollback = [...new Set([...(config.approvers.rollback ?? []), DEMO_APPROVER])];
  return {
    ...config,
    temporal: { ...config.temporal, taskQueue: demoTaskQueue(config.temporal.taskQueue) },
    http: { ...config.http, host: '127.0.0.1', port: 0 },
    routing: { ...config.routing, alerts: { ...config.routing.alerts, [ALERTNAME]: { runbook: 'api-down', defaultSeverity: 'critical' } } },
    targets: { ...config.targets, backend: { container, healthUrl, healthyWithin: 10_000 } },
    approvers: { ...config.approvers, rollback },
    tokens: [
      ...config.tokens.filter((t) => t.name !== DEMO_APPROVER),
      { name: DEMO_APPROVER, sha256: createHash('sha256').update(token).digest('hex'), scopes: ['alerts', 'incidents'] },
    ],
  };
}

/** Before breaking anything: the server behind --webhook must be up (its /healthz answers). */
async function checkServerAnswers(webhook: string): Promise<void> {
  const healthz = new URL('/healthz', webhook).toString();
  try {
    const response = await fetch(healthz, { signal: AbortSignal.timeout(5_000) });
    await response.body?.cancel();
    if (response.ok) return;
    throw new Error(`HTTP ${response.status}`);
  } catch (err) {
    throw new CliError(`the runbooks server behind --webhook does not answer ${healthz}: ${firstLine(err)} — start \`npx runbooks dev\` or \`runbooks server\` first`);
  }
}

async function postAlert(webhook: string, token: string | undefined, fingerprint: string, port: number): Promise<void> {
  const payload = {
    version: '4',
    status: 'firing',
    receiver: 'runbooks-demo',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: ALERTNAME, severity: 'critical', service: 'backend', instance: `127.0.0.1:${port}` },
        annotations: { summary: 'The backend does not answer /health (runbooks demo)' },
        startsAt: new Date().toISOString(),
        fingerprint,
      },
    ],
  };
  let response: Response;
  try {
    response = await fetch(webhook, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new CliError(`cannot post the alert to ${webhook}: ${firstLine(err)} — is \`runbooks dev\` or \`runbooks server\` running there?`);
  }
  const body = (await response.text()).slice(0, 300).replace(/\s+/g, ' ');
  if (!response.ok) throw new CliError(`the webhook ${webhook} answered HTTP ${response.status}: ${body}`);
}

/** Prints each new timeline event until the incident is resolved; undefined if interrupted or timed out. */
async function follow(
  client: Client,
  workflowId: string,
  input: DemoInput,
  interrupted: () => boolean,
  say: (line: string) => void,
): Promise<IncidentStatusView | undefined> {
  const deadline = Date.now() + input.timeout * 1000;
  const hinted = new Set<string>();
  let printed = 0;
  let failures = 0;
  while (!interrupted() && Date.now() < deadline) {
    let view: IncidentStatusView;
    try {
      view = await getIncident(client, workflowId);
      failures = 0;
    } catch (err) {
      // Right after the start the first workflow task may not have run yet; give it a few tries.
      if (++failures >= 10 || (err instanceof IncidentOperationError && err.reason !== 'not-found')) throw err;
      await sleep(1_000);
      continue;
    }
    for (const event of view.timeline.slice(printed)) say(`  ${timelineLine(event)}`);
    printed = view.timeline.length;
    if (view.phase === 'resolved') return view;

    for (const pending of view.pendingApprovals) {
      if (hinted.has(pending.step)) continue;
      hinted.add(pending.step);
      if (input.approve) {
        say(`  → approving "${pending.step}" as ${DEMO_APPROVER} (--approve)`);
        await actOnIncident(client, workflowId, { kind: 'approve', step: pending.step, by: DEMO_APPROVER, reason: 'runbooks demo --approve' });
      } else {
        say(`  → waiting for approval; in another terminal:\n      npx runbooks approve ${workflowId} --step ${quoteArg(pending.step)} --by ${DEMO_APPROVER}`);
      }
    }
    if (view.phase === 'needs-human' && !hinted.has('needs-human')) {
      hinted.add('needs-human');
      say(`  → needs a human; when done: npx runbooks resolve ${workflowId}   (--by defaults to your user name)`);
    }
    await sleep(1_000);
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
