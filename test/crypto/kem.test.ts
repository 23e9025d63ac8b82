import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CryptoError } from '../../src/crypto/errors.js';
import {
  KEM_CIPHERTEXT_LENGTH,
  KEM_PUBLIC_KEY_LENGTH,
  KEM_SECRET_KEY_LENGTH,
  KEM_SHARED_SECRET_LENGTH,
  kemDecapsulate,
  kemEncapsulate,
  kemEncapsulateWithSeed,
  kemKeygen,
  kemKeygenFromSeed,
  kemPublicKey,
} from '../../src/crypto/kem.js';
import { flipped } from './bytes-fixture.js';

const seed64 = Uint8Array.from({ length: 64 }, (_, i) => i);
const seed32 = Uint8Array.from({ length: 32 }, (_, i) => 64 + i);

const cryptoError = (code: string) => (err: unknown) => err instanceof CryptoError && err.code === code;

test('keygen, encapsulate and decapsulate agree, with FIPS 203 sizes', () => {
  const kp = kemKeygen();
  assert.equal(kp.publicKey.length, KEM_PUBLIC_KEY_LENGTH);
  assert.equal(kp.secretKey.length, KEM_SECRET_KEY_LENGTH);
  const enc = kemEncapsulate(kp.publicKey);
  assert.equal(enc.ciphertext.length, KEM_CIPHERTEXT_LENGTH);
  assert.equal(enc.sharedSecret.length, KEM_SHARED_SECRET_LENGTH);
  assert.deepEqual(kemDecapsulate(enc.ciphertext, kp.secretKey), enc.sharedSecret);
});

test('seeded variants are deterministic and random ones are not', () => {
  assert.deepEqual(kemKeygenFromSeed(seed64), kemKeygenFromSeed(seed64));
  const { publicKey } = kemKeygenFromSeed(seed64);
  assert.deepEqual(kemEncapsulateWithSeed(publicKey, seed32), kemEncapsulateWithSeed(publicKey, seed32));
  assert.notDeepEqual(kemKeygen().publicKey, kemKeygen().publicKey);
  assert.notDeepEqual(kemEncapsulate(publicKey).ciphertext, kemEncapsulate(publicKey).ciphertext);
});

test('the public key is recovered from the secret key, and corruption is caught', () => {
  const kp = kemKeygenFromSeed(seed64);
  assert.deepEqual(kemPublicKey(kp.secretKey), kp.publicKey);
  const corrupted = flipped(kp.secretKey, 1500); // inside the embedded public key, so H(ek) no longer matches
  assert.throws(() => kemPublicKey(corrupted), cryptoError('BAD_KEY'));
});

test('a tampered ciphertext yields an unrelated secret (implicit rejection), not an exception', () => {
  const kp = kemKeygenFromSeed(seed64);
  const enc = kemEncapsulateWithSeed(kp.publicKey, seed32);
  const tampered = flipped(enc.ciphertext, 0, 0x80);
  const secret = kemDecapsulate(tampered, kp.secretKey);
  assert.equal(secret.length, 32);
  assert.notDeepEqual(secret, enc.sharedSecret);
});

test('bad inputs raise typed errors', () => {
  const kp = kemKeygenFromSeed(seed64);
  assert.throws(() => kemKeygenFromSeed(new Uint8Array(63)), cryptoError('BAD_LENGTH'));
  assert.throws(() => kemEncapsulate(kp.publicKey.subarray(1)), cryptoError('BAD_LENGTH'));
  assert.throws(() => kemEncapsulateWithSeed(kp.publicKey, new Uint8Array(31)), cryptoError('BAD_LENGTH'));
  assert.throws(() => kemDecapsulate(new Uint8Array(KEM_CIPHERTEXT_LENGTH - 1), kp.secretKey), cryptoError('BAD_LENGTH'));
  // Coefficients of 0xfff exceed q = 3329: the FIPS 203 modulus check refuses the key.
  assert.throws(() => kemEncapsulate(new Uint8Array(KEM_PUBLIC_KEY_LENGTH).fill(0xff)), cryptoError('BAD_KEY'));
  const badSecret = flipped(kp.secretKey, 2340); // the stored H(ek)
  assert.throws(() => kemDecapsulate(kemEncapsulate(kp.publicKey).ciphertext, badSecret), cryptoError('BAD_KEY'));
});
