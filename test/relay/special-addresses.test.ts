/**
 * The special-purpose address table that keeps a forwarding relay out of
 * private networks: every entry at its first, last and an inner address and
 * just outside it; the IPv6 ranges that carry an IPv4 address judged by it;
 * and the peer pool checking every address a destination name resolves to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRelayLogger } from '../../src/relay/log.js';
import { PeerError, PeerPool, type Resolver } from '../../src/relay/peer-pool.js';
import { classifyAddress, IPV4_RANGES, IPV6_RANGES, type SpecialRange } from '../../src/relay/special-addresses.js';
import { randomBytes } from '../../src/crypto/random.js';

const format4 = (v: bigint): string => [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
const format6 = (v: bigint): string => Array.from({ length: 8 }, (_, i) => ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');

function parse4(s: string): bigint {
  return s.split('.').reduce((a, p) => (a << 8n) | BigInt(Number(p)), 0n);
}

/** Expands an IPv6 text with `::` (the test's own parser, independent of the module's). */
function parse6(s: string): bigint {
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n);
}

interface Span {
  readonly range: SpecialRange;
  readonly first: bigint;
  readonly last: bigint;
  readonly width: number;
}

function span(range: SpecialRange, width: 32 | 128): Span {
  const [base, bits] = range.cidr.split('/') as [string, string];
  const size = 1n << BigInt(width - Number(bits));
  const first = width === 32 ? parse4(base) : parse6(base);
  return { range, first, last: first + size - 1n, width };
}

const spans = [...IPV4_RANGES.map((r) => span(r, 32)), ...IPV6_RANGES.map((r) => span(r, 128))];
const within = (inner: Span, outer: Span): boolean => inner.width === outer.width && inner.first >= outer.first && inner.last <= outer.last;
const spanOf = (r: SpecialRange | undefined): Span | undefined => spans.find((s) => s.range === r);

test('every entry of the table: its first, last and an inner address fall in it (or in an entry inside it), the next one outside does not', () => {
  for (const s of spans) {
    const text = s.width === 32 ? format4 : format6;
    const max = (1n << BigInt(s.width)) - 1n;
    const inner = s.first + (s.last - s.first) / 3n;
    for (const [what, v] of [['first', s.first], ['last', s.last], ['inner', inner]] as const) {
      const c = classifyAddress(text(v));
      const found = spanOf(c.range);
      assert.ok(found && within(found, s), `${s.range.cidr} ${what} ${text(v)}: matched ${c.range?.cidr}`);
      if (c.range === s.range) {
        const expected = s.range.verdict === 'allow' ? true : s.range.verdict === 'refuse' ? false : c.embedded.every((e) => classifyAddress(e).forwardable);
        assert.equal(c.forwardable, expected, `${s.range.cidr} ${what} ${text(v)}`);
      }
      if (s.range.verdict === 'refuse') assert.equal(c.forwardable, false, `${s.range.cidr} ${what} ${text(v)} is refused`);
    }
    for (const v of [s.first - 1n, s.last + 1n]) {
      if (v < 0n || v > max) continue; // ::/0 has no outside
      const c = classifyAddress(text(v));
      const found = spanOf(c.range);
      assert.ok(!found || !within(found, s), `${text(v)} is outside ${s.range.cidr}, matched ${c.range?.cidr}`);
    }
  }
});

test('the ranges the old filter missed are refused; ordinary public addresses are not', () => {
  const refused = [
    '64:ff9b::7f00:1', // NAT64 of 127.0.0.1
    '64:ff9b::a00:1', // NAT64 of 10.0.0.1
    '64:ff9b:1::8.8.8.8', // local-use NAT64
    '::127.0.0.1', // IPv4-compatible
    '::8.8.8.8', // IPv4-compatible, deprecated whatever it carries
    '2002:7f00:1::', // 6to4 of 127.0.0.1
    '2002:c0a8:101::1', // 6to4 of 192.168.1.1
    '2001:0:4136:e378:8000:63bf:3fff:fdd2', // Teredo (RFC 4380 example): client 192.0.2.45 is documentation
    '2001:0:a00:1::f7f7:f7f7', // Teredo with server 10.0.0.1
    'fec0::1', // site-local
    'ff02::1', // multicast
    '198.18.0.1',
    '198.19.255.255', // benchmarking
    '192.0.0.9',
    '224.0.0.1',
    '255.255.255.255',
    '::ffff:127.0.0.1',
    '::ffff:169.254.169.254',
    '100::1',
    '5f00::1',
    '3fff::1',
    'fe80::1%eth0', // scoped
    'not an address',
  ];
  for (const ip of refused) assert.equal(classifyAddress(ip).forwardable, false, ip);
  const allowed = ['8.8.8.8', '198.20.0.0', '198.17.255.255', '2606:4700::1', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1', '2001:0:808:808::f7f7:f7f7'];
  for (const ip of allowed) assert.equal(classifyAddress(ip).forwardable, true, ip);
  assert.deepEqual(classifyAddress('2001:0:4136:e378:8000:63bf:3fff:fdd2').embedded, ['65.54.227.120', '192.0.2.45'], 'Teredo server and client');
  assert.deepEqual(classifyAddress('::127.0.0.1').embedded, ['127.0.0.1']);
  assert.deepEqual(classifyAddress('2002:c0a8:101::1').embedded, ['192.168.1.1']);
});

test('the peer pool checks every address a destination name resolves to, once, and dials the one it checked', async () => {
  const fingerprint = randomBytes(32);
  const pool = (resolver: Resolver, allowPrivate = false): PeerPool =>
    new PeerPool({ timeoutMs: 2000, allowPrivate, idleMs: 1000, log: createRelayLogger('silent'), resolver });
  const reason = (r: string) => (e: unknown) => e instanceof PeerError && e.reason === r;
  let calls = 0;
  const mixed: Resolver = async () => {
    calls++;
    return ['8.8.8.8', '10.1.2.3'];
  };
  const p1 = pool(mixed);
  await assert.rejects(p1.identity({ fingerprint, host: 'mixed.invalid', port: 5225 }), reason('PRIVATE'), 'a public first answer does not hide a private second');
  assert.equal(calls, 1);
  p1.close();
  const p2 = pool(async () => []);
  await assert.rejects(p2.identity({ fingerprint, host: 'empty.invalid', port: 5225 }), reason('UNRESOLVED'));
  p2.close();
  // IP literals are judged without any lookup, in every spelling the table knows.
  const p3 = pool(async () => assert.fail('an IP literal is not looked up'));
  for (const host of ['198.18.0.1', '64:ff9b::7f00:1', '::127.0.0.1', '2002:7f00:1::', 'fec0::1']) {
    await assert.rejects(p3.identity({ fingerprint, host, port: 5225 }), reason('PRIVATE'), host);
  }
  p3.close();
});
