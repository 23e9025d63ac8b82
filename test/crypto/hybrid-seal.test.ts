import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, hkdfSync } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { drbg } from '../../src/crypto/drbg.js';
import { CryptoError } from '../../src/crypto/errors.js';
import { newSealKeys, openSealed, SEAL_OVERHEAD, sealRecipientOf, sealTo } from '../../src/crypto/hybrid-seal.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const seed = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const text = new TextEncoder().encode('the new log');
const aad = Uint8Array.of(1, 2, 3);

test('a sealed secret opens with the recipient keys, and with nothing else', () => {
  const bob = newSealKeys();
  const carol = newSealKeys();
  const sealed = sealTo(bob.recipient, text, aad);
  assert.equal(sealed.length, text.length + SEAL_OVERHEAD);
  assert.deepEqual(openSealed(bob.keys, sealed, aad), text);
  assert.throws(() => openSealed(carol.keys, sealed, aad), (e: unknown) => e instanceof CryptoError && e.code === 'DECRYPT');
  assert.throws(() => openSealed(bob.keys, sealed, Uint8Array.of(1, 2, 4)), (e: unknown) => e instanceof CryptoError && e.code === 'DECRYPT');
  for (const at of [0, 40, 1130, sealed.length - 1]) {
    const bent = Uint8Array.from(sealed);
    bent[at] = bent[at]! ^ 1;
    assert.throws(() => openSealed(bob.keys, bent, aad), (e: unknown) => e instanceof CryptoError && e.code === 'DECRYPT', `byte ${at} changed`);
  }
  assert.throws(() => openSealed(bob.keys, sealed.subarray(0, SEAL_OVERHEAD - 1), aad), CryptoError);
  assert.deepEqual(sealRecipientOf(bob.keys), bob.recipient);
});

test('the layout of docs/devices.md §9.7, recomputed from X25519, ML-KEM-768, HKDF and ChaCha20-Poly1305 directly', () => {
  const { keys, recipient } = newSealKeys(drbg(seed(1)));
  const rng = drbg(seed(2));
  const sealed = sealTo(recipient, text, aad, rng);
  // The same draws, in the order the layout says: ephemeral X25519 private key, ML-KEM encapsulation seed.
  const again = drbg(seed(2));
  const ephPrivate = again(32);
  const encSeed = again(32);
  const ephPublic = x25519.getPublicKey(ephPrivate);
  const { cipherText, sharedSecret } = ml_kem768.encapsulate(recipient.kemPublic, encSeed);
  const shared = x25519.getSharedSecret(ephPrivate, recipient.dhPublic);
  const info = Buffer.concat([Buffer.from('Nightjar/devices/v1/seal'), ephPublic, recipient.dhPublic]);
  const key = Buffer.from(hkdfSync('sha256', Buffer.concat([shared, sharedSecret]), Buffer.alloc(0), info, 32));
  const cipher = createCipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
  cipher.setAAD(aad, { plaintextLength: text.length });
  const body = Buffer.concat([cipher.update(text), cipher.final(), cipher.getAuthTag()]);
  assert.equal(hex(sealed), hex(Buffer.concat([ephPublic, cipherText, body])));
  assert.deepEqual(openSealed(keys, sealed, aad), text);
  // Vector: SHA-256 of the sealed bytes for these seeds (the bytes themselves are 1,147 long).
  assert.equal(createHash('sha256').update(sealed).digest('hex'), VECTOR);
});

const VECTOR = 'ecf74e038f433b66624ca65d5579eabae6f7fd99f6ac2a3b1bc65fb82f8da072';
