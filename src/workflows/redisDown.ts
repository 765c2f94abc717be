/**
 * Runbook §6 "Redis Connection Failures": diagnose (PING, memory, clients), restart the container when
 * Redis does not answer, verify PING, then treat memory (FLUSHDB, only with approval) and persistence
 * (BGSAVE) problems.
 */
import type { RedisDiagnosis } from '../activities/redis';
import { redis } from './activityProxies';
import type { IncidentInput, IncidentOutcome } from './lifecycle/definitions';
import type { Incident } from './lifecycle/incident';
import { runIncident } from './lifecycle/runIncident';
import { restartContainer } from './steps';

/** Used memory at or above this share of `maxmemory` counts as a memory problem. */
const MEMORY_PRESSURE = 0.9;

type RedisTarget = NonNullable<IncidentInput['targets']['redis']>;

export async function redisIncident(input: IncidentInput): Promise<IncidentOutcome> {
  const target = input.targets.redis;
  return runIncident(input, {
    prevention: ['Set maxmemory-policy allkeys-lru.', 'Monitor Redis memory usage.', 'Take regular persistence snapshots.'],
    verify: async () => target !== undefined && (await redis.waitForRedis(5_000)).healthy,
    respond: async (incident) => {
      if (!target) {
        incident.record('note', 'No Redis target is configured (targets.redis): nothing to act on.');
        return false;
      }
      let diagnosis = await diagnose(incident, 'Diagnose: PING, INFO memory, clients');
      if (!diagnosis.reachable) {
        if (!(await restart(incident, target))) return false;
        diagnosis = await diagnose(incident, 'Diagnose again after the restart');
      }
      if (diagnosis.maxMemoryPolicy !== undefined && diagnosis.maxMemoryPolicy !== 'allkeys-lru') {
        incident.followUp(`Set maxmemory-policy allkeys-lru (it is ${diagnosis.maxMemoryPolicy}).`);
      }
      if (hasPersistenceProblem(diagnosis)) await backgroundSave(incident);
      if ((diagnosis.memoryRatio ?? 0) >= MEMORY_PRESSURE) await flushWithApproval(incident, diagnosis);
      return true;
    },
  });
}

async function diagnose(incident: Incident, title: string): Promise<RedisDiagnosis> {
  const d = await incident.step(title, () => redis.diagnoseRedis.executeWithOptions({ summary: 'redis-cli ping; info memory; client list' }, []));
  const memory = d.memoryRatio === undefined ? `${d.usedMemoryBytes} bytes used, no maxmemory` : `${Math.round(d.memoryRatio * 100)}% of maxmemory`;
  incident.record(
    'finding',
    d.reachable
      ? `Redis answers PING; ${memory}; ${d.connectedClients} client(s); ${d.keys} key(s); policy ${d.maxMemoryPolicy}; last BGSAVE ${d.lastBgsaveStatus}.`
      : `Redis does not answer: ${d.error}.`,
    { data: { ...d } },
  );
  return d;
}

async function restart(incident: Incident, target: RedisTarget): Promise<boolean> {
  await restartContainer(incident, target.container);
  const wait = await incident.step('Verify: PING', () =>
    redis.waitForRedis.executeWithOptions({ summary: 'Wait for PONG' }, [target.healthyWithinMs]),
  );
  incident.record('finding', wait.healthy ? `Redis answers PING after the restart (${wait.attempts} attempt(s)).` : `Redis still does not answer: ${wait.error}.`, {
    data: { ...wait },
  });
  return wait.healthy;
}

function hasPersistenceProblem(d: RedisDiagnosis): boolean {
  return (d.lastBgsaveStatus !== undefined && d.lastBgsaveStatus !== 'ok') || d.aofLastWriteStatus === 'err';
}

async function backgroundSave(incident: Incident): Promise<void> {
  const save = await incident.act('BGSAVE', () => redis.startBackgroundSave.executeWithOptions({ summary: 'redis-cli BGSAVE' }, []));
  incident.record('action', save.alreadyRunning ? 'A background save was already running.' : 'Started a background save (BGSAVE).');
  incident.followUp('Check the disk space where Redis persists (df -h).');
}

async function flushWithApproval(incident: Incident, d: RedisDiagnosis): Promise<void> {
  const percent = Math.round((d.memoryRatio ?? 0) * 100);
  const approved = await incident.approval('flush-cache', `Redis memory is at ${percent}% of maxmemory. FLUSHDB (drops ${d.keys} key(s))?`);
  if (!approved) {
    incident.record('note', 'FLUSHDB rejected: the cache is left as it is.');
    return;
  }
  const flush = await incident.act('FLUSHDB', () => redis.flushRedisDb.executeWithOptions({ summary: 'redis-cli FLUSHDB' }, []));
  incident.record('action', `Flushed the cache: ${flush.keysDropped} key(s) dropped.`, { data: { ...flush } });
}
