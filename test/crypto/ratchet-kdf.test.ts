import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CryptoError } from '../../src/crypto/errors.js';
import { hkdf, hmacSha256 } from '../../src/crypto/kdf.js';
import { ROOT_KDF_INFO, chainKdf, messageKeys, rootKdf } from '../../src/crypto/ratchet-kdf.js';

const k = (value: number): Uint8Array => new Uint8Array(32).fill(value);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('root KDF is HKDF(salt = RK, ikm = DH || KEM secret) split 32/32/32', () => {
  const step = rootKdf(k(1), k(2), k(3));
  const okm = hkdf(new Uint8Array([...k(2), ...k(3)]), k(1), ROOT_KDF_INFO, 96);
  assert.deepEqual(step, { rootKey: okm.slice(0, 32), chainKey: okm.slice(32, 64), nextHeaderKey: okm.slice(64) });
});

test('root KDF output depends on the DH output and on the KEM secret alike', () => {
  const base = hex(rootKdf(k(1), k(2), k(3)).rootKey);
  assert.notEqual(hex(rootKdf(k(1), k(9), k(3)).rootKey), base);
  assert.notEqual(hex(rootKdf(k(1), k(2), k(9)).rootKey), base);
  assert.notEqual(hex(rootKdf(k(9), k(2), k(3)).rootKey), base);
});

test('chain KDF is HMAC with 0x02 for the next key and 0x01 for the message key seed', () => {
  const step = chainKdf(k(4));
  assert.deepEqual(step.chainKey, hmacSha256(k(4), Uint8Array.of(2)));
  assert.deepEqual(step.messageKeySeed, hmacSha256(k(4), Uint8Array.of(1)));
  const mk = messageKeys(step.messageKeySeed);
  assert.equal(mk.key.length, 32);
  assert.equal(mk.nonce.length, 12);
});

test('wrong key lengths are refused', () => {
  assert.throws(() => rootKdf(new Uint8Array(31), k(2), k(3)), CryptoError);
  assert.throws(() => chainKdf(new Uint8Array(0)), CryptoError);
  assert.throws(() => messageKeys(new Uint8Array(33)), CryptoError);
});
