/**
 * Proof of work for queue creation. A relay may ask for `bits` leading zero
 * bits in
 *
 *   SHA-256("nightjar/pow/new/v1" | sessionBinding (32) | recipientAuthKey (32) | nonce (8))
 *
 * The session binding ties a solution to one TLS session and the key ties
 * it to one queue, so work cannot be stockpiled or reused; the relay checks
 * it with a single hash.
 */
import { createHash } from 'node:crypto';

export const POW_NONCE_LENGTH = 8;
/** Hardest puzzle a relay may ask for; a client refuses more. */
export const MAX_POW_BITS = 28;
const LABEL = Buffer.from('nightjar/pow/new/v1');

function digest(binding: Uint8Array, key: Uint8Array, nonce: Uint8Array): Buffer {
  return createHash('sha256').update(LABEL).update(binding).update(key).update(nonce).digest();
}

/** Number of leading zero bits of `bytes`. */
export function leadingZeroBits(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) {
    if (b === 0) {
      n += 8;
      continue;
    }
    return n + Math.clz32(b) - 24;
  }
  return n;
}

/** Whether `nonce` carries at least `bits` of work for this session and key. */
export function verifyPow(binding: Uint8Array, key: Uint8Array, nonce: Uint8Array, bits: number): boolean {
  if (bits <= 0) return true;
  if (nonce.length !== POW_NONCE_LENGTH) return false;
  return leadingZeroBits(digest(binding, key, nonce)) >= bits;
}

/**
 * Finds a nonce with `bits` of work (about 2^bits hashes).
 * @example const nonce = solvePow(binding, authPublicKey, 12);
 */
export function solvePow(binding: Uint8Array, key: Uint8Array, bits: number): Uint8Array {
  if (bits > MAX_POW_BITS) throw new RangeError(`proof of work of ${bits} bits is over the limit of ${MAX_POW_BITS}`);
  const nonce = Buffer.alloc(POW_NONCE_LENGTH);
  for (let i = 0n; ; i++) {
    nonce.writeBigUInt64BE(i);
    if (leadingZeroBits(digest(binding, key, nonce)) >= bits) return new Uint8Array(nonce);
  }
}
