/**
 * IP addresses and CIDR networks a security runbook may block, parsed and checked in code: no regex-and-hope, no
 * shell, no DNS (a hostname is refused, never resolved). Pure and deterministic (no Node builtins), so the workflow
 * refuses a hostile label before any activity runs, and the activities and the CLI check again with the same rules
 * (the activities also cross-check with `node:net`).
 */

export type IpFamily = 4 | 6;

/** An address is a network of the full width (/32, /128). `text` is canonical: IPv4 dotted, IPv6 as RFC 5952. */
export interface IpNetwork {
  family: IpFamily;
  /** The address (for a network, its first address) as an unsigned integer. */
  bits: bigint;
  prefix: number;
  /** `203.0.113.7`, `2001:db8::/48`: the address alone when the prefix is the full width. */
  text: string;
}

/** Longest text considered at all; anything longer is refused unread (a 10 kB label is not parsed). */
const MAX_TEXT = 64;
const WIDTH: Record<IpFamily, number> = { 4: 32, 6: 128 };

export type Parsed = { ok: true; network: IpNetwork } | { ok: false; reason: string };

/** How a refused value is shown: quoted, cut short, control characters escaped (a newline or NUL shows as \n, \u0000). */
export function shown(value: string): string {
  const cut = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return `${JSON.stringify(cut)}${value.length > 40 ? ` (${value.length} characters)` : ''}`;
}

/** An IPv4 or IPv6 address, or a CIDR network (its host bits zero); an IPv4-mapped IPv6 address is its IPv4 address. */
export function parseNetwork(value: string): Parsed {
  const bad = (why: string): Parsed => ({ ok: false, reason: `${shown(value)} is ${why}` });
  if (value.length === 0) return bad('empty');
  if (value.length > MAX_TEXT || !/^[0-9A-Fa-f:./]+$/.test(value)) return bad('not an IPv4 or IPv6 address or CIDR network (no hostnames, spaces or other characters)');
  const parts = value.split('/');
  if (parts.length > 2) return bad('not an IPv4 or IPv6 address or CIDR network');
  const [address, prefixText] = parts as [string, string | undefined];
  const v4 = parseIpv4(address);
  const v6 = v4 === undefined ? parseIpv6(address) : undefined;
  if (v4 === undefined && v6 === undefined) return bad('not an IPv4 or IPv6 address or CIDR network');
  let family: IpFamily = v4 !== undefined ? 4 : 6;
  let bits = v4 ?? v6!;
  let prefix = WIDTH[family];
  if (prefixText !== undefined) {
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > WIDTH[family]) return bad(`not a CIDR network: the prefix must be 0-${WIDTH[family]}`);
    prefix = Number(prefixText);
  }
  // ::ffff:a.b.c.d is how a dual-stack socket shows an IPv4 client: the same client as a.b.c.d.
  if (family === 6 && bits >> BigInt(32) === BigInt(0xffff) && prefix >= 96) {
    family = 4;
    bits &= BigInt(0xffffffff);
    prefix -= 96;
  }
  const host = hostMask(family, prefix);
  if ((bits & host) !== BigInt(0)) return bad(`not a network address: its host bits are set (did you mean ${format(family, bits & ~host, prefix)}?)`);
  return { ok: true, network: { family, bits, prefix, text: format(family, bits, prefix) } };
}

/** True when one contains the other (or they are the same). */
export function overlaps(a: IpNetwork, b: IpNetwork): boolean {
  return a.family === b.family && (contains(a, b) || contains(b, a));
}

export function contains(outer: IpNetwork, inner: IpNetwork): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const host = hostMask(outer.family, outer.prefix);
  return (inner.bits & ~host) === outer.bits;
}

/** Addresses no block may touch: this host, unspecified, multicast, broadcast. */
const RESERVED: ReadonlyArray<[string, string]> = [
  ['0.0.0.0/8', 'the unspecified "this network" range'],
  ['127.0.0.0/8', 'loopback (the runbooks\' own host)'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255', 'the broadcast address'],
  ['::', 'the unspecified address'],
  ['::1', 'loopback (the runbooks\' own host)'],
  ['ff00::/8', 'multicast'],
];

export interface BlockRules {
  /** The widest network that may be blocked, per family (e.g. 16: nothing wider than a /16). */
  minPrefix: Record<IpFamily, number>;
  /** Networks that are never blocked (the configured allow-list), canonical text. */
  allowList: readonly string[];
  /** The runbooks' own addresses and those of the services they need, canonical text. */
  ownAddresses: readonly string[];
}

/**
 * What may be blocked: one address or network, no wider than the rules allow, none of the reserved ranges, nothing
 * that overlaps the allow-list or the runbooks' own addresses. The refusal says why, showing the value harmlessly.
 */
export function checkBlockTarget(value: string, rules: BlockRules): Parsed {
  const parsed = checkWidth(value, rules.minPrefix, 'block');
  if (!parsed.ok) return parsed;
  const { network } = parsed;
  const refuse = (why: string): Parsed => ({ ok: false, reason: `${network.text} ${why}` });
  for (const [range, what] of RESERVED) {
    const reserved = (parseNetwork(range) as { ok: true; network: IpNetwork }).network;
    if (overlaps(network, reserved)) return refuse(reserved.text === network.text ? `is ${what}` : `is ${contains(reserved, network) ? 'in' : 'overlaps'} ${reserved.text} (${what})`);
  }
  for (const [list, what] of [
    [rules.allowList, 'the allow-list (security.allowList)'],
    [rules.ownAddresses, "the runbooks' own addresses (security.ownAddresses)"],
  ] as const) {
    for (const entry of list) {
      const allowed = parseNetwork(entry);
      if (allowed.ok && overlaps(network, allowed.network)) return refuse(`overlaps ${allowed.network.text} in ${what}`);
    }
  }
  return parsed;
}

/**
 * What an investigation may look up (log lines, audit_log rows of a source): one address or network no wider than
 * the rules allow. Looking changes nothing, so the allow-list and the reserved ranges do not apply.
 */
export function checkLookupTarget(value: string, minPrefix: BlockRules['minPrefix']): Parsed {
  return checkWidth(value, minPrefix, 'look up');
}

function checkWidth(value: string, minPrefix: BlockRules['minPrefix'], verb: string): Parsed {
  const parsed = parseNetwork(value);
  if (!parsed.ok) return parsed;
  const { family, prefix, text } = parsed.network;
  if (prefix >= minPrefix[family]) return parsed;
  return { ok: false, reason: `${text} is wider than /${minPrefix[family]}: refusing to ${verb} ${prefix === 0 ? 'every address' : `2^${WIDTH[family] - prefix} addresses`}` };
}

function hostMask(family: IpFamily, prefix: number): bigint {
  return (BigInt(1) << BigInt(WIDTH[family] - prefix)) - BigInt(1);
}

/** Strict dotted decimal: four parts 0-255, no leading zeros (010 could mean octal to someone). */
function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = BigInt(0);
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return undefined;
    value = (value << BigInt(8)) | BigInt(Number(part));
  }
  return value;
}

/** Eight groups of 1-4 hex digits, one `::` at most, an IPv4 tail allowed; no zone (`%eth0`). */
function parseIpv6(text: string): bigint | undefined {
  if (!text.includes(':')) return undefined;
  let rest = text;
  let tail: bigint | undefined;
  if (text.includes('.')) {
    const lastColon = text.lastIndexOf(':');
    tail = parseIpv4(text.slice(lastColon + 1));
    if (tail === undefined) return undefined;
    rest = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = rest.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string) => (half === '' ? [] : half.split(':'));
  const head = groupsOf(halves[0]!);
  const back = halves.length === 2 ? groupsOf(halves[1]!) : [];
  let groups: string[];
  if (halves.length === 2) {
    const missing = 8 - head.length - back.length;
    if (missing < 1) return undefined;
    groups = [...head, ...Array<string>(missing).fill('0'), ...back];
  } else groups = head;
  if (groups.length !== 8) return undefined;
  let value = BigInt(0);
  for (const group of groups) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(group)) return undefined;
    value = (value << BigInt(16)) | BigInt(parseInt(group, 16));
  }
  if (tail !== undefined) value = (value & ~BigInt(0xffffffff)) | tail;
  return value;
}

function format(family: IpFamily, bits: bigint, prefix: number): string {
  const address = family === 4 ? formatIpv4(bits) : formatIpv6(bits);
  return prefix === WIDTH[family] ? address : `${address}/${prefix}`;
}

function formatIpv4(bits: bigint): string {
  return [24, 16, 8, 0].map((shift) => String(Number((bits >> BigInt(shift)) & BigInt(255)))).join('.');
}

/** RFC 5952: lowercase, no leading zeros, the longest run of two or more zero groups (the first of equals) as `::`. */
function formatIpv6(bits: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((bits >> BigInt(112 - 16 * i)) & BigInt(0xffff)));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
