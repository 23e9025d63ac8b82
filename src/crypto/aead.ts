/**
 * ChaCha20-Poly1305 (RFC 8439) from node:crypto. Output is ciphertext || 16-byte tag.
 *
 * Each call allocates its result once: `seal` writes ciphertext and tag
 * into one fresh buffer, `open` returns the decipher's own output (which
 * owns an ArrayBuffer of exactly its length) as a plain Uint8Array.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { CryptoError, assertLength } from './errors.js';

export const AEAD_KEY_LENGTH = 32;
export const AEAD_NONCE_LENGTH = 12;
export const AEAD_TAG_LENGTH = 16;

/**
 * Encrypts `plaintext`; returns `prefix` (when given, copied as is), then
 * the ciphertext, then the tag, in one buffer.
 *
 * @example
 *   const sealed = seal(key, nonce, utf8('hi'), ad); // 2 + 16 bytes
 */
export function seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array, prefix?: Uint8Array): Uint8Array {
  assertLength(key, AEAD_KEY_LENGTH, 'AEAD key');
  assertLength(nonce, AEAD_NONCE_LENGTH, 'AEAD nonce');
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH });
  if (aad) cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const at = prefix?.length ?? 0;
  const out = freshBytes(at + plaintext.length + AEAD_TAG_LENGTH);
  if (prefix) out.set(prefix);
  const head = cipher.update(plaintext);
  out.set(head, at);
  const tail = cipher.final(); // empty for a stream cipher; kept in case
  out.set(tail, at + head.length);
  out.set(cipher.getAuthTag(), at + head.length + tail.length);
  return out;
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
  let head: Buffer;
  let tail: Buffer;
  try {
    head = decipher.update(body);
    tail = decipher.final();
  } catch {
    throw new CryptoError('DECRYPT', 'authentication failed');
  }
  if (tail.length === 0 && head.byteOffset === 0 && head.buffer.byteLength === head.length) {
    // The plaintext owns its whole ArrayBuffer (what node:crypto returns): no copy needed.
    return new Uint8Array(head.buffer, 0, head.length);
  }
  const out = freshBytes(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}

/**
 * A Uint8Array of `n` bytes over its own ArrayBuffer, not zeroed (every
 * byte is written before it is returned): Buffer.allocUnsafeSlow never
 * hands out a slice of Node's shared pool.
 */
function freshBytes(n: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}
