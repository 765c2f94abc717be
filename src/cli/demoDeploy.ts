/**
 * `runbooks demo --scenario deploy`: the runbook's Standard Deployment, for real, on the sandbox. A worker process
 * (`runbooks worker`) runs the deployments with the config pointed at the sandbox; the demo deploys a good version
 * (built from the running image, migrated, verified, watched), then a bad one whose /health fails, which the
 * deployment rolls back by itself, opening an incident (the demo resolves it afterwards). Exits 0 when the good
 * one succeeded and the bad one was rolled back with its incident.
 */
import type { Client } from '@temporalio/client';
import { dockerClient } from '../activities';
import type { Config, ConfigInput } from '../config/schema';
import type { DeploymentOutcome } from '../deployments/model';
import { actOnIncident } from '../incidents/operations';
import { DeploymentRefused, startDeploy } from '../intake/deploy';
import { DEFAULT_BACKEND_VERSION, ensureAuditAppImages, SANDBOX_DEPLOY } from '../sandbox/auditApp';
import type { DeployScenario } from '../sandbox/scenarios';
import { withClient } from './context';
import type { SandboxPlace } from './demoSandbox';
import { runProcedureDemo } from './demoProcedure';
import { CliError, firstLine } from './errors';

interface DeployDemoInput {
  scenario: DeployScenario;
  place: SandboxPlace;
  keep: boolean;
}

export async function runDeployDemo(input: DeployDemoInput, loaded: { config: Config; file?: string }): Promise<void> {
  const { good, bad, watch } = input.scenario.deployment;
  const configFor = (fileInput: ConfigInput) => ({ deploy: { ...fileInput.deploy, ...SANDBOX_DEPLOY, watch } });
  await runProcedureDemo({ name: 'deploy', summary: input.scenario.summary, place: input.place, keep: input.keep, loaded, configFor }, async ({ say, sandbox, config, startWorker }) => {
    const started = Date.now();
    const built = await ensureAuditAppImages(dockerClient(sandbox.dockerHost), { backends: [{ version: DEFAULT_BACKEND_VERSION }, bad] });
    if (built.length) say(`built ${built.map((b) => `${b.image} (${b.seconds.toFixed(1)} s)`).join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    startWorker();
    await withClient(config, async (client) => {
      const first = await deployAndWait(client, config, good, say);
      const second = await deployAndWait(client, config, bad.version, say);
      if (second.incident) {
        await actOnIncident(client, second.incident, { kind: 'resolve', by: 'demo', note: 'the demo is over: the deployment rolled itself back' }).then(
          () => say(`  resolved the demo's incident ${second.incident} as demo`),
          (err: unknown) => say(`  (could not resolve ${second.incident}: ${firstLine(err)})`),
        );
      }
      const asExpected = first.record.result === 'succeeded' && second.record.result === 'rolled-back' && second.incident !== undefined;
      say(`\nthe deployment history: npx runbooks deployments (the demo's worker wrote it to ${config.audit.schema})`);
      if (!asExpected) throw new CliError(`expected ${good} to succeed and ${bad.version} to be rolled back with an incident; got ${first.record.result} and ${second.record.result}`);
    });
  });
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
