/**
 * IP addresses and CIDR ranges, for `$inCidr(ip, "192.168.1.0/24")` in expressions: is an address
 * inside a network (or any of several)? IPv4 and IPv6; an IPv4-mapped IPv6 address
 * (`::ffff:10.0.0.1`, as PostgreSQL and Node report some clients) counts as its IPv4 address.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** An address as a number of its family's width. */
interface Address {
  family: 4 | 6;
  value: bigint;
}

function parseIPv4(text: string): bigint {
  let value = 0n;
  for (const part of text.split('.')) value = (value << 8n) | BigInt(Number(part));
  return value;
}

function parseIPv6(text: string): bigint {
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) is two groups.
  let body = text;
  const lastColon = body.lastIndexOf(':');
  const tail = body.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIPv4(tail);
    body = `${body.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = body.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const missing = 8 - left.length - right.length;
  const all = [...left, ...Array<string>(rest === undefined ? 0 : missing).fill('0'), ...right];
  let value = 0n;
  for (const g of all) value = (value << 16n) | BigInt(parseInt(g, 16));
  return value;
}

const MAPPED_PREFIX = 0xffffn << 32n;

/** The address of `text`, an IPv4-mapped IPv6 address as IPv4; undefined for anything else. */
export function parseAddress(text: string): Address | undefined {
  // PostgreSQL's inet text may carry a prefix length (`10.0.0.1/32`): the address is before it.
  const bare = text.trim().replace(/\/\d+$/, '').replace(/%.*$/, '');
  if (isIPv4(bare)) return { family: 4, value: parseIPv4(bare) };
  if (!isIPv6(bare)) return undefined;
  const value = parseIPv6(bare);
  if (value >> 32n === MAPPED_PREFIX >> 32n) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

export interface Network {
  family: 4 | 6;
  /** The network address with its host bits cleared. */
  base: bigint;
  prefix: number;
}

/** Parses `10.20.0.0/16` or `fd00::/8`; a bare address is a /32 or /128. Throws on anything else. */
export function parseCidr(text: string): Network {
  const [addr = '', bits, extra] = text.trim().split('/');
  const address = isIPv4(addr) ? { family: 4 as const, value: parseIPv4(addr) } : isIPv6(addr) ? { family: 6 as const, value: parseIPv6(addr) } : undefined;
  if (!address || extra !== undefined) throw new Error(`not a CIDR range like 192.168.1.0/24: ${JSON.stringify(text)}`);
  const width = address.family === 4 ? 32 : 128;
  const prefix = bits === undefined ? width : Number(bits);
  if (!/^\d+$/.test(bits ?? String(width)) || prefix > width) throw new Error(`prefix length of ${JSON.stringify(text)} must be 0-${width}`);
  return { family: address.family, base: address.value & mask(width, prefix), prefix };
}

function mask(width: number, prefix: number): bigint {
  const all = (1n << BigInt(width)) - 1n;
  return prefix === 0 ? 0n : (all >> BigInt(width - prefix)) << BigInt(width - prefix);
}

export function contains(network: Network, address: Address): boolean {
  if (network.family !== address.family) return false;
  const width = network.family === 4 ? 32 : 128;
  return (address.value & mask(width, network.prefix)) === network.base;
}

/** Parsed ranges by their text: a spec names a few, and every record checks against them. */
const parsed = new Map<string, Network>();

function networkOf(text: string): Network {
  let n = parsed.get(text);
  if (!n) {
    n = parseCidr(text);
    if (parsed.size < 10_000) parsed.set(text, n);
  }
  return n;
}

/**
 * `$inCidr(ip, ranges)`: true when `ip` is in the range, or in any of a list of ranges. Nothing for
 * a missing ip; false for text that is no address (a log's "unknown"); an error for a bad range,
 * which is a mistake in the spec.
 */
export function inCidr(ip: unknown, ranges: unknown): boolean | undefined {
  if (ip === undefined || ip === null) return undefined;
  const list = Array.isArray(ranges) ? ranges : [ranges];
  const networks = list.map((r) => {
    if (typeof r !== 'string') throw new Error(`$inCidr: a range must be text like "192.168.1.0/24", got ${typeof r}`);
    return networkOf(r);
  });
  if (typeof ip !== 'string') return false;
  const address = parseAddress(ip);
  if (!address) return false;
  return networks.some((n) => contains(n, address));
}
