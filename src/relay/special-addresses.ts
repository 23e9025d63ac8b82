/**
 * Which IP addresses a forwarding relay may dial (docs/protocol.md §9.13):
 * a table of special-purpose ranges, kept as data, and the one rule that
 * reads it. A public relay must not be a door into its operator's network,
 * so every special-purpose range is refused, whatever the registry says
 * about global reachability: the anycast services marked reachable (PCP,
 * TURN, AS112, AMT) answer from a server near the relay, possibly in its
 * own network, and no relay lives there.
 *
 * Sources, transcribed by hand (check them against the live registries when
 * touching this table; a new IPv6 entry outside 2000::/3 is refused
 * already by the first IPv6 rule):
 * - IANA IPv4 Special-Purpose Address Registry
 *   (https://www.iana.org/assignments/iana-ipv4-special-registry/)
 * - IANA IPv6 Special-Purpose Address Registry
 *   (https://www.iana.org/assignments/iana-ipv6-special-registry/)
 *   Both were set up by RFC 6890 and updated by RFC 8190 and the RFCs named
 *   per entry.
 * - IANA IPv4 Address Space Registry (224.0.0.0/4 multicast) and IANA
 *   Internet Protocol Version 6 Address Space (only 2000::/3 is global
 *   unicast; fec0::/10 was site-local, RFC 3879; ff00::/8 multicast).
 * - RFC 4291 §2.5.5 (IPv4-compatible, deprecated, and IPv4-mapped
 *   addresses).
 *
 * IPv6 ranges that carry an IPv4 address inside them are judged by that
 * address: IPv4-mapped `::ffff:a.b.c.d` (the socket dials a.b.c.d),
 * NAT64 `64:ff9b::a.b.c.d` (RFC 6052), 6to4 `2002:aabb:ccdd::` (RFC 3056)
 * and Teredo (RFC 4380: the server's address, and the client's, stored
 * inverted). IPv4-compatible `::a.b.c.d` is deprecated and never valid on
 * the wire, so it is refused outright, as is the local-use NAT64 prefix
 * `64:ff9b:1::/48` (RFC 8215); their embedded address is still reported.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** What a range means for forwarding. */
export type RangeVerdict =
  | 'refuse' // never dialled
  | 'allow' // ordinary global unicast
  | 'embedded'; // dialled only if every IPv4 address inside it may be

/** How an IPv6 range carries an IPv4 address. */
export type Embedding = 'low32' | '6to4' | 'teredo';

export interface SpecialRange {
  /** CIDR notation, e.g. `10.0.0.0/8`. */
  readonly cidr: string;
  readonly name: string;
  /** Where the range is defined. */
  readonly source: string;
  readonly verdict: RangeVerdict;
  readonly embeds?: Embedding;
}

/** IANA IPv4 Special-Purpose Address Registry, every entry, plus multicast. */
export const IPV4_RANGES: readonly SpecialRange[] = [
  { cidr: '0.0.0.0/8', name: '"This network"', source: 'RFC 791 §3.2', verdict: 'refuse' },
  { cidr: '0.0.0.0/32', name: '"This host on this network"', source: 'RFC 1122 §3.2.1.3', verdict: 'refuse' },
  { cidr: '10.0.0.0/8', name: 'Private-Use', source: 'RFC 1918', verdict: 'refuse' },
  { cidr: '100.64.0.0/10', name: 'Shared Address Space', source: 'RFC 6598', verdict: 'refuse' },
  { cidr: '127.0.0.0/8', name: 'Loopback', source: 'RFC 1122 §3.2.1.3', verdict: 'refuse' },
  { cidr: '169.254.0.0/16', name: 'Link Local', source: 'RFC 3927', verdict: 'refuse' },
  { cidr: '172.16.0.0/12', name: 'Private-Use', source: 'RFC 1918', verdict: 'refuse' },
  { cidr: '192.0.0.0/24', name: 'IETF Protocol Assignments', source: 'RFC 6890 §2.1', verdict: 'refuse' },
  { cidr: '192.0.0.0/29', name: 'IPv4 Service Continuity Prefix', source: 'RFC 7335', verdict: 'refuse' },
  { cidr: '192.0.0.8/32', name: 'IPv4 dummy address', source: 'RFC 7600', verdict: 'refuse' },
  { cidr: '192.0.0.9/32', name: 'Port Control Protocol Anycast', source: 'RFC 7723', verdict: 'refuse' },
  { cidr: '192.0.0.10/32', name: 'Traversal Using Relays around NAT Anycast', source: 'RFC 8155', verdict: 'refuse' },
  { cidr: '192.0.0.170/32', name: 'NAT64/DNS64 Discovery', source: 'RFC 8880, RFC 7050 §2.2', verdict: 'refuse' },
  { cidr: '192.0.0.171/32', name: 'NAT64/DNS64 Discovery', source: 'RFC 8880, RFC 7050 §2.2', verdict: 'refuse' },
  { cidr: '192.0.2.0/24', name: 'Documentation (TEST-NET-1)', source: 'RFC 5737', verdict: 'refuse' },
  { cidr: '192.31.196.0/24', name: 'AS112-v4', source: 'RFC 7535', verdict: 'refuse' },
  { cidr: '192.52.193.0/24', name: 'AMT', source: 'RFC 7450', verdict: 'refuse' },
  { cidr: '192.88.99.0/24', name: 'Deprecated (6to4 Relay Anycast)', source: 'RFC 7526', verdict: 'refuse' },
  { cidr: '192.168.0.0/16', name: 'Private-Use', source: 'RFC 1918', verdict: 'refuse' },
  { cidr: '192.175.48.0/24', name: 'Direct Delegation AS112 Service', source: 'RFC 7534', verdict: 'refuse' },
  { cidr: '198.18.0.0/15', name: 'Benchmarking', source: 'RFC 2544', verdict: 'refuse' },
  { cidr: '198.51.100.0/24', name: 'Documentation (TEST-NET-2)', source: 'RFC 5737', verdict: 'refuse' },
  { cidr: '203.0.113.0/24', name: 'Documentation (TEST-NET-3)', source: 'RFC 5737', verdict: 'refuse' },
  { cidr: '224.0.0.0/4', name: 'Multicast (IPv4 Address Space Registry)', source: 'RFC 5771', verdict: 'refuse' },
  { cidr: '240.0.0.0/4', name: 'Reserved', source: 'RFC 1112 §4', verdict: 'refuse' },
  { cidr: '255.255.255.255/32', name: 'Limited Broadcast', source: 'RFC 8190, RFC 919 §7', verdict: 'refuse' },
];

/**
 * IANA IPv6 Special-Purpose Address Registry, every entry, inside the
 * IPv6 Address Space: only 2000::/3 is global unicast.
 */
export const IPV6_RANGES: readonly SpecialRange[] = [
  { cidr: '::/0', name: 'Not global unicast (IPv6 Address Space Registry)', source: 'RFC 4291 §2.4', verdict: 'refuse' },
  { cidr: '2000::/3', name: 'Global Unicast (IPv6 Address Space Registry)', source: 'RFC 4291 §2.4', verdict: 'allow' },
  { cidr: '::1/128', name: 'Loopback Address', source: 'RFC 4291', verdict: 'refuse' },
  { cidr: '::/128', name: 'Unspecified Address', source: 'RFC 4291', verdict: 'refuse' },
  { cidr: '::/96', name: 'IPv4-compatible Address (deprecated)', source: 'RFC 4291 §2.5.5.1', verdict: 'refuse', embeds: 'low32' },
  { cidr: '::ffff:0:0/96', name: 'IPv4-mapped Address', source: 'RFC 4291', verdict: 'embedded', embeds: 'low32' },
  { cidr: '64:ff9b::/96', name: 'IPv4-IPv6 Translat.', source: 'RFC 6052', verdict: 'embedded', embeds: 'low32' },
  { cidr: '64:ff9b:1::/48', name: 'IPv4-IPv6 Translat. (local use)', source: 'RFC 8215', verdict: 'refuse' },
  { cidr: '100::/64', name: 'Discard-Only Address Block', source: 'RFC 6666', verdict: 'refuse' },
  { cidr: '100:0:0:1::/64', name: 'Dummy IPv6 Prefix', source: 'RFC 9780', verdict: 'refuse' },
  { cidr: '2001::/23', name: 'IETF Protocol Assignments', source: 'RFC 2928', verdict: 'refuse' },
  { cidr: '2001::/32', name: 'TEREDO', source: 'RFC 4380, RFC 8190', verdict: 'embedded', embeds: 'teredo' },
  { cidr: '2001:1::1/128', name: 'Port Control Protocol Anycast', source: 'RFC 7723', verdict: 'refuse' },
  { cidr: '2001:1::2/128', name: 'Traversal Using Relays around NAT Anycast', source: 'RFC 8155', verdict: 'refuse' },
  { cidr: '2001:1::3/128', name: 'DNS-SD Service Registration Protocol Anycast', source: 'RFC 9665', verdict: 'refuse' },
  { cidr: '2001:2::/48', name: 'Benchmarking', source: 'RFC 5180, RFC Errata 1752', verdict: 'refuse' },
  { cidr: '2001:3::/32', name: 'AMT', source: 'RFC 7450', verdict: 'refuse' },
  { cidr: '2001:4:112::/48', name: 'AS112-v6', source: 'RFC 7535', verdict: 'refuse' },
  { cidr: '2001:10::/28', name: 'Deprecated (previously ORCHID)', source: 'RFC 4843', verdict: 'refuse' },
  { cidr: '2001:20::/28', name: 'ORCHIDv2', source: 'RFC 7343', verdict: 'refuse' },
  { cidr: '2001:30::/28', name: 'Drone Remote ID Protocol Entity Tags (DETs) Prefix', source: 'RFC 9374', verdict: 'refuse' },
  { cidr: '2001:db8::/32', name: 'Documentation', source: 'RFC 3849', verdict: 'refuse' },
  { cidr: '2002::/16', name: '6to4', source: 'RFC 3056', verdict: 'embedded', embeds: '6to4' },
  { cidr: '2620:4f:8000::/48', name: 'Direct Delegation AS112 Service', source: 'RFC 7534', verdict: 'refuse' },
  { cidr: '3fff::/20', name: 'Documentation', source: 'RFC 9637', verdict: 'refuse' },
  { cidr: '5f00::/16', name: 'Segment Routing (SRv6) SIDs', source: 'RFC 9602', verdict: 'refuse' },
  { cidr: 'fc00::/7', name: 'Unique-Local', source: 'RFC 4193, RFC 8190', verdict: 'refuse' },
  { cidr: 'fe80::/10', name: 'Link-Local Unicast', source: 'RFC 4291', verdict: 'refuse' },
  { cidr: 'fec0::/10', name: 'Site-local (deprecated; IPv6 Address Space Registry)', source: 'RFC 3879', verdict: 'refuse' },
  { cidr: 'ff00::/8', name: 'Multicast (IPv6 Address Space Registry)', source: 'RFC 4291 §2.7', verdict: 'refuse' },
];

/** An address as a number: 32 bits for IPv4, 128 for IPv6. */
export interface ParsedAddress {
  readonly family: 4 | 6;
  readonly value: bigint;
}

function parseIPv4(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

/** Eight 16-bit groups; `::` expanded, a trailing dotted IPv4 taken as the last two. */
function parseIPv6(text: string): bigint {
  let s = text;
  let tail: bigint[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const v4 = parseIPv4(dotted[2]!);
    tail = [v4 >> 16n, v4 & 0xffffn];
    s = dotted[1]!.endsWith('::') ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const groups = (part: string): bigint[] => (part === '' ? [] : part.split(':').map((g) => BigInt(parseInt(g, 16))));
  const [head, rest] = s.split('::') as [string, string | undefined];
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const missing = 8 - left.length - right.length - tail.length;
  const all = [...left, ...Array<bigint>(rest === undefined ? 0 : missing).fill(0n), ...right, ...tail];
  return all.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** An IP address as a number, or undefined if it is not one (scoped IPv6 addresses included). */
export function parseAddressNumber(ip: string): ParsedAddress | undefined {
  if (isIPv4(ip)) return { family: 4, value: parseIPv4(ip) };
  if (isIPv6(ip) && !ip.includes('%')) return { family: 6, value: parseIPv6(ip) };
  return undefined;
}

interface CompiledRange {
  readonly range: SpecialRange;
  readonly family: 4 | 6;
  readonly bits: number;
  readonly base: bigint;
}

function compile(range: SpecialRange, family: 4 | 6): CompiledRange {
  const [address, length] = range.cidr.split('/') as [string, string];
  const parsed = parseAddressNumber(address);
  if (!parsed || parsed.family !== family) throw new Error(`bad range ${range.cidr}`);
  return { range, family, bits: Number(length), base: parsed.value };
}

// Longest prefix first, so the first match is the most specific range.
const COMPILED: readonly CompiledRange[] = [...IPV4_RANGES.map((r) => compile(r, 4)), ...IPV6_RANGES.map((r) => compile(r, 6))].sort(
  (a, b) => b.bits - a.bits,
);

function contains(r: CompiledRange, a: ParsedAddress): boolean {
  if (r.family !== a.family) return false;
  const width = a.family === 4 ? 32n : 128n;
  const shift = width - BigInt(r.bits);
  return a.value >> shift === r.base >> shift;
}

function formatIPv4(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
}

/** The IPv4 addresses an IPv6 address carries under `embedding`. */
function embedded(value: bigint, embedding: Embedding): string[] {
  switch (embedding) {
    case 'low32':
      return [formatIPv4(value & 0xffffffffn)];
    case '6to4':
      return [formatIPv4((value >> 80n) & 0xffffffffn)];
    case 'teredo':
      // Server in bits 32..63; client in bits 96..127, every bit inverted.
      return [formatIPv4((value >> 64n) & 0xffffffffn), formatIPv4(~value & 0xffffffffn)];
  }
}

export interface AddressClass {
  /** The most specific range holding the address, if any (an IPv4 address outside every range has none). */
  readonly range: SpecialRange | undefined;
  /** The IPv4 addresses carried inside it, for IPv6 ranges that embed one. */
  readonly embedded: readonly string[];
  /** Whether a forwarding relay may dial it. */
  readonly forwardable: boolean;
}

/**
 * Classifies an IP address (no host names: resolve first). Anything that
 * does not parse, and any scoped address (`fe80::1%eth0`), is refused.
 *
 * @example
 *   classifyAddress('198.18.0.1').forwardable          // false (Benchmarking)
 *   classifyAddress('64:ff9b::808:808').forwardable    // true  (NAT64 of 8.8.8.8)
 *   classifyAddress('2002:a00:1::').forwardable        // false (6to4 of 10.0.0.1)
 */
export function classifyAddress(ip: string): AddressClass {
  const a = parseAddressNumber(ip);
  if (!a) return { range: undefined, embedded: [], forwardable: false };
  const match = COMPILED.find((r) => contains(r, a));
  if (!match) return { range: undefined, embedded: [], forwardable: true };
  const inner = match.range.embeds ? embedded(a.value, match.range.embeds) : [];
  const verdict = match.range.verdict;
  const forwardable = verdict === 'allow' || (verdict === 'embedded' && inner.every((v4) => classifyAddress(v4).forwardable));
  return { range: match.range, embedded: inner, forwardable };
}

/** Whether a forwarding relay may dial `ip` (see `classifyAddress`). */
export function isForwardableAddress(ip: string): boolean {
  return classifyAddress(ip).forwardable;
}
