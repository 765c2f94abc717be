/**
 * `runbooks demo --scenario NAME`: one runbook end to end against the audit-app sandbox, for real.
 *
 * It brings the sandbox up (`runbooks sandbox up`'s code: a private Docker engine when none answers, images built
 * when missing, a running sandbox reused), breaks it the scenario's way (src/sandbox/scenarios.ts), fires the
 * scenario's alert through the webhook, prints the incident's timeline as it grows, and exits 0 once the incident
 * is resolved (1 otherwise). `--approve` answers the approvals as "demo"; without it the demo prints the command
 * that approves.
 *
 * By default the worker (task queue `<taskQueue>-demo`, which `runbooks incidents` lists too) and the HTTP server
 * run in-process, with the loaded config pointed at the sandbox. With `--webhook URL` the alert goes to a running
 * `runbooks dev`/`server` instead, whose config must hold `runbooks demo --print-config`'s snippet.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { Option, type Command } from 'commander';
import pino from 'pino';
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';
import type { Config } from '../../config/schema';
import { actOnIncident, demoTaskQueue, getIncident, IncidentOperationError } from '../../incidents/operations';
import type { IncidentStatusView } from '../../incidents/model';
import { incidentWorkflowId } from '../../intake/route';
import { catalog, runbookNames, type RunbookName } from '../../runbooks/catalog';
import { demoScenarioNames, demoScenarios, type AlertScenario, type DemoScenario } from '../../sandbox/scenarios';
import { SANDBOX_DEPLOY } from '../../sandbox/auditApp/contract';
import { createLazyClient } from '../../temporal/client';
import { loadCliConfig, parseInput, withClient } from '../context';
import { CliError, firstLine } from '../errors';
import { quoteArg, timelineLine } from '../format';
import { loadDemoBackfill, loadDemoDeploy, loadDemoSandbox, loadDevTemporal, loadServices } from '../lazy';
import { pointAtSandbox } from '../sandboxConfig';
import { addSandboxPlaceOptions, SandboxPlaceSchema, sandboxPorts, type SandboxPlace } from './sandbox';

const DEMO_APPROVER = 'demo';

const DemoInputSchema = SandboxPlaceSchema.extend({
  scenario: z.enum(demoScenarioNames).default('api-down'),
  webhook: z.url({ protocol: /^https?$/, message: 'an http(s) URL such as http://127.0.0.1:3000/alerts' }).optional(),
  token: z.string().min(1, 'must not be empty').optional(),
  approve: z.boolean().default(false),
  keep: z.boolean().default(false),
  timeout: z.coerce.number().int('whole seconds').min(10, 'at least 10 seconds').default(600),
  printConfig: z.boolean().default(false),
});
type DemoInput = z.infer<typeof DemoInputSchema>;

export function registerDemoCommand(program: Command): void {
  const scenarios = demoScenarioNames.map((name) => {
    const scenario: DemoScenario = demoScenarios[name];
    const trigger = 'alertname' in scenario ? `${scenario.alertname} → ${routeOf(scenario.alertname)}` : 'backfill' in scenario ? 'runbooks backfill' : 'runbooks deploy';
    return `  ${name.padEnd(15)} ${trigger}: ${scenario.summary}`;
  });
  addSandboxPlaceOptions(
    program
      .command('demo')
      .description('break the audit-app sandbox for real, fire the alert, and follow the incident until it is resolved (needs Docker and Temporal)')
      .addOption(new Option('--scenario <name>', 'what to break (see below)').choices(demoScenarioNames).default('api-down'))
      .option('--approve', `approve every step that asks, as "${DEMO_APPROVER}", instead of waiting for you to`)
      .option('--webhook <url>', 'post the alert to this running runbooks server instead of an in-process one (see --print-config)')
      .option('--token <token>', 'bearer token for --webhook (a token with the "alerts" scope)')
      .option('--timeout <seconds>', 'give up following after this long', '600')
      .option('--keep', 'leave a sandbox the demo started running afterwards (one that was there before is always kept)')
      .option('--print-config', 'print the config snippet a server needs for `demo --webhook`, and exit'),
    ' (the sandbox)',
  )
    .addHelpText('after', `\nScenarios:\n${scenarios.join('\n')}\n`)
    .action(async (options: Record<string, unknown>, command: Command) => {
      const input = parseInput(DemoInputSchema, options);
      if (input.printConfig) {
        process.stdout.write(configSnippet(input));
        return;
      }
      await runDemo(input, loadCliConfig(command));
    });
}

function routeOf(alertname: string): RunbookName {
  return runbookNames.find((name) => alertname in catalog[name].alerts)!;
}

function configSnippet(input: DemoInput): string {
  const scenario: DemoScenario = demoScenarios[input.scenario];
  if ('backfill' in scenario) {
    return [
      `# Add to the config of the worker that runs \`runbooks demo --scenario ${input.scenario}\`'s backfills.`,
      toYaml({ ...loadDemoSandbox().sandboxTargetsAt(place(input)), backfill: { delay: scenario.backfill.delay } }).trimEnd(),
      '',
    ].join('\n');
  }
  if ('deployment' in scenario) {
    return [
      `# Add to the config of the worker that runs \`runbooks demo --scenario ${input.scenario}\`'s deployments.`,
      toYaml({ ...loadDemoSandbox().sandboxTargetsAt(place(input)), deploy: { ...SANDBOX_DEPLOY, watch: scenario.deployment.watch } }).trimEnd(),
      '',
    ].join('\n');
  }
  const approvers = Object.fromEntries(catalog[routeOf(scenario.alertname)].approvalKinds.map((kind) => [kind, [DEMO_APPROVER]]));
  return [
    `# Add to the config of the runbooks server \`runbooks demo --scenario ${input.scenario} --webhook URL\` posts to, then restart it.`,
    '# Keep your own approvers in the lists too. A sandbox on a private Docker engine also needs docker.host (runbooks sandbox up prints it).',
    toYaml({
      ...loadDemoSandbox().sandboxTargetsAt(place(input)),
      ...(Object.keys(approvers).length ? { approvers } : {}),
      ...(scenario.policies ? { policies: scenario.policies } : {}),
    }).trimEnd(),
    '',
  ].join('\n');
}

async function runDemo(input: DemoInput, loaded: { config: Config; file?: string }): Promise<void> {
  const { config } = loaded;
  const chosen: DemoScenario = demoScenarios[input.scenario];
  if ('backfill' in chosen) return loadDemoBackfill().runBackfillDemo({ ...input, scenario: chosen, place: place(input) }, loaded);
  if ('deployment' in chosen) return loadDemoDeploy().runDeployDemo({ ...input, scenario: chosen, place: place(input) }, loaded);
  const scenario: AlertScenario = chosen;
  const services = loadServices();
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const external = input.webhook !== undefined;
  const stops: Array<() => Promise<void>> = [];
  const stopSignal = services.untilStopSignal();
  let interrupted = false;
  void stopSignal.signal.then(() => (interrupted = true));
  let finished = false;

  try {
    await loadDevTemporal()
      .waitForTemporal(config.temporal.address, config.temporal.namespace, 5_000)
      .catch((err: unknown) => {
        throw new CliError(
          `cannot reach Temporal at ${config.temporal.address} (${firstLine(err)}) — start \`npx runbooks dev\` (npm start) in another terminal, or set TEMPORAL_ADDRESS`,
        );
      });
    if (input.webhook) await checkServerAnswers(input.webhook);

    say(`scenario ${input.scenario}: ${scenario.summary}`);
    const sandbox = await loadDemoSandbox().breakSandbox({ scenario, place: place(input), dockerHost: config.docker.host, log: say });
    stops.push(async () => {
      say(await sandbox.cleanUp(input.keep));
    });
    say(`broke it: ${sandbox.broke}`);
    if (scenario.policies) say(`demo policy (instead of the catalog's): ${JSON.stringify(scenario.policies)}`);

    let webhook = input.webhook;
    let token = input.token;
    let demoConfig = config;
    if (!external) {
      token = randomBytes(16).toString('hex');
      demoConfig = inProcessConfig(config, scenario, sandbox.targets, token);
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
    if (scenario.firesAfterSeconds) {
      say(`waiting ${scenario.firesAfterSeconds} s before firing, as Prometheus waits out the rule's \`for:\``);
      await sleep(scenario.firesAfterSeconds * 1000);
    }
    if (interrupted) return;

    const fingerprint = randomBytes(8).toString('hex');
    const workflowId = incidentWorkflowId(scenario.alertname, fingerprint);
    await postAlert(webhook!, token, scenario.alertname, fingerprint, scenario.labels);
    say(`fired ${scenario.alertname} at ${webhook} → incident ${workflowId}\n`);

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
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => say(`cleaning up: ${firstLine(err)}`));
    stopSignal.dispose();
  }
  if (!finished && !interrupted) throw new CliError(`the incident was not resolved within ${input.timeout} s`);
}

function place(input: SandboxPlace) {
  return { prefix: input.prefix, ports: sandboxPorts(input) };
}

/** The loaded config pointed at the sandbox, on a task queue of its own (apart from `runbooks dev`'s), with a one-time token. */
function inProcessConfig(config: Config, scenario: AlertScenario, targets: Parameters<typeof pointAtSandbox>[1]['sandbox'], token: string): Config {
  const runbook = routeOf(scenario.alertname);
  const pointed = pointAtSandbox(config, { sandbox: targets, approver: DEMO_APPROVER, kinds: catalog[runbook].approvalKinds, policies: scenario.policies });
  return {
    ...pointed,
    temporal: { ...config.temporal, taskQueue: demoTaskQueue(config.temporal.taskQueue) },
    http: { ...config.http, host: '127.0.0.1', port: 0 },
    routing: { ...config.routing, alerts: { ...config.routing.alerts, [scenario.alertname]: { runbook, defaultSeverity: 'high' } } },
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

/** The alert as Alertmanager would send it (webhook payload v4), with the catalog's severity for it. */
async function postAlert(webhook: string, token: string | undefined, alertname: string, fingerprint: string, labels: Record<string, string> = {}): Promise<void> {
  const severity = Object.values(catalog).find((entry) => alertname in entry.alerts)!.alerts[alertname as never] as string;
  const payload = {
    version: '4',
    status: 'firing',
    receiver: 'runbooks-demo',
    alerts: [
      {
        status: 'firing',
        labels: { ...labels, alertname, severity, service: 'audit-app' },
        annotations: { summary: `${alertname} on the audit-app sandbox (runbooks demo)` },
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
    for (const task of view.tasks.filter((t) => t.state === 'open')) {
      if (hinted.has(`task:${task.id}`)) continue;
      hinted.add(`task:${task.id}`);
      if (input.approve) {
        say(`  → completing task "${task.id}" as ${DEMO_APPROVER} (--approve)`);
        await actOnIncident(client, workflowId, { kind: 'complete-task', task: task.id, by: DEMO_APPROVER, note: 'runbooks demo --approve' });
      } else {
        say(`  → a task for a human; when done, in another terminal:\n      npx runbooks complete-task ${workflowId} --task ${quoteArg(task.id)} --note '…'`);
      }
    }
    if (view.phase === 'needs-human' && !hinted.has('needs-human') && !view.tasks.some((t) => t.state === 'open')) {
      hinted.add('needs-human');
      say(`  → needs a human; when done: npx runbooks resolve ${workflowId}   (--by defaults to your user name)`);
    }
    await sleep(1_000);
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
