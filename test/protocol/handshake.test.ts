import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { padBlock, unpadBlock } from '../../src/protocol/block.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { decodeClientHello, decodeRelayHello, encodeClientHello, encodeRelayHello } from '../../src/protocol/handshake.js';
import { SUPPORTED_VERSIONS } from '../../src/protocol/version.js';
import { arbMutation, ascii, decodesOrRejects, hex, mutateAll } from './protocol-fixture.js';

const versionError = (e: unknown) => e instanceof ProtocolError && e.code === 'VERSION';
const arbRange = fc
  .tuple(fc.integer({ min: 1, max: 0xffff }), fc.integer({ min: 1, max: 0xffff }))
  .map(([a, b]) => ({ min: Math.min(a, b), max: Math.max(a, b) }));

test('layouts: "NJR" min u16 max u16 powBits u8 and "NJC" version u16', () => {
  assert.equal(hex(encodeRelayHello({ versions: { min: 1, max: 2 }, powBits: 12 })), hex(ascii('NJR')) + '0001' + '0002' + '0c');
  assert.deepEqual(decodeRelayHello(Buffer.from(hex(ascii('NJR')) + '0001' + '0002', 'hex')), { versions: { min: 1, max: 2 }, powBits: 0 }, 'a hello without powBits asks for none');
  assert.equal(hex(encodeClientHello({ version: 258 })), hex(ascii('NJC')) + '0102');
  assert.deepEqual(decodeRelayHello(encodeRelayHello({ versions: SUPPORTED_VERSIONS, powBits: 0 })), { versions: SUPPORTED_VERSIONS, powBits: 0 });
});

test('hellos round-trip, also inside a padded block', () => {
  fc.assert(
    fc.property(arbRange, fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 255 }), (versions, version, powBits) => {
      assert.deepEqual(decodeRelayHello(unpadBlock(padBlock(encodeRelayHello({ versions, powBits })))), { versions, powBits });
      assert.deepEqual(decodeClientHello(unpadBlock(padBlock(encodeClientHello({ version })))), { version });
    }),
  );
});

test('extensions after the known fields are ignored, so later versions can append fields', () => {
  fc.assert(
    fc.property(arbRange, fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ minLength: 1, maxLength: 100 }), (versions, version, ext) => {
      assert.deepEqual(decodeRelayHello(Uint8Array.from([...encodeRelayHello({ versions, powBits: 3 }), ...ext])), { versions, powBits: 3 });
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
    arbRange.map((versions) => encodeRelayHello({ versions, powBits: 0 })),
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
