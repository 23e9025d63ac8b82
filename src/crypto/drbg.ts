/**
 * Deterministic random bytes from a secret seed (docs/devices.md §9.1).
 *
 * Several devices of one person apply the same event and must draw the
 * same "random" keys while doing so; the event carries a fresh 32-byte
 * seed from the author's CSPRNG, and every device expands it the same way:
 *
 *   key    = HKDF-SHA256(ikm = seed, salt = "", info = "nightjar/drbg/v1", L = 32)
 *   stream = ChaCha20(key, nonce = 12 zero bytes, block counter from 0)
 *
 * The output is as secret as the seed: use a seed once, and only for the
 * event that carries it.
 */
import { createCipheriv, type Cipher } from 'node:crypto';
import { hkdf } from './kdf.js';
import type { RandomSource } from './random.js';

export const DRBG_SEED_LENGTH = 32;
const DRBG_INFO = 'nightjar/drbg/v1';

/**
 * A `RandomSource` handing out the stream for `seed` in order, across calls.
 *
 * @example
 *   const rng = drbg(seedFromEvent);
 *   const nonce = rng(12), key = rng(32); // key continues where nonce stopped
 */
export function drbg(seed: Uint8Array): RandomSource {
  if (seed.length !== DRBG_SEED_LENGTH) throw new RangeError(`a DRBG seed is ${DRBG_SEED_LENGTH} bytes, got ${seed.length}`);
  const key = hkdf(seed, new Uint8Array(0), DRBG_INFO, 32);
  const stream = chacha20Stream(key);
  key.fill(0);
  return stream;
}

/** The ChaCha20 keystream of `key` (nonce zero, block counter from 0), handed out in order across calls. */
export function chacha20Stream(key: Uint8Array): RandomSource {
  // OpenSSL's chacha20 takes a 16-byte IV: the 32-bit block counter (little-endian), then the 96-bit nonce.
  const cipher: Cipher = createCipheriv('chacha20', key, new Uint8Array(16));
  return (n: number): Uint8Array => {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`cannot draw ${n} bytes`);
    const out = cipher.update(new Uint8Array(n));
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  };
}
