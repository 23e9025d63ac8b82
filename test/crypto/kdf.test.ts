import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { hkdf } from '../../src/crypto/kdf.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const bytes = (n: number, from = 0) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

test('hkdf: RFC 5869 test cases 1 and 3 (SHA-256)', () => {
  const ikm = new Uint8Array(22).fill(0x0b);
  const okm1 = hkdf(ikm, bytes(13), hex('f0f1f2f3f4f5f6f7f8f9'), 42);
  assert.equal(Buffer.from(okm1).toString('hex'), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  const okm3 = hkdf(ikm, new Uint8Array(0), new Uint8Array(0), 42);
  assert.equal(Buffer.from(okm3).toString('hex'), '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8');
});

test('hkdf: the same bytes as node:crypto hkdfSync, every length to 3 blocks and beyond, empty inputs included', () => {
  for (const length of [0, 1, 12, 31, 32, 33, 44, 63, 64, 65, 96, 255 * 32]) {
    for (const [ikm, salt, info] of [
      [bytes(32), new Uint8Array(32), 'Nightjar/e2e/v1/message'],
      [bytes(0), bytes(0), new Uint8Array(0)],
      [bytes(64, 7), bytes(80, 3), bytes(40, 9)],
    ] as const) {
      const infoBytes = typeof info === 'string' ? new TextEncoder().encode(info) : info;
      assert.deepEqual(Buffer.from(hkdf(ikm, salt, info, length)), Buffer.from(hkdfSync('sha256', ikm, salt, infoBytes, length)), `length ${length}`);
    }
  }
  assert.throws(() => hkdf(bytes(32), bytes(32), 'x', 255 * 32 + 1), RangeError);
});
