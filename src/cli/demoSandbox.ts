/**
 * The demo's side of the sandbox (loaded on use: it brings dockerode, pg and ioredis): bring the audit-app up the
 * way `runbooks sandbox up` does, deploy and break it as the scenario says, and clean up afterwards.
 */
import {
  auditAppTargets,
  backendImage,
  DEFAULT_BACKEND_VERSION,
  describeAuditApp,
  resetBackendFaults,
  startAuditApp,
  startTraffic,
  type AuditAppPorts,
  type StartedAuditApp,
} from '../sandbox/auditApp';
import { dockerClient } from '../activities';
import { engineNote, sandboxBreak, sandboxDown, sandboxUp } from '../sandbox/commands';
import type { AlertScenario } from '../sandbox/scenarios';
import { sandboxStep } from './commands/sandbox';

export interface BrokenSandbox {
  /** The config that points at it (`auditAppTargets`). */
  targets: ReturnType<typeof auditAppTargets>;
  /** What the fault did, one sentence; undefined when nothing was broken. */
  broke?: string;
  /** The sandbox, as started. */
  app: StartedAuditApp;
  /** The Docker engine it runs on. */
  dockerHost: string;
  /** Stops the traffic; removes the sandbox unless it was there before the demo or `keep`. Says what it did. */
  cleanUp(keep: boolean): Promise<string>;
}

export interface SandboxPlace {
  prefix: string;
  ports: AuditAppPorts;
}

/** The targets config of the sandbox at `place`, without touching Docker (for `demo --print-config`). */
export function sandboxTargetsAt(place: SandboxPlace): ReturnType<typeof auditAppTargets> {
  return auditAppTargets(describeAuditApp(place));
}

export async function breakSandbox(options: {
  /** What to break (nothing: the sandbox is only brought up). */
  scenario: Pick<AlertScenario, 'deploy' | 'fault' | 'traffic'>;
  place: SandboxPlace;
  dockerHost: string | undefined;
  log: (line: string) => void;
}): Promise<BrokenSandbox> {
  const { scenario, place, log } = options;
  const deploy = scenario.deploy;
  const up = await sandboxStep(() =>
    sandboxUp({ dockerHost: options.dockerHost, prefix: place.prefix, ports: place.ports, log, backendImages: deploy ? [{ version: DEFAULT_BACKEND_VERSION }, deploy] : undefined }),
  );
  // Someone's sandbox (a container of it was there): the demo fixes what it breaks, and leaves it be.
  const existed = Object.values(up.app.actions).some((action) => action !== 'created');
  log(`the sandbox is up (${Object.entries(up.app.actions).map(([role, action]) => `${role} ${action}`).join(', ')}): ${up.app.urls.health} answers 200`);
  // A sandbox that ran before may still carry a knob an earlier demo or `sandbox break` set.
  await resetBackendFaults(up.app);
  const dockerHost = up.engine.dockerHost;
  let broke: string | undefined;
  if (deploy) {
    // The bad version replaces the running good one, which the container's label keeps as the way back.
    const previousBackendImage = backendImage(deploy.previousVersion);
    await sandboxStep(() =>
      startAuditApp(dockerClient(dockerHost), { prefix: place.prefix, ports: place.ports, backendVersion: deploy.version, previousBackendImage, requireHealthy: false }),
    );
    broke = `deployed ${backendImage(deploy.version)} to ${up.app.containers.backend}: its /health answers 500 (the image before it: ${previousBackendImage})`;
  } else if (scenario.fault) {
    broke = (await sandboxStep(() => sandboxBreak({ dockerHost, prefix: place.prefix, fault: scenario.fault!.name, ...scenario.fault!.options }))).description;
  }
  const shape = typeof scenario.traffic === 'object' ? scenario.traffic : {};
  const traffic = scenario.traffic ? startTraffic(up.app, shape) : undefined;
  if (traffic && shape.clients) {
    log(`flooding ${up.app.urls.api}${shape.path ?? ''} from ${shape.clients.length} client(s) (X-Forwarded-For ${shape.clients.join(', ')})${shape.perSecond ? `, ${shape.perSecond} request(s)/s each` : ''}`);
  } else if (traffic) log(`sending steady traffic to ${up.app.urls.api}`);
  return {
    targets: up.targets,
    broke,
    app: up.app,
    dockerHost,
    async cleanUp(keep) {
      const sent = traffic ? ` (${await traffic.stop()} requests sent)` : '';
      const note = engineNote(up.engine);
      if (keep || existed) return `left the sandbox running${sent}: \`npx runbooks sandbox status\`; \`npx runbooks sandbox down\` removes it${note ? `\n${note}` : ''}`;
      const down = await sandboxDown({ dockerHost, prefix: place.prefix });
      return `removed the sandbox${sent}: ${down.removed.join(', ')}${note ? `\n${note}` : ''}`;
    },
  };
}
