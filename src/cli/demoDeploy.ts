/**
 * `runbooks demo --scenario deploy`: the runbook's Standard Deployment, for real, on the sandbox. A worker process
 * (`runbooks worker`) runs the deployments with the config pointed at the sandbox; the demo deploys a good version
 * (built from the running image, migrated, verified, watched), then a bad one whose /health fails, which the
 * deployment rolls back by itself, opening an incident (the demo resolves it afterwards). Exits 0 when the good
 * one succeeded and the bad one was rolled back with its incident.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { dockerClient } from '../activities';
import { loadConfig } from '../config/load';
import type { Config, ConfigInput } from '../config/schema';
import type { DeploymentOutcome } from '../deployments/model';
import { actOnIncident, demoTaskQueue } from '../incidents/operations';
import { DeploymentRefused, startDeploy } from '../intake/deploy';
import { DEFAULT_BACKEND_VERSION, ensureAuditAppImages, SANDBOX_DEPLOY } from '../sandbox/auditApp';
import type { DeployScenario } from '../sandbox/scenarios';
import { withClient } from './context';
import { loadDemoSandbox } from './lazy';
import type { SandboxPlace } from './demoSandbox';
import { demoWorkers, type DemoWorkers } from './demoWorker';
import { CliError, firstLine } from './errors';

interface DeployDemoInput {
  scenario: DeployScenario;
  place: SandboxPlace;
  keep: boolean;
}

export async function runDeployDemo(input: DeployDemoInput, loaded: { config: Config; file?: string }): Promise<void> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const scratch = mkdtempSync(path.join(tmpdir(), 'runbooks-demo-'));
  const { good, bad, watch } = input.scenario.deployment;
  let workers: DemoWorkers | undefined;
  let cleanUp: ((keep: boolean) => Promise<string>) | undefined;
  try {
    say(`scenario deploy: ${input.scenario.summary}`);
    const sandbox = await loadDemoSandbox().breakSandbox({ scenario: {}, place: input.place, dockerHost: loaded.config.docker.host, log: say });
    cleanUp = sandbox.cleanUp;
    const started = Date.now();
    const built = await ensureAuditAppImages(dockerClient(sandbox.dockerHost), { backends: [{ version: DEFAULT_BACKEND_VERSION }, bad] });
    if (built.length) say(`built ${built.map((b) => `${b.image} (${b.seconds.toFixed(1)} s)`).join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const configFile = path.join(scratch, 'runbooks.yaml');
    const fileInput = (loaded.file ? parseYaml(readFileSync(loaded.file, 'utf8')) : {}) as ConfigInput;
    const workerInput: ConfigInput = {
      ...fileInput,
      ...sandbox.targets,
      temporal: { ...fileInput.temporal, taskQueue: demoTaskQueue(loaded.config.temporal.taskQueue) },
      deploy: { ...fileInput.deploy, ...SANDBOX_DEPLOY, watch },
    };
    writeFileSync(configFile, toYaml(workerInput));
    const config = loadConfig({ file: configFile });
    workers = demoWorkers(configFile, say, config.temporal.taskQueue);
    workers.start();

    await withClient(config, async (client) => {
      const first = await deployAndWait(client, config, good, say);
      const second = await deployAndWait(client, config, bad.version, say);
      if (second.incident) {
        await actOnIncident(client, second.incident, { kind: 'resolve', by: 'demo', note: 'the demo is over: the deployment rolled itself back' }).catch((err: unknown) =>
          say(`  (could not resolve ${second.incident}: ${firstLine(err)})`),
        );
        say(`  resolved the demo's incident ${second.incident} as demo`);
      }
      const asExpected = first.record.result === 'succeeded' && second.record.result === 'rolled-back' && second.incident !== undefined;
      say(`\nthe deployment history: npx runbooks deployments (the demo's worker wrote it to ${config.audit.schema})`);
      if (!asExpected) throw new CliError(`expected ${good} to succeed and ${bad.version} to be rolled back with an incident; got ${first.record.result} and ${second.record.result}`);
    });
  } finally {
    workers?.stopAll();
    rmSync(scratch, { recursive: true, force: true });
    if (cleanUp) say(await cleanUp(input.keep).catch((err: unknown) => `cleaning up: ${firstLine(err)}`));
  }
}

async function deployAndWait(client: Client, config: Config, version: string, say: (line: string) => void): Promise<DeploymentOutcome> {
  const handle = await startDeploy(client, config, { version, by: 'demo' }).catch((err: unknown) => {
    throw err instanceof DeploymentRefused ? new CliError(err.message) : err;
  });
  say(`\ndeploying ${version} (${handle.workflowId}) …`);
  const outcome = (await handle.result()) as DeploymentOutcome;
  const { record } = outcome;
  say(`  ${record.result}: ${record.fromImage} → ${record.toImage}${record.durationMs !== undefined ? ` in ${(record.durationMs / 1000).toFixed(1)} s` : ''}${record.reason ? ` — ${record.reason}` : ''}`);
  if (outcome.incident) say(`  incident opened: ${outcome.incident}`);
  return outcome;
}
