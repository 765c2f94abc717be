// The `runbooks` CLI against real Temporal and PostgreSQL: each command runs as users run it, in a child process.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { osUserName } from '../src/cli/context';
import { parseConfig } from '../src/config/load';
import type { IncidentSummary } from '../src/incidents/operations';
import type { IncidentStatusView } from '../src/incidents/model';
import { approvalKinds } from '../src/runbooks/catalog';
import { cliEnv, cliWorkspace, type CliProcess } from './support/cli';
import { testConfigInput } from './support/config';
import { recordHistoryIfAsked } from './support/histories';
import { alert, fire, outcomeOf, terminateAll } from './support/incidents';
import { waitFor } from './support/wait';
import { startWorker, type RunningWorker } from './support/worker';

const workspace = cliWorkspace('cli-test');
const { scratch, writeConfig } = workspace;
const runCli = (args: string[]) => workspace.run(args);
const spawnCli = (args: string[], env?: NodeJS.ProcessEnv) => workspace.spawn(args, env);

after(() => workspace.remove());

describe('runbooks incident commands', () => {
  const input = testConfigInput({ approvers: { rollback: ['alice'] } });
  const config = parseConfig(input);
  let configFile: string;
  let worker: RunningWorker;
  let workflowId: string;
  const cli = (...args: string[]) => runCli(['--config', configFile, ...args]);

  before(async () => {
    configFile = writeConfig(input);
    worker = await startWorker(config);
    const intake = await fire(worker.client, config, alert('CliTestAlert', { severity: 'warning', service: 'cli-test' }));
    assert.equal(intake.action, 'started');
    workflowId = intake.workflowId;
  });
  let workerStopped = false;
  after(async () => {
    if (!workerStopped) await worker?.stop();
  });

  test('incidents --json lists the open incident with its runbook, severity and status', async () => {
    const listed = await waitFor('the incident in the visibility store', async () => {
      const result = await cli('incidents', '--json');
      assert.equal(result.code, 0, result.stderr);
      const incidents = JSON.parse(result.stdout) as IncidentSummary[];
      return incidents.find((i) => i.workflowId === workflowId);
    });
    assert.equal(listed.runbook, 'generic');
    assert.equal(listed.severity, 'medium');
    assert.equal(listed.alertname, 'CliTestAlert');
    assert.equal(listed.executionStatus, 'RUNNING');
  });

  test("incidents lists the incidents of the demo's task queue too", async () => {
    const demoConfig = { ...config, temporal: { ...config.temporal, taskQueue: `${config.temporal.taskQueue}-demo` } };
    const demo = await fire(worker.client, demoConfig, alert('CliTestDemo', { severity: 'warning', service: 'demo' }));
    try {
      const listed = await waitFor('the demo incident in `runbooks incidents`', async () => {
        const result = await cli('incidents', '--json');
        assert.equal(result.code, 0, result.stderr);
        return (JSON.parse(result.stdout) as IncidentSummary[]).find((i) => i.workflowId === demo.workflowId);
      });
      assert.equal(listed.alertname, 'CliTestDemo');
      const table = await cli('incidents');
      assert.match(table.stdout, new RegExp(`^${demo.workflowId}\\s+generic\\s+`, 'm'));
    } finally {
      await terminateAll(worker.client, [demo.workflowId]);
    }
  });

  test('incidents prints a table with one row per incident', async () => {
    const result = await cli('incidents', '--status', 'all');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^WORKFLOW ID\s+RUNBOOK\s+SEVERITY\s+STATUS\s+LEVEL\s+STARTED\n/);
    assert.match(result.stdout, new RegExp(`^${workflowId}\\s+generic\\s+medium\\s+\\S+\\s+0\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ$`, 'm'));
  });

  test('show prints the status and the timeline', async () => {
    const result = await cli('show', workflowId);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^${workflowId}\\n`));
    assert.match(result.stdout, /runbook\s+generic \(CliTestAlert on cli-test, medium\)/);
    assert.match(result.stdout, new RegExp(`^  Temporal UI   http://\\S+/namespaces/default/workflows/${workflowId}$`, 'm'));
    assert.match(result.stdout, /^ {2}open ones {5}http:\/\/\S+\/namespaces\/default\/workflows\?query=RunbookName%20IN%20\S+ExecutionStatus%20%3D%20'Running'$/m);
    assert.match(result.stdout, /^Timeline:$/m);
    assert.match(result.stdout, /detected\s+alertmanager\s+CliTestAlert fired for cli-test \(medium\)\./);

    const json = await cli('show', workflowId, '--json');
    assert.equal(json.code, 0, json.stderr);
    const view = JSON.parse(json.stdout) as IncidentStatusView;
    assert.equal(view.workflowId, workflowId);
    assert.ok(view.timeline.length >= 1);
  });

  test('ack (short for acknowledge) --by alice --note acknowledges the incident, and the note lands on the timeline', async () => {
    const result = await cli('ack', workflowId, '--by', 'alice', '--note', 'looking into it');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^${workflowId}: acknowledged by alice\\n`));
    const shown = await cli('show', workflowId);
    assert.match(shown.stdout, /acknowledged\s+by alice/);
    assert.match(shown.stdout, /acknowledged\s+alice\s+alice acknowledged the incident: looking into it\./);
  });

  test('ack without --by acknowledges as the OS user, whom --help names as the default', async () => {
    const me = osUserName()!;
    const result = await cli('ack', workflowId);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^${workflowId}: acknowledged by ${me}\\n`));
    const kinds = ['ack', 'approve', 'reject', 'resolve'];
    const helps = await Promise.all(kinds.map((kind) => cli(kind, '--help')));
    helps.forEach((help, i) => {
      assert.match(help.stdout.replace(/\s+/g, ' '), new RegExp(`--by <who> .*\\(default: your OS user name, "${me}"\\)`), kinds[i]);
    });
  });

  test('approve of a step that is not pending exits 1 with "no pending step"', async () => {
    const result = await cli('approve', workflowId, '--step', 'nope', '--by', 'alice');
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /no pending step "nope"/);
    assert.equal(result.stderr.trim().split('\n').length, 1, 'one line on stderr');
  });

  test('input is validated before anything is sent, and the error names the option', async () => {
    const emptyStep = await cli('approve', workflowId, '--step', ' ', '--by', 'alice');
    assert.equal(emptyStep.code, 2);
    assert.match(emptyStep.stderr, /--step: must not be empty/);

    const longName = await cli('ack', workflowId, '--by', 'x'.repeat(101));
    assert.equal(longName.code, 2);
    assert.match(longName.stderr, /--by: at most 100 characters/);

    const badStatus = await cli('incidents', '--status', 'sleeping');
    assert.equal(badStatus.code, 2);
    assert.match(badStatus.stderr, /--status: /);

  });

  test('resolve --by alice completes the incident', async () => {
    const result = await cli('resolve', workflowId, '--by', 'alice', '--note', 'fixed by hand');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^${workflowId}: resolved by alice`));
    const outcome = await outcomeOf(worker.client, workflowId);
    assert.equal(outcome.resolution, 'resolved-by-human');
    assert.equal(outcome.resolvedBy, 'alice');
    await recordHistoryIfAsked(workflowId, 'generic-resolved-by-human');

    const again = await cli('resolve', workflowId, '--by', 'alice');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /closed/);
  });

  test('show of a closed incident reads its outcome from Temporal, even with no worker running', async () => {
    await worker.stop();
    workerStopped = true;
    const result = await cli('show', workflowId);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /closed\s+completed \d{4}-/);
    assert.match(result.stdout, /outcome\s+resolved-by-human by alice, escalation level 0/);
    assert.match(result.stdout, /resolved\s+alice\s+Resolved by alice\./);
  });

  test('show of an unknown incident exits 1', async () => {
    const result = await cli('show', `NoSuchAlert-${randomBytes(8).toString('hex')}`);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^error: no incident NoSuchAlert-[0-9a-f]+/);
  });
});

describe('runbooks dev', () => {
  const tokenFile = path.join(scratch, '.runbooks', 'dev-token');
  /** The name of the local token: the OS user's, as the banner says. */
  const me = osUserName()!;

  /** Starts `runbooks dev` and waits for the whole banner (its last line). */
  async function startDev(configFile: string, env: NodeJS.ProcessEnv = {}): Promise<CliProcess & { base: string; stop(): Promise<void> }> {
    const dev = spawnCli(['--config', configFile, 'dev'], cliEnv({ PORT: '0', LOG_LEVEL: 'warn', ...env }));
    const { child, exited } = dev;
    await waitFor('the banner of runbooks dev', async () => (/# --by defaults to your user name\n/.test(dev.stdout) || child.exitCode !== null ? true : undefined), 90_000);
    assert.equal(child.exitCode, null, `runbooks dev exited early:\n${dev.stdout}\n${dev.stderr}`);
    const webhook = /Webhook\s+(http:\/\/127\.0\.0\.1:(\d+)\/alerts)\n/.exec(dev.stdout);
    assert.ok(webhook, `no webhook URL in:\n${dev.stdout}`);
    assert.notEqual(webhook[2], '0', 'the real port is printed, not 0');
    return Object.assign(dev, {
      base: webhook[1]!.replace(/\/alerts$/, ''),
      async stop() {
        if (child.exitCode !== null) return;
        child.kill('SIGINT');
        const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
        assert.equal(code, 0, `exit code after SIGINT; stderr:\n${dev.stderr}`);
      },
    });
  }

  test('with TEMPORAL_ADDRESS set it uses that server, prints the URLs, a local token and curls that work with it, serves /healthz, and stops on SIGINT', async () => {
    const configFile = writeConfig(testConfigInput({ http: { temporalUiUrl: 'http://ui.example:8080/' } }));
    rmSync(tokenFile, { force: true });
    const dev = await startDev(configFile);
    const { child, base } = dev;
    try {
      assert.match(dev.stdout, new RegExp(`using Temporal at ${process.env.TEMPORAL_ADDRESS!.replace(/\./g, '\\.')} \\(TEMPORAL_ADDRESS\\)`));
      assert.match(dev.stdout, /Temporal UI {3}http:\/\/ui\.example:8080\/\n/);
      assert.match(dev.stdout, /^ {2}http:\/\/ui\.example:8080\/namespaces\/default\/workflows\/TestAlert-ba5eba1100000001 {3}# the incident in the Temporal UI$/m);
      assert.match(dev.stdout, /^ {2}http:\/\/ui\.example:8080\/namespaces\/default\/workflows\?query=\S+ExecutionStatus%20%3D%20'Running' {3}# the open incidents$/m);
      const webhook = `${base}/alerts`;

      const health = await fetch(`${base}/healthz`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { ok: true });

      // The config has no tokens: a local one, named after the OS user, kept in .runbooks/dev-token (0600).
      assert.match(dev.stdout, new RegExp(`Tokens\\s+local token "${me}" \\(scopes alerts, incidents, operations\\), created now in \\.runbooks/dev-token: the config has no tokens\\n`));
      const token = /^ {2}export RUNBOOKS_TOKEN=([0-9a-f]{64})\n/m.exec(dev.stdout)?.[1];
      assert.ok(token, `no token in:\n${dev.stdout}`);
      assert.equal(dev.stdout.split(token).length, 2, 'the token is shown once');
      assert.equal(readFileSync(tokenFile, 'utf8'), `${token}\n`);
      assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
      const everyKind = approvalKinds.map((kind) => `${kind}: \\[${me}\\]`).join(', ');
      assert.match(dev.stdout, new RegExp(`Approvers\\s+none configured: nobody can approve a dangerous step \\(runbooks catalog lists the kinds\\)\\. To approve as yourself, add to ${configFile.replace(/[.\\/]/g, '\\$&')}:\\n\\s+approvers: \\{ ${everyKind} \\}`));
      assert.doesNotMatch(dev.stdout, /no token has the/, 'both scopes have a token: no warning');
      // No targets and no --sandbox: the banner says what that means and how to get the sandbox.
      assert.match(dev.stdout, /\n {2}Targets {7}none: the runbooks diagnose, notify and escalate but have nothing to act on — `npm start -- --sandbox` runs the audit-app sandbox and points them at it\n/);
      assert.doesNotMatch(dev.stdout, /Sandbox {7}audit-app/, 'no sandbox was asked for');

      // The printed curl is copy-pasteable: same URL, the token, a valid v4 payload (sent here with a fresh fingerprint).
      const curl = /curl -sS -X POST (\S+) -H 'content-type: application\/json' -H "authorization: Bearer \$RUNBOOKS_TOKEN" -d '(.+)'\n/.exec(dev.stdout);
      assert.ok(curl, `no curl command in:\n${dev.stdout}`);
      assert.equal(curl[1], webhook);
      const payload = JSON.parse(curl[2]!) as { alerts: Array<{ labels: Record<string, string>; fingerprint: string }> };
      assert.equal(payload.alerts[0]!.labels.alertname, 'TestAlert');
      payload.alerts[0]!.fingerprint = randomBytes(8).toString('hex');
      const post = (url: string, body?: unknown, auth?: string) =>
        fetch(url, {
          method: 'POST',
          headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      assert.equal((await post(webhook, payload)).status, 401, 'the webhook needs the token');
      const fired = await post(webhook, payload, token);
      assert.equal(fired.status, 200, await fired.clone().text());
      const { results } = (await fired.json()) as { results: Array<{ workflowId: string; action: string }> };
      assert.equal(results[0]!.action, 'started');
      const workflowId = results[0]!.workflowId;

      // The printed ack is accepted with the token, and recorded under its name.
      const ack = new RegExp(`^ {2}curl -sS -X POST ${base.replace(/[.\\/]/g, '\\$&')}/incidents/TestAlert-ba5eba1100000001/acknowledge -H "authorization: Bearer \\$RUNBOOKS_TOKEN" {3}# acknowledge over HTTP as ${me}$`, 'm');
      assert.match(dev.stdout, ack);
      const acked = await waitFor('the ack to be accepted', async () => {
        const response = await post(`${base}/incidents/${workflowId}/acknowledge`, undefined, token);
        return response.status === 200 ? ((await response.json()) as IncidentStatusView) : undefined;
      });
      assert.equal(acked.acknowledgedBy, me);
      assert.equal((await post(`${base}/incidents/${workflowId}/acknowledge`)).status, 401, 'not without the token');

      assert.match(dev.stdout, /npx runbooks --config \S+ resolve TestAlert-[0-9a-f]+ {3}# --by defaults to your user name\n/);
      const shown = await waitFor('the generic runbook to run', async () => {
        const result = await runCli(['--config', configFile, 'show', workflowId]);
        return /No runbook automates TestAlert/.test(result.stdout) ? result : undefined;
      });
      assert.match(shown.stdout, /runbook\s+generic \(TestAlert on demo, medium\)/);
      // As printed: without --by, which defaults to the OS user.
      const resolved = await runCli(['--config', configFile, 'resolve', workflowId]);
      assert.equal(resolved.code, 0, resolved.stderr);
      assert.match(resolved.stdout, new RegExp(`^${workflowId}: resolved by ${me}`));

      await dev.stop();
      assert.match(dev.stdout, /SIGINT: stopping…\n[\s\S]*stopped\.\n$/);
      await assert.rejects(fetch(`${base}/healthz`), 'the HTTP server is closed');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('the next start reuses the local token; a config with tokens of its own gets none, and the banner says so', async () => {
    const token = readFileSync(tokenFile, 'utf8').trim();
    const again = await startDev(writeConfig(testConfigInput()));
    try {
      assert.match(again.stdout, /Tokens\s+local token "\S+" \(scopes alerts, incidents, operations\), kept in \.runbooks\/dev-token/);
      assert.match(again.stdout, new RegExp(`export RUNBOOKS_TOKEN=${token}\n`));
      await again.stop();
    } finally {
      if (again.child.exitCode === null) again.child.kill('SIGKILL');
    }

    const alertmanager = randomBytes(16).toString('hex');
    const input = testConfigInput({
      tokens: [{ name: 'alertmanager', sha256: createHash('sha256').update(alertmanager).digest('hex'), scopes: ['alerts'] }],
      approvers: { rollback: ['alice', 'bob'] },
    });
    const own = await startDev(writeConfig(input));
    try {
      assert.match(own.stdout, /Tokens\s+the config's own tokens apply \(no local token is added\): alertmanager \(alerts\)\n/);
      assert.match(own.stdout, /Approvers\s+rollback: alice, bob; other kinds: nobody/);
      assert.match(own.stdout, /export RUNBOOKS_TOKEN=…\n/);
      assert.doesNotMatch(own.stdout, new RegExp(token), 'the local token is not shown');
      assert.match(own.stdout, /no token has the "incidents" scope, so the HTTP API refuses incident actions/);
      // The one start-up line about the scope nobody has (JSON logs: stdout is not a terminal).
      const warnings = own.stdout.split('\n').filter((line) => line.includes('no token has the \\"incidents\\" scope:'));
      assert.equal(warnings.length, 1, own.stdout);
      assert.match(warnings[0]!, /GET \/\{incidents,checklists\}, GET \/incidents\/:id and GET \/incidents\/:id\/\{report,report\.svg,report\.html\} are open to anyone who can reach them; POST \/incidents\/:id\/\{approve,reject,acknowledge,resolve,complete-task,pause,resume,abort\} refuse every request \(401\)/);
      assert.doesNotMatch(own.stdout, /no token has the \\"alerts\\" scope/);

      const webhook = `${own.base}/alerts`;
      const withLocal = await fetch(webhook, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(withLocal.status, 401, 'the local token is not let in');
      const withOwn = await fetch(webhook, { method: 'POST', headers: { authorization: `Bearer ${alertmanager}`, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(withOwn.status, 400, 'the configured token gets past authentication (to a payload check)');
      await own.stop();
    } finally {
      if (own.child.exitCode === null) own.child.kill('SIGKILL');
    }
  });
});
