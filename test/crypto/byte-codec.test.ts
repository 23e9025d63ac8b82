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

test('writer: short and long fields in any order, across chunks, in an exact-size result', () => {
  const w = new ByteWriter();
  const expected: number[] = [];
  for (let i = 0; i < 300; i++) {
    const field = Uint8Array.from({ length: (i * 37) % 150 }, (_, j) => (i + j) & 0xff);
    w.u8(i & 0xff).bytes(field).u16(i).u32(i * 65537);
    expected.push(i & 0xff, ...field, i >>> 8, i & 0xff, ...Buffer.from(Uint32Array.of(i * 65537).buffer).reverse());
  }
  const bytes = w.finish();
  assert.deepEqual(bytes, Uint8Array.from(expected));
  assert.equal(bytes.buffer.byteLength, bytes.length);
  assert.equal(new ByteWriter().finish().length, 0);
  assert.deepEqual(new ByteWriter().bytes(new Uint8Array(100).fill(3)).finish(), new Uint8Array(100).fill(3));
});

test('u32 round-trips across its range, the top bit included', () => {
  for (const v of [0, 1, 0xff, 0x100, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xdead_beef, 0xffff_ffff]) {
    const r = new ByteReader(new ByteWriter().u32(v).finish(), (why) => new Error(why));
    assert.equal(r.u32(), v);
  }
});

test('finishView: the same bytes as finish, as a view of the writer\'s buffer (no copy)', () => {
  const w = new ByteWriter(4096).u8(2).bytes(new Uint8Array(3000).fill(5)).u32(7);
  const view = w.finishView();
  assert.deepEqual(view, w.finish());
  assert.equal(view.length, 3005);
  assert.equal(view.buffer.byteLength, 4096, 'a view of the 4 KiB buffer');
  const copy = new ByteWriter(4096).u8(2).finish();
  assert.equal(copy.buffer.byteLength, 1, 'finish still copies a result smaller than its buffer');
});
