import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteReader, ByteWriter, bytesEqual, concatBytes } from '../../src/crypto/byte-codec.js';

test('writer and reader agree on a big-endian layout', () => {
  const bytes = new ByteWriter().u8(1).u16(0x0203).u32(0x04050607).bytes(Uint8Array.of(8, 9)).finish();
  assert.equal(Buffer.from(bytes).toString('hex'), '010203040506070809');
  const r = new ByteReader(bytes, (why) => new Error(why));
  assert.deepEqual([r.u8(), r.u16(), r.u32()], [1, 0x0203, 0x04050607]);
  const tail = r.bytes(2);
  r.end();
  tail[0] = 0xff;
  assert.equal(bytes[7], 8, 'bytes() returns a copy');
});

test('reader errors come from the caller-supplied factory', () => {
  class Custom extends Error {}
  const r = new ByteReader(Uint8Array.of(1, 2), (why) => new Custom(why));
  assert.throws(() => r.u32(), Custom);
  r.u8();
  assert.throws(() => r.end(), Custom);
});

test('writer refuses values that do not fit', () => {
  assert.throws(() => new ByteWriter().u8(256), RangeError);
  assert.throws(() => new ByteWriter().u16(-1), RangeError);
  assert.throws(() => new ByteWriter().u32(2 ** 32), RangeError);
  assert.throws(() => new ByteWriter().u32(1.5), RangeError);
});

test('concatBytes and bytesEqual', () => {
  assert.deepEqual(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)), Uint8Array.of(1, 2, 3));
  assert.ok(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)));
  assert.ok(!bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3)));
  assert.ok(!bytesEqual(Uint8Array.of(1), Uint8Array.of(1, 2)));
});

test('writer grows past the length it expected, keeping what it wrote', () => {
  const w = new ByteWriter(3).u8(1).u16(0x0203);
  const big = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
  const bytes = w.bytes(big).u32(0x04050607).u8(9).finish();
  assert.equal(bytes.length, 3 + 1000 + 5);
  assert.equal(bytes.buffer.byteLength, bytes.length);
  assert.equal(Buffer.from(bytes.subarray(0, 3)).toString('hex'), '010203');
  assert.deepEqual(bytes.subarray(3, 1003), big);
  assert.equal(Buffer.from(bytes.subarray(1003)).toString('hex'), '0405060709');
  assert.equal(new ByteWriter(0).finish().length, 0);
});
