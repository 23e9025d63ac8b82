/**
 * ChaCha20-Poly1305 (RFC 8439) from node:crypto. Output is ciphertext || 16-byte tag.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { CryptoError, assertLength } from './errors.js';

export const AEAD_KEY_LENGTH = 32;
export const AEAD_NONCE_LENGTH = 12;
export const AEAD_TAG_LENGTH = 16;

/** Encrypts `plaintext`; returns ciphertext followed by the tag. */
export function seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array {
  assertLength(key, AEAD_KEY_LENGTH, 'AEAD key');
  assertLength(nonce, AEAD_NONCE_LENGTH, 'AEAD nonce');
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH });
  if (aad) cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  return new Uint8Array(Buffer.concat([head, tail, cipher.getAuthTag()]));
}

/** Decrypts and authenticates; throws CryptoError('DECRYPT') if anything was changed. */
export function open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array {
  assertLength(key, AEAD_KEY_LENGTH, 'AEAD key');
  assertLength(nonce, AEAD_NONCE_LENGTH, 'AEAD nonce');
  if (sealed.length < AEAD_TAG_LENGTH) throw new CryptoError('DECRYPT', 'ciphertext shorter than its tag');
  const body = sealed.subarray(0, sealed.length - AEAD_TAG_LENGTH);
  const tag = sealed.subarray(sealed.length - AEAD_TAG_LENGTH);
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH });
  decipher.setAuthTag(tag);
  if (aad) decipher.setAAD(aad, { plaintextLength: body.length });
  try {
    const head = decipher.update(body);
    const tail = decipher.final();
    return new Uint8Array(Buffer.concat([head, tail]));
  } catch {
    throw new CryptoError('DECRYPT', 'authentication failed');
  }
}
