import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { chacha20Stream, drbg, DRBG_SEED_LENGTH } from '../../src/crypto/drbg.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const seed = Uint8Array.from({ length: 32 }, (_, i) => i);

test('chacha20Stream is ChaCha20 with nonce and counter zero: RFC 8439 A.1 test vector #1', () => {
  const stream = chacha20Stream(new Uint8Array(32));
  // Drawn in uneven pieces: the stream continues across calls.
  const drawn = new Uint8Array([...stream(7), ...stream(0), ...stream(57)]);
  assert.equal(
    hex(drawn),
    '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586',
  );
});

test('drbg(seed) is the ChaCha20 stream under HKDF-SHA256(seed, "", "nightjar/drbg/v1")', () => {
  const key = new Uint8Array(hkdfSync('sha256', seed, new Uint8Array(0), 'nightjar/drbg/v1', 32));
  assert.deepEqual(drbg(seed)(300), chacha20Stream(key)(300));
});

test('vector: the first 32 bytes for the seed 00 01 .. 1f (docs/devices.md §9.1)', () => {
  assert.equal(hex(drbg(seed)(32)), 'b4f0b193b6022658d177b6d3e671f15f2fc61a92284b4727669c37a62f7c2d46');
});

test('same seed, same stream; another seed, another stream; bad seeds and counts refused', () => {
  assert.deepEqual(drbg(seed)(100), drbg(Uint8Array.from(seed))(100));
  const other = Uint8Array.from(seed);
  other[31] = other[31]! ^ 1;
  assert.notDeepEqual(drbg(seed)(32), drbg(other)(32));
  assert.throws(() => drbg(new Uint8Array(DRBG_SEED_LENGTH - 1)), RangeError);
  assert.throws(() => drbg(seed)(-1), RangeError);
  assert.throws(() => drbg(seed)(1.5), RangeError);
});
