import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Reader, Writer, asciiBytes, asciiString } from '../../src/protocol/codec.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { decodesOrRejects, hex } from './protocol-fixture.js';

const protocolError = (code: string) => (e: unknown) => e instanceof ProtocolError && e.code === code;

test('integers are big-endian (u32 too); short and long strings carry 1- and 2-byte lengths', () => {
  const bytes = new Writer()
    .u8(0xab)
    .u16(0x0102)
    .u32(0xf1020304)
    .u64(0x0102030405060708n)
    .short(Uint8Array.of(9, 9))
    .long(Uint8Array.of(7))
    .bytes(Uint8Array.of(0xee))
    .finish();
  assert.equal(hex(bytes), 'ab' + '0102' + 'f1020304' + '0102030405060708' + '020909' + '000107' + 'ee');
  const r = new Reader(bytes);
  assert.equal(r.u8(), 0xab);
  assert.equal(r.u16(), 0x0102);
  assert.equal(r.u32(), 0xf1020304);
  assert.equal(r.u64(), 0x0102030405060708n);
  assert.deepEqual(r.short(), Uint8Array.of(9, 9));
  assert.deepEqual(r.long(), Uint8Array.of(7));
  assert.deepEqual(r.rest(), Uint8Array.of(0xee));
  assert.equal(r.remaining, 0);
  r.end();
});

test('write then read returns every field, whatever the values', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xff }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.uint8Array({ maxLength: 0xff }),
      fc.uint8Array({ maxLength: 1000 }),
      fc.uint8Array({ maxLength: 100 }),
      (a, b, c, s, l, rest) => {
        const w = new Writer().u8(a).u16(b).u64(c).short(s).long(l).bytes(rest);
        const bytes = w.finish();
        assert.equal(w.length, bytes.length);
        assert.equal(bytes.length, 1 + 2 + 8 + 1 + s.length + 2 + l.length + rest.length);
        const r = new Reader(bytes);
        assert.equal(r.u8(), a);
        assert.equal(r.u16(), b);
        assert.equal(r.u64(), c);
        assert.deepEqual(r.short(), s);
        assert.deepEqual(r.long(), l);
        assert.deepEqual(r.rest(), rest);
        r.end();
      },
    ),
  );
});

test('reads use the view they are given, at any byte offset', () => {
  const backing = Uint8Array.from({ length: 20 }, (_, i) => i);
  const r = new Reader(backing.subarray(3, 12));
  assert.equal(r.u8(), 3);
  assert.equal(r.u64(), 0x0405060708090a0bn);
  assert.throws(() => r.u8(), protocolError('CMD_SYNTAX'));
});

test('a read past the end is a ProtocolError with the reader code, never a RangeError', () => {
  assert.throws(() => new Reader(new Uint8Array(0)).u8(), protocolError('CMD_SYNTAX'));
  assert.throws(() => new Reader(Uint8Array.of(1), 'BLOCK').u16(), protocolError('BLOCK'));
  assert.throws(() => new Reader(new Uint8Array(7), 'VERSION').u64(), protocolError('VERSION'));
  assert.throws(() => new Reader(Uint8Array.of(3, 1, 2)).short(), protocolError('CMD_SYNTAX'));
  assert.throws(() => new Reader(Uint8Array.of(0, 2, 1)).long(), protocolError('CMD_SYNTAX'));
  assert.throws(() => new Reader(Uint8Array.of(1)).bytesN(2), protocolError('CMD_SYNTAX'));
  assert.throws(() => new Reader(Uint8Array.of(1)).end(), protocolError('CMD_SYNTAX'));
});

test('any sequence of reads on any bytes returns or throws ProtocolError', () => {
  const op = fc.constantFrom('u8', 'u16', 'u64', 'short', 'long', 'bytesN', 'rest', 'end');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.array(op, { maxLength: 12 }), fc.nat(50), (bytes, ops, n) => {
      const r = new Reader(bytes);
      decodesOrRejects(
        () => {
          for (const o of ops) {
            const before = r.remaining;
            if (o === 'bytesN') r.bytesN(n);
            else r[o]();
            assert.ok(r.remaining <= before && r.remaining >= 0);
          }
        },
        [ProtocolError],
        bytes,
      );
    }),
  );
});

test('the writer refuses values its fields cannot hold', () => {
  assert.throws(() => new Writer().u8(256), RangeError);
  assert.throws(() => new Writer().u8(-1), RangeError);
  assert.throws(() => new Writer().u8(1.5), RangeError);
  assert.throws(() => new Writer().u16(0x10000), RangeError);
  assert.throws(() => new Writer().short(new Uint8Array(256)), RangeError);
  assert.throws(() => new Writer().long(new Uint8Array(0x10000)), RangeError);
  assert.equal(new Writer().short(new Uint8Array(255)).length, 256);
  assert.equal(new Writer().long(new Uint8Array(0xffff)).length, 0x10001);
});

test('ASCII helpers round-trip tags', () => {
  assert.deepEqual(asciiBytes('SEND '), Uint8Array.of(0x53, 0x45, 0x4e, 0x44, 0x20));
  assert.equal(asciiString(asciiBytes('CMD_SYNTAX')), 'CMD_SYNTAX');
});
