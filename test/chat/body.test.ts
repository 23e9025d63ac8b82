/** The chat body format (docs/chat.md): encoding, tolerant decoding, names, timers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { cleanName, decodeBody, decodePeerInfo, encodeBody, encodePeerInfo, MAX_TTL_SECONDS, validName } from '../../src/chat/body.js';
import { ChatError } from '../../src/chat/errors.js';
import { formatTtl, parseTtl } from '../../src/chat/ttl.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

test('bodies encode as the JSON documented in docs/chat.md', () => {
  assert.equal(text(encodeBody({ type: 'text', text: 'hi' })), '{"v":1,"type":"text","text":"hi"}');
  assert.equal(text(encodeBody({ type: 'text', text: 'hi', ttl: 30 })), '{"v":1,"type":"text","text":"hi","ttl":30}');
  assert.equal(text(encodeBody({ type: 'read', upTo: 7 })), '{"v":1,"type":"read","upTo":7}');
  assert.equal(text(encodeBody({ type: 'timer', ttl: null })), '{"v":1,"type":"timer","ttl":null}');
  assert.equal(text(encodePeerInfo({ name: 'Alice' })), '{"v":1,"name":"Alice"}');
});

test('every body round-trips', () => {
  for (const body of [
    { type: 'text', text: 'héllo 👋\nsecond line' },
    { type: 'text', text: 'x', ttl: 3600 },
    { type: 'read', upTo: 1 },
    { type: 'read', upTo: 2 ** 40 },
    { type: 'timer', ttl: 5 },
    { type: 'timer', ttl: null },
  ] as const) {
    assert.deepEqual(decodeBody(encodeBody(body)), body);
  }
});

test('unknown, newer or malformed bodies decode to unknown, never throw', () => {
  const bad = [
    '',
    'not json',
    '[]',
    'null',
    '{"type":"text","text":"no version"}',
    '{"v":2,"type":"text","text":"newer"}',
    '{"v":1,"type":"sticker","id":3}',
    '{"v":1,"type":"text","text":5}',
    '{"v":1,"type":"read","upTo":0}',
    '{"v":1,"type":"read","upTo":1.5}',
    '{"v":1,"type":"timer","ttl":0}',
    `{"v":1,"type":"timer","ttl":${MAX_TTL_SECONDS + 1}}`,
  ];
  for (const s of bad) assert.deepEqual(decodeBody(utf8(s)), { type: 'unknown' }, s);
  assert.deepEqual(decodeBody(new Uint8Array([0xff, 0xfe, 0x00])), { type: 'unknown' });
});

test('extra fields are ignored (minor additions need no version bump)', () => {
  assert.deepEqual(decodeBody(utf8('{"v":1,"type":"text","text":"hi","quote":12,"ttl":"bad"}')), { type: 'text', text: 'hi' });
});

test('peer names are cleaned of control characters and bounded', () => {
  assert.deepEqual(decodePeerInfo(utf8('{"v":1,"name":"  Bob\\u001b[31m  "}')), { name: 'Bob[31m' });
  assert.equal(decodePeerInfo(utf8('{"v":1,"name":"\\u0007"}')), undefined);
  assert.equal(decodePeerInfo(utf8('{"name":"no version"}')), undefined);
  assert.equal(decodePeerInfo(utf8('garbage')), undefined);
  assert.equal(decodePeerInfo(utf8(JSON.stringify({ v: 1, name: 'x'.repeat(500) })))?.name.length, 64);
  assert.deepEqual(decodePeerInfo(utf8('{"v":3,"name":"Future","avatar":"..."}')), { name: 'Future' });
  assert.equal(cleanName('a\u202eb'), 'ab');
  assert.equal(validName(' Alice '), 'Alice');
  assert.equal(validName('bad\u0000name'), undefined);
  assert.equal(validName(''), undefined);
  assert.equal(validName('x'.repeat(65)), undefined);
});

test('timers parse from what people type and print back', () => {
  assert.equal(parseTtl('30'), 30);
  assert.equal(parseTtl('30s'), 30);
  assert.equal(parseTtl('10m'), 600);
  assert.equal(parseTtl('1h'), 3600);
  assert.equal(parseTtl('7d'), 604800);
  assert.equal(parseTtl('2w'), 1209600);
  assert.equal(parseTtl('off'), null);
  assert.equal(parseTtl('OFF'), null);
  for (const bad of ['', 'soon', '-5', '1.5', '400d', '10x']) assert.throws(() => parseTtl(bad), (e: unknown) => e instanceof ChatError && e.code === 'BAD_INPUT', bad);
  assert.equal(formatTtl(90), '1m 30s');
  assert.equal(formatTtl(86400), '1d');
  assert.equal(formatTtl(3 * 86400 + 3600), '3d 1h');
});

test('fuzz: any bytes and any JSON decode to a checked body or "unknown", never an exception', () => {
  const arbJson = fc.oneof(
    fc.json(),
    fc.record({ v: fc.oneof(fc.constant(1), fc.anything()), type: fc.constantFrom('text', 'read', 'timer', 'x'), text: fc.anything(), ttl: fc.anything(), upTo: fc.anything() }).map((o) => JSON.stringify(o)),
  );
  fc.assert(
    fc.property(fc.oneof(arbJson.map(utf8), fc.uint8Array({ maxLength: 200 })), (bytes) => {
      const b = decodeBody(bytes);
      switch (b.type) {
        case 'text':
          assert.equal(typeof b.text, 'string');
          assert.ok(b.ttl === undefined || (Number.isInteger(b.ttl) && b.ttl >= 1 && b.ttl <= MAX_TTL_SECONDS));
          break;
        case 'read':
          assert.ok(Number.isSafeInteger(b.upTo) && b.upTo >= 1);
          break;
        case 'timer':
          assert.ok(b.ttl === null || (Number.isInteger(b.ttl) && b.ttl >= 1 && b.ttl <= MAX_TTL_SECONDS));
          break;
        default:
          assert.equal(b.type, 'unknown');
      }
      const p = decodePeerInfo(bytes);
      assert.ok(p === undefined || (p.name.length >= 1 && p.name.length <= 64));
    }),
    { numRuns: 2000 },
  );
});
