import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ADDRESS_SCHEME, AddressError, DEFAULT_PORT, formatAddress, parseAddress, type RelayAddress } from '../../src/protocol/address.js';
import { bytesOf, decodesOrRejects, PLAIN } from './protocol-fixture.js';

const FP = new Uint8Array(32).map((_, i) => i);
const FP_TEXT = Buffer.from(FP).toString('base64url');

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$/);
const arbDomain = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
const arbIpv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
// IPv6 in the canonical (compressed, lower-case) form the URL parser produces.
const arbIpv6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => new URL(`http://[${g.map((x) => x.toString(16)).join(':')}]`).hostname.slice(1, -1));
const arbAddress: fc.Arbitrary<RelayAddress> = fc.record({
  fingerprint: bytesOf(32),
  host: fc.oneof(arbDomain, arbIpv4, arbIpv6, fc.constantFrom('localhost', '::1', 'relay.example.org')),
  port: fc.integer({ min: 0, max: 65535 }),
}, PLAIN);

test('format: nightjar://<base64url fingerprint>@host:port, IPv6 in brackets', () => {
  assert.equal(ADDRESS_SCHEME, 'nightjar:');
  assert.equal(DEFAULT_PORT, 5225);
  assert.equal(FP_TEXT.length, 43);
  assert.equal(formatAddress({ fingerprint: FP, host: 'relay.example', port: 5225 }), `nightjar://${FP_TEXT}@relay.example:5225`);
  assert.equal(formatAddress({ fingerprint: FP, host: '::1', port: 443 }), `nightjar://${FP_TEXT}@[::1]:443`);
});

test('parse: fields, default port, surrounding white space', () => {
  assert.deepEqual(parseAddress(`nightjar://${FP_TEXT}@relay.example:7000`), { fingerprint: FP, host: 'relay.example', port: 7000 });
  assert.deepEqual(parseAddress(`nightjar://${FP_TEXT}@relay.example`), { fingerprint: FP, host: 'relay.example', port: DEFAULT_PORT });
  assert.deepEqual(parseAddress(`  nightjar://${FP_TEXT}@[::1]:1\n`), { fingerprint: FP, host: '::1', port: 1 });
  assert.deepEqual(parseAddress(`nightjar://${FP_TEXT}@10.0.0.1:5225`).host, '10.0.0.1');
});

test('format then parse returns the address', () => {
  fc.assert(
    fc.property(arbAddress, (a) => {
      const text = formatAddress(a);
      assert.deepEqual(parseAddress(text), a);
      assert.equal(formatAddress(parseAddress(text)), text);
    }),
    { numRuns: 300 },
  );
});

test('malformed addresses are AddressErrors', () => {
  const bad = [
    '',
    'relay.example:5225',
    `https://${FP_TEXT}@relay.example:5225`,
    `nightjar://relay.example:5225`, // no fingerprint
    `nightjar://${FP_TEXT.slice(1)}@relay.example:5225`, // 42 characters
    `nightjar://${FP_TEXT}A@relay.example:5225`, // 44 characters
    `nightjar://${FP_TEXT.slice(0, 42)}+@relay.example:5225`, // not base64url
    `nightjar://${FP_TEXT}:password@relay.example:5225`,
    `nightjar://${FP_TEXT}@relay.example:5225/`,
    `nightjar://${FP_TEXT}@relay.example:5225/path`,
    `nightjar://${FP_TEXT}@relay.example:5225?x=1`,
    `nightjar://${FP_TEXT}@relay.example:5225#frag`,
    `nightjar://${FP_TEXT}@relay.example:65536`,
    `nightjar://${FP_TEXT}@relay.example:-1`,
    `nightjar://${FP_TEXT}@:5225`,
    `nightjar://${FP_TEXT}@`,
    `nightjar://${FP_TEXT}@[::1`,
    `nightjar://%zz@relay.example:5225`, // a broken percent escape
    `nightjar://%E0%A4%A@relay.example:5225`,
  ];
  for (const text of bad) assert.throws(() => parseAddress(text), AddressError, text);
});

test('fuzz: random strings and damaged addresses parse or throw AddressError', () => {
  const valid = arbAddress.map(formatAddress);
  const damaged = fc
    .tuple(valid, fc.nat(), fc.nat(5), fc.string({ maxLength: 4, unit: 'binary' }))
    .map(([s, at, remove, insert]) => s.slice(0, at % (s.length + 1)) + insert + s.slice((at % (s.length + 1)) + remove));
  const alphabet = fc.constantFrom(...'nightjar:/@[]%._-0123456789abcdefAZ ?#\u0000\u00e9\ud800'.split(''));
  const soup = fc.array(alphabet, { maxLength: 80 }).map((cs) => cs.join(''));
  const prefixed = soup.map((s) => `nightjar://${s}`);
  fc.assert(
    fc.property(fc.oneof(damaged, soup, prefixed, fc.string({ maxLength: 80, unit: 'binary' })), (text) => {
      const a = decodesOrRejects(() => parseAddress(text), [AddressError], text);
      if (a) {
        assert.equal(a.fingerprint.length, 32);
        assert.ok(a.host.length > 0);
        assert.ok(Number.isInteger(a.port) && a.port >= 0 && a.port <= 65535);
        // Whatever was accepted formats to an address that parses to the same thing.
        assert.deepEqual(parseAddress(formatAddress(a)), a);
      }
    }),
    { numRuns: 3000 },
  );
});
