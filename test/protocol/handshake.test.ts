import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { padBlock, unpadBlock } from '../../src/protocol/block.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { decodeClientHello, decodeRelayHello, encodeClientHello, encodeRelayHello } from '../../src/protocol/handshake.js';
import { SUPPORTED_VERSIONS } from '../../src/protocol/version.js';
import { arbMutation, ascii, bytesOf, decodesOrRejects, hex, mutateAll } from './protocol-fixture.js';

const NONE = { routingKey: new Uint8Array(0), routingKeySig: new Uint8Array(0) };
const arbRouting = fc.oneof(
  fc.constant(NONE),
  fc.record({ routingKey: bytesOf(32), routingKeySig: bytesOf(64) }, { noNullPrototype: true }),
);

const versionError = (e: unknown) => e instanceof ProtocolError && e.code === 'VERSION';
const arbRange = fc
  .tuple(fc.integer({ min: 1, max: 0xffff }), fc.integer({ min: 1, max: 0xffff }))
  .map(([a, b]) => ({ min: Math.min(a, b), max: Math.max(a, b) }));

test('layouts: "NJR" min u16 max u16 powBits u8 [routingKey short routingKeySig short] and "NJC" version u16', () => {
  assert.equal(hex(encodeRelayHello({ versions: { min: 1, max: 2 }, powBits: 12, ...NONE })), hex(ascii('NJR')) + '0001' + '0002' + '0c');
  const key = new Uint8Array(32).fill(0xaa);
  const sig = new Uint8Array(64).fill(0xbb);
  assert.equal(
    hex(encodeRelayHello({ versions: { min: 1, max: 2 }, powBits: 12, routingKey: key, routingKeySig: sig })),
    hex(ascii('NJR')) + '0001' + '0002' + '0c' + '20' + hex(key) + '40' + hex(sig),
  );
  assert.deepEqual(decodeRelayHello(Buffer.from(hex(ascii('NJR')) + '0001' + '0002', 'hex')), { versions: { min: 1, max: 2 }, powBits: 0, ...NONE }, 'a hello without powBits asks for none');
  assert.deepEqual(decodeRelayHello(Buffer.from(hex(ascii('NJR')) + '0001' + '0001' + '0a', 'hex')), { versions: { min: 1, max: 1 }, powBits: 10, ...NONE }, 'a version 1 hello has no routing key');
  assert.equal(hex(encodeClientHello({ version: 258 })), hex(ascii('NJC')) + '0102');
  assert.deepEqual(decodeRelayHello(encodeRelayHello({ versions: SUPPORTED_VERSIONS, powBits: 0, ...NONE })), { versions: SUPPORTED_VERSIONS, powBits: 0, ...NONE });
  assert.throws(() => encodeRelayHello({ versions: SUPPORTED_VERSIONS, powBits: 0, routingKey: key, routingKeySig: new Uint8Array(0) }), RangeError);
});

test('hellos round-trip, also inside a padded block', () => {
  fc.assert(
    fc.property(arbRange, fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 255 }), arbRouting, (versions, version, powBits, routing) => {
      assert.deepEqual(decodeRelayHello(unpadBlock(padBlock(encodeRelayHello({ versions, powBits, ...routing })))), { versions, powBits, ...routing });
      assert.deepEqual(decodeClientHello(unpadBlock(padBlock(encodeClientHello({ version })))), { version });
    }),
  );
});

test('extensions after the known fields are ignored, so later versions can append fields', () => {
  const routing = { routingKey: new Uint8Array(32).fill(1), routingKeySig: new Uint8Array(64).fill(2) };
  fc.assert(
    fc.property(arbRange, fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ minLength: 1, maxLength: 100 }), (versions, version, ext) => {
      assert.deepEqual(decodeRelayHello(Uint8Array.from([...encodeRelayHello({ versions, powBits: 3, ...routing }), ...ext])), { versions, powBits: 3, ...routing });
      assert.deepEqual(decodeClientHello(Uint8Array.from([...encodeClientHello({ version }), ...ext])), { version });
    }),
  );
});

test('bad hellos are VERSION errors', () => {
  const bad = [
    '',
    hex(ascii('NJ')),
    hex(ascii('NJR')) + '0001', // truncated range
    hex(ascii('NJC')) + '0001' + '0001', // a client hello where the relay's is due
    hex(ascii('NJR')) + '0002' + '0001', // min > max
    hex(ascii('NJR')) + '0000' + '0001', // version 0 does not exist
    hex(ascii('njr')) + '0001' + '0001',
    hex(ascii('NJR')) + '0001' + '0002' + '00' + '03aabbcc' + '00', // a routing key of the wrong length
    hex(ascii('NJR')) + '0001' + '0002' + '00' + '20' + 'aa'.repeat(32), // a routing key without its signature
  ];
  for (const h of bad) assert.throws(() => decodeRelayHello(new Uint8Array(Buffer.from(h, 'hex'))), versionError, h);
  assert.throws(() => decodeClientHello(ascii('NJR\u0000\u0001')), versionError);
  assert.throws(() => decodeClientHello(ascii('NJC\u0001')), versionError);
  assert.throws(() => decodeClientHello(new Uint8Array(0)), versionError);
});

test('fuzz: random and mutated hellos decode or throw ProtocolError', () => {
  const decodeBoth = (bytes: Uint8Array): void => {
    const r = decodesOrRejects(() => decodeRelayHello(bytes), [ProtocolError], bytes);
    if (r) assert.ok(r.versions.min >= 1 && r.versions.min <= r.versions.max && r.versions.max <= 0xffff);
    const c = decodesOrRejects(() => decodeClientHello(bytes), [ProtocolError], bytes);
    if (c) assert.ok(Number.isInteger(c.version) && c.version >= 0 && c.version <= 0xffff);
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 20 }), decodeBoth), { numRuns: 500 });
  const hello = fc.oneof(
    fc.tuple(arbRange, arbRouting).map(([versions, routing]) => encodeRelayHello({ versions, powBits: 0, ...routing })),
    fc.integer({ min: 0, max: 0xffff }).map((version) => encodeClientHello({ version })),
  );
  fc.assert(
    fc.property(hello, fc.array(arbMutation, { minLength: 1, maxLength: 3 }), (h, ms) => decodeBoth(mutateAll(h, ms))),
    { numRuns: 1000 },
  );
  // Whole handshake blocks, damaged: unpadBlock and the decoders still only throw ProtocolError.
  fc.assert(
    fc.property(hello, fc.array(arbMutation, { minLength: 1, maxLength: 3 }), (h, ms) => {
      const block = mutateAll(padBlock(h), ms, 2 + h.length + 2);
      const content = decodesOrRejects(() => unpadBlock(block), [ProtocolError], block);
      if (content) decodeBoth(content);
    }),
    { numRuns: 300 },
  );
});
