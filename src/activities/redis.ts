import { ApplicationFailure } from '@temporalio/activity';
import Redis from 'ioredis';
import type { Config } from '../config/schema';
import { ActivityErrorType } from '../runbooks/errorTypes';
import { blockRules, BlockRefusedError, checkedBlockTarget, checkedUnblockTarget, denyListOf } from '../security/denyList';
import { pollUntil } from './poll';
import { targetConfig, type TargetRef } from './targets';

type RedisTargetRef = TargetRef<'redis'>;

export interface RedisDiagnosis {
  reachable: boolean;
  error?: string;
  usedMemoryBytes?: number;
  maxMemoryBytes?: number;
  /** used / max; absent when no maxmemory is set. */
  memoryRatio?: number;
  maxMemoryPolicy?: string;
  connectedClients?: number;
  lastBgsaveStatus?: string;
  aofLastWriteStatus?: string;
  keys?: number;
}

export interface RateLimitStatus {
  /** `rate_limit:*` keys counted by SCAN (never KEYS). */
  keys: number;
  /** The busiest clients by their counter, highest first. */
  top: { key: string; count: number }[];
  /** True when the scan stopped at its key or time bound before the end. */
  truncated: boolean;
}

interface RedisWait {
  healthy: boolean;
  attempts: number;
  error?: string;
}

/** An IP address or CIDR network on the deny-list (`security.denyList`), as the workflow asks for it. */
export interface DenyListRef extends RedisTargetRef {
  source: string;
}

export interface BlockResult {
  /** The canonical entry written. */
  source: string;
  /** `Redis set blocklist:ips`. */
  denyList: string;
  /** False when it was on the list already: blocking twice is one block. */
  added: boolean;
  /** Entries on the list now. */
  size: number;
}

/** The Redis URL comes from the worker's config (`targets.redis.url`), never from workflow history: it may carry a password. */
export function createRedisActivities(config: Pick<Config, 'targets' | 'security' | 'policies'>) {
  const urlOf = (target: RedisTargetRef['target']) => targetConfig(config, target).url;
  const denyList = (target: RedisTargetRef['target']) => {
    targetConfig(config, target);
    return denyListOf(config);
  };
  /** The workflow checked it already; the worker checks again with its own config (and node:net): refused for good. */
  const refusedForGood = <T>(check: () => T): T => {
    try {
      return check();
    } catch (err) {
      if (err instanceof BlockRefusedError) throw ApplicationFailure.nonRetryable(err.message, ActivityErrorType.blockRefused);
      throw err;
    }
  };
  return {
    /**
     * Runbook §7 "Isolate": `SADD <security.denyList.key> <source>`, after checking the source again against the
     * worker's rules (never wider than the policy's prefixes, never loopback, allow-listed or the runbooks' own).
     * Idempotent: a retry or a second alert finds the member there and adds nothing (`added: false`).
     */
    async blockSource({ target, source }: DenyListRef): Promise<BlockResult> {
      const entry = refusedForGood(() => checkedBlockTarget(source, blockRules(config))).text;
      const list = denyList(target);
      const { added, size } = await list.add(entry);
      return { source: entry, denyList: list.name, added, size };
    },

    /** `SREM`: lifts a block. Idempotent: a second removal finds nothing (`removed: false`). */
    async unblockSource({ target, source }: DenyListRef): Promise<{ source: string; denyList: string; removed: boolean; size: number }> {
      const entry = refusedForGood(() => checkedUnblockTarget(source)).text;
      const list = denyList(target);
      const { removed, size } = await list.remove(entry);
      return { source: entry, denyList: list.name, removed, size };
    },

    /** `SISMEMBER`: is the source on the deny-list now? Read-only. */
    async isBlocked({ target, source }: DenyListRef): Promise<{ source: string; denyList: string; blocked: boolean }> {
      const entry = refusedForGood(() => checkedUnblockTarget(source)).text;
      const list = denyList(target);
      return { source: entry, denyList: list.name, blocked: await list.has(entry) };
    },

    /** `PING`, `INFO memory|clients|persistence`, `CONFIG GET maxmemory-policy`, `DBSIZE`. Read-only. */
    async diagnoseRedis({ target }: RedisTargetRef): Promise<RedisDiagnosis> {
      const url = urlOf(target);
      return withRedis(url, async (redis) => {
        await redis.ping();
        const info = parseInfo(await redis.info());
        const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
        const used = numberOrUndefined(info.used_memory);
        const max = numberOrUndefined(info.maxmemory);
        return {
          reachable: true,
          usedMemoryBytes: used,
          maxMemoryBytes: max,
          memoryRatio: used !== undefined && max ? used / max : undefined,
          maxMemoryPolicy: policy,
          connectedClients: numberOrUndefined(info.connected_clients),
          lastBgsaveStatus: info.rdb_last_bgsave_status,
          aofLastWriteStatus: info.aof_last_write_status,
          keys: await redis.dbsize(),
        };
      }).catch((err: Error) => ({ reachable: false, error: err.message }));
    },

    /** Polls PING until PONG or `withinMs` passes. Read-only. */
    async waitForRedis({ target, withinMs }: RedisTargetRef & { withinMs: number }): Promise<RedisWait> {
      const url = urlOf(target);
      const ping = () =>
        withRedis(url, (redis) => redis.ping()).then(
          (reply): { healthy: boolean; error?: string } => ({ healthy: reply === 'PONG' }),
          (err: Error) => ({ healthy: false, error: err.message }),
        );
      return pollUntil(withinMs, ping, (r) => r.healthy);
    },

    /** `FLUSHDB`: idempotent (a second flush finds nothing). Returns how many keys were dropped. */
    async flushRedisDb({ target }: RedisTargetRef): Promise<{ keysDropped: number }> {
      return withRedis(urlOf(target), async (redis) => {
        const keysDropped = await redis.dbsize();
        await redis.flushdb();
        return { keysDropped };
      });
    },

    /**
     * The runbook's `redis-cli --scan --pattern "rate_limit:*"`: SCAN with a bounded COUNT, at most `maxKeys` keys
     * and `maxMs` of scanning, then the counters of the busiest keys. Read-only.
     */
    async rateLimitStatus({ target, maxKeys = 100_000, maxMs = 5_000, top = 10 }: RedisTargetRef & { maxKeys?: number; maxMs?: number; top?: number }): Promise<RateLimitStatus> {
      return withRedis(urlOf(target), async (redis) => {
        const deadline = Date.now() + maxMs;
        const counts: { key: string; count: number }[] = [];
        let cursor = '0';
        let keys = 0;
        do {
          const [next, batch] = await redis.scan(cursor, 'MATCH', 'rate_limit:*', 'COUNT', 500);
          cursor = next;
          const values = batch.length > 0 ? await redis.mget(...batch) : [];
          batch.forEach((key, i) => {
            const count = Number(values[i]);
            if (Number.isFinite(count)) counts.push({ key, count });
          });
          keys += batch.length;
        } while (cursor !== '0' && keys < maxKeys && Date.now() < deadline);
        counts.sort((a, b) => b.count - a.count);
        return { keys, top: counts.slice(0, top), truncated: cursor !== '0' };
      });
    },

    /** `BGSAVE`; a save already running counts as done, so a retry is harmless. */
    async startBackgroundSave({ target }: RedisTargetRef): Promise<{ started: boolean; alreadyRunning: boolean }> {
      return withRedis(urlOf(target), async (redis) => {
        try {
          await redis.bgsave();
          return { started: true, alreadyRunning: false };
        } catch (err) {
          if (/in progress/i.test((err as Error).message)) return { started: false, alreadyRunning: true };
          throw err;
        }
      });
    },
  };
}

export type RedisActivities = ReturnType<typeof createRedisActivities>;

/** A short-lived connection per call: a runbook must not depend on a client that broke with the server. */
async function withRedis<T>(url: string, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined); // surfaced through the failing command instead
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields[line.slice(0, at)] = line.slice(at + 1);
  }
  return fields;
}

function numberOrUndefined(value: string | undefined): number | undefined {
  return value === undefined || value === '' ? undefined : Number(value);
}
