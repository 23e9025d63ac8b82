import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CryptoError } from '../../src/crypto/errors.js';
import { AEAD_TAG_LENGTH, open, seal } from '../../src/crypto/aead.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const decryptError = (err: unknown) => err instanceof CryptoError && err.code === 'DECRYPT';

// RFC 8439 §2.8.2.
const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
const nonce = hex('070000004041424344454647');
const aad = hex('50515253c0c1c2c3c4c5c6c7');
const plaintext = new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
const expected =
  'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116' +
  '1ae10b594f09e26a7e902ecbd0600691';

test('seal: RFC 8439 vector, ciphertext then tag, in a Uint8Array of its own', () => {
  const sealed = seal(key, nonce, plaintext, aad);
  assert.equal(Buffer.from(sealed).toString('hex'), expected);
  assert.equal(Object.getPrototypeOf(sealed), Uint8Array.prototype);
  assert.equal(sealed.byteOffset, 0);
  assert.equal(sealed.buffer.byteLength, sealed.length);
});

test('seal with a prefix: the prefix, then exactly what seal alone gives', () => {
  const prefix = Uint8Array.of(9, 8, 7);
  const sealed = seal(key, nonce, plaintext, aad, prefix);
  assert.equal(Buffer.from(sealed).toString('hex'), '090807' + expected);
  assert.deepEqual(open(key, nonce, sealed.subarray(3), aad), plaintext);
});

test('open: the plaintext, in a Uint8Array of its own; empty plaintext too', () => {
  const opened = open(key, nonce, hex(expected), aad);
  assert.deepEqual(opened, plaintext);
  assert.equal(Object.getPrototypeOf(opened), Uint8Array.prototype);
  assert.equal(opened.buffer.byteLength, opened.length);
  const empty = seal(key, nonce, new Uint8Array(0));
  assert.equal(empty.length, AEAD_TAG_LENGTH);
  assert.deepEqual(open(key, nonce, empty), new Uint8Array(0));
});

test('open: any changed byte of ciphertext, tag or AAD, or a short input, is DECRYPT', () => {
  const sealed = hex(expected);
  for (const at of [0, 50, sealed.length - AEAD_TAG_LENGTH - 1, sealed.length - AEAD_TAG_LENGTH, sealed.length - 1]) {
    const bad = sealed.slice();
    bad[at]! ^= 1;
    assert.throws(() => open(key, nonce, bad, aad), decryptError);
  }
  const badAad = aad.slice();
  badAad[0]! ^= 1;
  assert.throws(() => open(key, nonce, sealed, badAad), decryptError);
  assert.throws(() => open(key, nonce, sealed), decryptError);
  assert.throws(() => open(key, nonce, sealed.subarray(0, AEAD_TAG_LENGTH - 1), aad), decryptError);
});
