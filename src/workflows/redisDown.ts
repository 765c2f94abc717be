/**
 * Runbook §6 "Redis Connection Failures".
 * Diagnosis: `redis-cli ping`, `info memory`, `CLIENT LIST`.
 * Resolution: restart Redis; if memory issues, flush the cache (here: only with approval, and only under memory
 * pressure); if persistence issues, BGSAVE (and check disk space).
 * Prevention: `maxmemory-policy allkeys-lru`, memory monitoring, regular snapshots.
 */
import type { RedisDiagnosis } from '../activities/redis';
import type { IncidentInput, IncidentOutcome, TargetFacts } from '../incidents/model';
import { policyOf } from '../runbooks/catalog';
import { redis } from './activityProxies';
import type { RunbookContext, VerifyContext } from './lifecycle/runbookContext';
import { runIncident } from './lifecycle/runIncident';
import { restartContainer } from './steps/docker';

export async function redisDown(input: IncidentInput): Promise<IncidentOutcome> {
  const target = input.targets.redis;
  const { memoryPressure } = policyOf('redis-down', input.policy);
  return runIncident(input, {
    prevention: ['Set maxmemory-policy allkeys-lru.', 'Monitor Redis memory usage.', 'Take regular persistence snapshots.'],
    verify: async (rb) => target !== undefined && (await waitForPong(rb, target, 'after the alert resolved')),
    respond: async (rb) => {
      if (!target) {
        rb.note('No Redis target is configured (targets.redis): nothing to act on.');
        return false;
      }
      // Diagnosis
      let diagnosis = await diagnose(rb, 'Diagnose: PING, INFO memory, clients');

      // Resolution: restart Redis when it does not answer…
      if (!diagnosis.reachable) {
        await restartContainer(rb, 'redis', target);
        if (!(await waitForPong(rb, target, 'after the restart'))) return false;
        diagnosis = await diagnose(rb, 'Diagnose again after the restart');
      }
      // …persistence issues: BGSAVE…
      if (hasPersistenceProblem(diagnosis)) await backgroundSave(rb);
      // …memory issues: flush the cache, with approval.
      if ((diagnosis.memoryRatio ?? 0) >= memoryPressure) await flushWithApproval(rb, diagnosis);

      // Prevention
      if (diagnosis.maxMemoryPolicy !== undefined && diagnosis.maxMemoryPolicy !== 'allkeys-lru') {
        rb.followUp(`Set maxmemory-policy allkeys-lru (it is ${diagnosis.maxMemoryPolicy}).`);
      }
      return true;
    },
  });
}

function diagnose(rb: RunbookContext, title: string): Promise<RedisDiagnosis> {
  return rb.step(redis.diagnoseRedis, { target: 'redis' }, { title, summary: 'redis-cli ping; info memory; client list', record: describeRedis });
}

async function waitForPong(rb: VerifyContext, target: TargetFacts, when: string): Promise<boolean> {
  const wait = await rb.step(redis.waitForRedis, { target: 'redis', withinMs: target.healthyWithinMs }, {
    title: `Verify: PING ${when}`,
    summary: 'Wait for PONG',
    record: (w) => (w.healthy ? `Redis answers PING ${when} (${w.attempts} attempt(s)).` : `Redis still does not answer ${when}: ${w.error}.`),
  });
  return wait.healthy;
}

function hasPersistenceProblem(d: RedisDiagnosis): boolean {
  return (d.lastBgsaveStatus !== undefined && d.lastBgsaveStatus !== 'ok') || d.aofLastWriteStatus === 'err';
}

async function backgroundSave(rb: RunbookContext): Promise<void> {
  await rb.act(redis.startBackgroundSave, { target: 'redis' }, {
    title: 'BGSAVE',
    summary: 'redis-cli BGSAVE',
    record: (save) => (save.alreadyRunning ? 'A background save was already running.' : 'Started a background save (BGSAVE).'),
  });
  rb.followUp('Check the disk space where Redis persists (df -h).');
}

async function flushWithApproval(rb: RunbookContext, d: RedisDiagnosis): Promise<void> {
  const percent = Math.round((d.memoryRatio ?? 0) * 100);
  if (!(await rb.approval('flush-cache', `Redis memory is at ${percent}% of maxmemory. FLUSHDB (drops ${d.keys} key(s))?`))) {
    rb.note('FLUSHDB rejected: the cache is left as it is.');
    return;
  }
  await rb.act(redis.flushRedisDb, { target: 'redis' }, {
    title: 'FLUSHDB',
    summary: 'redis-cli FLUSHDB',
    record: (flush) => `Flushed the cache: ${flush.keysDropped} key(s) dropped.`,
  });
}

function describeRedis(d: RedisDiagnosis): string {
  if (!d.reachable) return `Redis does not answer: ${d.error}.`;
  const memory = d.memoryRatio === undefined ? `${d.usedMemoryBytes} bytes used, no maxmemory` : `${Math.round(d.memoryRatio * 100)}% of maxmemory`;
  return `Redis answers PING; ${memory}; ${d.connectedClients} client(s); ${d.keys} key(s); policy ${d.maxMemoryPolicy}; last BGSAVE ${d.lastBgsaveStatus}.`;
}
