import { isIP } from 'node:net';
import { ApplicationFailure } from '@temporalio/activity';
import { z } from 'zod';
import type { Config } from '../config/schema';
import { ActivityErrorType } from '../runbooks/errorTypes';
import { blockRules, BlockRefusedError, checkedBlockTarget, checkedUnblockTarget, denyListOf } from '../security/denyList';
import { pollUntil } from './poll';
import { targetConfig, type TargetRef } from './targets';
import { withRedis } from './redisConnection';

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
  /** The busiest clients by their counter, highest first (`client`: the key without its prefix). */
  top: { key: string; client: string; count: number }[];
  /** The sum of every counter scanned: all requests of the current windows. */
  total: number;
  /** True when the scan stopped at its key or time bound before the end. */
  truncated: boolean;
}

/** A temporary raise of the limit, as the runbooks record it in `rateLimit.raiseKey`. */
export interface RateLimitRaise {
  incident: string;
  /** The limit before it, null when the limit key was absent (the backend's default applied). */
  previous: number | null;
  value: number;
  at: string;
}

export interface RateLimitSettings {
  /** The limit the backend applies now. */
  limit: number;
  /** `redis`: the limit key holds it; `default`: the key is absent and the backend's default applies. */
  source: 'redis' | 'default';
  /** Clients in the allow-list set. */
  allowListed: number;
  /** A raise a runbook made and has not undone yet. */
  raise?: RateLimitRaise;
}

export interface RaiseResult {
  /**
   * raised: done now; already-raised: this incident had done it (a retry, or the alert re-sent); held: another
   * incident's raise is in place (not raised twice); changed: the limit is not the one the runbook saw (not raised).
   */
  outcome: 'raised' | 'already-raised' | 'held' | 'changed';
  /** The limit after the call (null: absent). */
  limit: number | null;
  /** The raise in place, for `held`. */
  raise?: RateLimitRaise;
}

export interface RestoreResult {
  /**
   * restored: the previous value is back (or the key deleted); already-restored: it was (a retry); changed: someone set
   * another value since the raise, which is left as it is; not-ours: another incident's raise is in place, left alone.
   */
  outcome: 'restored' | 'already-restored' | 'changed' | 'not-ours';
  limit: number | null;
}

interface RaiseRef extends RedisTargetRef {
  /** The incident (workflow ID) that owns the raise; a value in Redis, never a key. */
  incident: string;
  /** The limit the runbook saw (null: absent): the raise happens only if it is still so. */
  expected: number | null;
  value: number;
  /** How long the raise record lives if nothing undoes it (the raise's duration and a margin). */
  recordTtlMs: number;
}

interface RestoreRef extends RedisTargetRef {
  incident: string;
  /** What to put back: a number, or null to delete the key (it was absent). */
  previous: number | null;
  /** The value the runbook set: only that is replaced. */
  raised: number;
}

/**
 * KEYS: limit key, raise record. ARGV: incident, expected ('' = absent), value, record TTL ms, record JSON.
 * One raise at a time: a record of this incident's own means it is done already; another incident's, that it stays.
 */
const RAISE_SCRIPT = `
local record = redis.call('GET', KEYS[2])
local current = redis.call('GET', KEYS[1])
if record then
  if cjson.decode(record).incident == ARGV[1] then return {'already-raised', current or '', ''} end
  return {'held', current or '', record}
end
if ARGV[2] == '' then
  if current then return {'changed', current, ''} end
elseif not current or tonumber(current) ~= tonumber(ARGV[2]) then
  return {'changed', current or '', ''}
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
return {'raised', ARGV[3], ''}
`;

/** KEYS: limit key, raise record. ARGV: incident, previous ('' = delete), raised value. */
const RESTORE_SCRIPT = `
local record = redis.call('GET', KEYS[2])
if record and cjson.decode(record).incident ~= ARGV[1] then return {'not-ours', redis.call('GET', KEYS[1]) or ''} end
local current = redis.call('GET', KEYS[1])
local function matches(value) if value == '' then return not current end return current and tonumber(current) == tonumber(value) end
if current and tonumber(current) == tonumber(ARGV[3]) then
  if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
  redis.call('DEL', KEYS[2])
  return {'restored', ARGV[2]}
end
if record then redis.call('DEL', KEYS[2]) end
if matches(ARGV[2]) then return {'already-restored', current or ''} end
return {'changed', current or ''}
`;

/** A plain IPv4 or IPv6 address of one client: not a network, not a hostname, not the unspecified address. */
export function isClientAddress(text: string): boolean {
  return text.length <= 45 && isIP(text) !== 0 && text !== '0.0.0.0' && !/^[0:]+$/.test(text);
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
  const keysOf = (target: RedisTargetRef['target']) => targetConfig(config, target).rateLimit;
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
      const prefix = keysOf(target).counterPrefix;
      return withRedis(urlOf(target), async (redis) => {
        const deadline = Date.now() + maxMs;
        const counts: { key: string; client: string; count: number }[] = [];
        let cursor = '0';
        let keys = 0;
        let leftOut: boolean;
        do {
          const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', Math.max(1, Math.min(500, maxKeys - keys)));
          cursor = next;
          // COUNT is only a hint to Redis: a step may return more keys than the bound has room for.
          const batch = found.slice(0, maxKeys - keys);
          leftOut = batch.length < found.length;
          const values = batch.length > 0 ? await redis.mget(...batch) : [];
          batch.forEach((key, i) => {
            const count = Number(values[i]);
            if (Number.isFinite(count)) counts.push({ key, client: key.slice(prefix.length), count });
          });
          keys += batch.length;
        } while (cursor !== '0' && !leftOut && keys < maxKeys && Date.now() < deadline);
        counts.sort((a, b) => b.count - a.count || a.client.localeCompare(b.client));
        const total = counts.reduce((sum, c) => sum + c.count, 0);
        return { keys, top: counts.slice(0, top), total, truncated: cursor !== '0' || leftOut };
      });
    },

    /** The limit the backend applies (the limit key, else its default), the allow-list's size, a raise in place. Read-only. */
    async rateLimitSettings({ target }: RedisTargetRef): Promise<RateLimitSettings> {
      const keys = keysOf(target);
      return withRedis(urlOf(target), async (redis) => {
        const [raw, allowListed, record] = await Promise.all([redis.get(keys.limitKey), redis.scard(keys.allowListKey), redis.get(keys.raiseKey)]);
        const stored = raw === null ? undefined : Number(raw);
        const raise = parseRaise(record);
        return {
          limit: stored !== undefined && Number.isFinite(stored) ? stored : keys.defaultLimit,
          source: stored !== undefined && Number.isFinite(stored) ? 'redis' : 'default',
          allowListed,
          ...(raise ? { raise } : {}),
        };
      });
    },

    /**
     * Sets the limit to `value` if it is still `expected`, and records the raise for `incident` — one script, atomic.
     * On retry (or a second call of the same incident) it finds its own record and changes nothing: raised once. A
     * raise of another incident in place, or a limit someone changed, is reported and left as it is.
     */
    async raiseRateLimit({ target, incident, expected, value, recordTtlMs }: RaiseRef): Promise<RaiseResult> {
      if (!Number.isSafeInteger(value) || value < 1) throw ApplicationFailure.nonRetryable(`not a limit: ${value}`, ActivityErrorType.invalidInput);
      const keys = keysOf(target);
      const record: RateLimitRaise = { incident, previous: expected, value, at: new Date().toISOString() };
      return withRedis(urlOf(target), async (redis) => {
        const [outcome, current, held] = (await redis.eval(RAISE_SCRIPT, 2, keys.limitKey, keys.raiseKey, incident, expected === null ? '' : String(expected), String(value), String(Math.max(1, Math.round(recordTtlMs))), JSON.stringify(record))) as [RaiseResult['outcome'], string, string];
        const raise = parseRaise(held || null);
        return { outcome, limit: current === '' ? null : Number(current), ...(raise ? { raise } : {}) };
      });
    },

    /**
     * Puts the limit back to `previous` (deletes the key when it was absent) if it is still the raised value, and drops
     * the raise record. A retry finds it restored already and changes nothing; a value someone set since is kept.
     */
    async restoreRateLimit({ target, incident, previous, raised }: RestoreRef): Promise<RestoreResult> {
      const keys = keysOf(target);
      return withRedis(urlOf(target), async (redis) => {
        const [outcome, current] = (await redis.eval(RESTORE_SCRIPT, 2, keys.limitKey, keys.raiseKey, incident, previous === null ? '' : String(previous), String(raised))) as [RestoreResult['outcome'], string];
        return { outcome, limit: current === '' ? null : Number(current) };
      });
    },

    /** SADD of one client address to the allow-list; idempotent (a second add finds it there). Refuses anything but one plain IP. */
    async allowClient({ target, client }: RedisTargetRef & { client: string }): Promise<{ added: boolean; allowListed: number }> {
      if (!isClientAddress(client)) throw ApplicationFailure.nonRetryable(`not one client's IP address: ${JSON.stringify(client.slice(0, 64))}`, ActivityErrorType.invalidInput);
      const { allowListKey } = keysOf(target);
      return withRedis(urlOf(target), async (redis) => {
        const added = await redis.sadd(allowListKey, client);
        return { added: added === 1, allowListed: await redis.scard(allowListKey) };
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


/** The raise record as the runbooks write it; anything else in that key is not a raise of theirs. */
const RateLimitRaiseSchema = z.strictObject({
  incident: z.string().min(1).max(300),
  previous: z.number().int().nullable(),
  value: z.number().int().min(1),
  at: z.string().max(64),
});

function parseRaise(text: string | null): RateLimitRaise | undefined {
  if (!text) return undefined;
  try {
    const parsed = RateLimitRaiseSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
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
