/**
 * The deny-list the backend enforces (runbook §7 "Isolate"), as the worker's activities and the operator commands
 * (`runbooks unblock`, `DELETE /blocks/:ip`) reach it: a Redis set (`security.denyList.key` of `targets.redis`; the
 * audit-app answers its members 403). Every entry is checked before it is written: the shared rules of address.ts,
 * cross-checked with node:net, so nothing wider than intended ever reaches the set.
 */
import { isIP } from 'node:net';
import type Redis from 'ioredis';
import { withRedis } from '../activities/redisConnection';
import type { Config } from '../config/schema';
import { policyOf } from '../runbooks/catalog';
import { checkBlockTarget, parseNetwork, type BlockRules, type IpNetwork } from './address';

export class BlockRefusedError extends Error {
  override readonly name = 'BlockRefusedError';
}

/** The rules from the config: the policy's widest prefixes, the allow-list and the runbooks' own addresses. */
export function blockRules(config: Pick<Config, 'security' | 'policies'>): BlockRules {
  return {
    minPrefix: widestPrefixes(config),
    allowList: config.security.allowList,
    ownAddresses: config.security.ownAddresses,
  };
}

/** The widest network the security runbook blocks or looks into, per family (the policy's minPrefixV4, minPrefixV6). */
export function widestPrefixes(config: Pick<Config, 'policies'>): BlockRules['minPrefix'] {
  const policy = policyOf('security-incident', config.policies['security-incident']);
  return { 4: policy.minPrefixV4, 6: policy.minPrefixV6 };
}

/** What may be blocked, canonical; throws BlockRefusedError saying why not. */
export function checkedBlockTarget(value: string, rules: BlockRules): IpNetwork {
  const checked = checkBlockTarget(value, rules);
  if (!checked.ok) throw new BlockRefusedError(checked.reason);
  crossCheck(checked.network);
  return checked.network;
}

/** What may be unblocked: any well-formed address or network (lifting a block never widens anything). */
export function checkedUnblockTarget(value: string): IpNetwork {
  const parsed = parseNetwork(value);
  if (!parsed.ok) throw new BlockRefusedError(parsed.reason);
  crossCheck(parsed.network);
  return parsed.network;
}

/** node:net must agree that the address part is an address of that family. */
function crossCheck(network: IpNetwork): void {
  const address = network.text.split('/')[0]!;
  if (isIP(address) !== network.family) throw new BlockRefusedError(`${network.text} is not an IPv${network.family} address to node:net`);
}

export interface DenyList {
  /** `Redis set blocklist:ips`, for messages. */
  readonly name: string;
  /** SADD: true when it was added, false when it was there already (a retry, a re-sent alert). */
  add(entry: string): Promise<{ added: boolean; size: number }>;
  /** SREM: true when it was there. */
  remove(entry: string): Promise<{ removed: boolean; size: number }>;
  has(entry: string): Promise<boolean>;
  members(): Promise<string[]>;
}

/** The configured deny-list; a short-lived Redis connection per call (the URL, which may hold a password, stays here). */
export function denyListOf(config: Pick<Config, 'security' | 'targets'>): DenyList {
  const { key } = config.security.denyList;
  const url = config.targets.redis?.url;
  const onList = <T>(use: (redis: Redis) => Promise<T>): Promise<T> => {
    if (!url) throw new Error('no Redis is configured (targets.redis), so there is no deny-list (security.denyList)');
    return withRedis(url, use);
  };
  return {
    name: `Redis set ${key}`,
    add: (entry) => onList(async (redis) => ({ added: (await redis.sadd(key, entry)) === 1, size: await redis.scard(key) })),
    remove: (entry) => onList(async (redis) => ({ removed: (await redis.srem(key, entry)) === 1, size: await redis.scard(key) })),
    has: (entry) => onList(async (redis) => (await redis.sismember(key, entry)) === 1),
    members: () => onList((redis) => redis.smembers(key)),
  };
}
