import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MESSAGE_BUCKETS, PAD_PREFIX_LENGTH, PaddingError, pad, padToBucket, paddedSize, unpad } from '../../src/crypto/padding.js';

const paddingError = (code: string) => (err: unknown) => err instanceof PaddingError && err.code === code;

test('layout: u32be length, content, zeros', () => {
  assert.equal(Buffer.from(pad(Uint8Array.of(0x68, 0x69), 10)).toString('hex'), '00000002686900000000');
  assert.equal(Buffer.from(pad(new Uint8Array(0), 4)).toString('hex'), '00000000');
});

test('pad then unpad returns the content, at exactly the requested size', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(200), (content, extra) => {
      const size = content.length + PAD_PREFIX_LENGTH + extra;
      const padded = pad(content, size);
      assert.equal(padded.length, size);
      assert.deepEqual(unpad(padded), content);
    }),
  );
});

test('buckets: the smallest that fits, boundaries included', () => {
  assert.equal(paddedSize(0), 256);
  assert.equal(paddedSize(252), 256);
  assert.equal(paddedSize(253), 1024);
  assert.equal(paddedSize(65532), 65536);
  assert.equal(padToBucket(new Uint8Array(300)).length, 1024);
  assert.deepEqual(unpad(padToBucket(Uint8Array.of(1, 2, 3))), Uint8Array.of(1, 2, 3));
  assert.deepEqual(MESSAGE_BUCKETS, [256, 1024, 4096, 16384, 65536]);
  assert.equal(paddedSize(10, [16, 32]), 16);
});

test('content that does not fit is TOO_LARGE; impossible sizes are BAD_SIZE', () => {
  assert.throws(() => pad(new Uint8Array(13), 16), paddingError('TOO_LARGE'));
  assert.throws(() => paddedSize(65533), paddingError('TOO_LARGE'));
  assert.throws(() => padToBucket(new Uint8Array(70000)), paddingError('TOO_LARGE'));
  assert.throws(() => pad(new Uint8Array(0), 3), paddingError('BAD_SIZE'));
  assert.throws(() => pad(new Uint8Array(0), 10.5), paddingError('BAD_SIZE'));
  assert.throws(() => paddedSize(1, [2]), paddingError('BAD_SIZE'));
});

test('unpad rejects truncation and a length past the end', () => {
  assert.throws(() => unpad(Uint8Array.of(0, 0, 0)), paddingError('BAD_PADDING'));
  assert.throws(() => unpad(Uint8Array.of(0, 0, 0, 5, 1, 2, 3, 4)), paddingError('BAD_PADDING'));
  assert.throws(() => unpad(Uint8Array.of(0xff, 0xff, 0xff, 0xff)), paddingError('BAD_PADDING'));
});

test('unpad rejects any non-zero padding byte', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 50 }), fc.integer({ min: 1, max: 60 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (content, extra, at, value) => {
      const padded = pad(content, content.length + PAD_PREFIX_LENGTH + extra);
      padded[PAD_PREFIX_LENGTH + content.length + (at % extra)] = value;
      assert.throws(() => unpad(padded), paddingError('BAD_PADDING'));
    }),
  );
});
