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
/** Domain label hashed before everything else. */
export const POW_LABEL = Buffer.from('nightjar/pow/new/v1');

function digest(binding: Uint8Array, key: Uint8Array, nonce: Uint8Array): Buffer {
  return createHash('sha256').update(POW_LABEL).update(binding).update(key).update(nonce).digest();
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
 * Tries the nonces `from`, `from + 1`, ... (`count` of them, as u64
 * big-endian) and returns the first with `bits` of work, or undefined.
 * The hash of the fixed prefix is computed once and copied per nonce.
 * @example const nonce = searchPow(binding, authPublicKey, 10, 0n, 2048); // undefined if none of the 2 048 has it
 */
export function searchPow(binding: Uint8Array, key: Uint8Array, bits: number, from: bigint, count: number): Uint8Array | undefined {
  if (bits > MAX_POW_BITS) throw new RangeError(`proof of work of ${bits} bits is over the limit of ${MAX_POW_BITS}`);
  const prefix = createHash('sha256').update(POW_LABEL).update(binding).update(key);
  const nonce = Buffer.alloc(POW_NONCE_LENGTH);
  for (let i = 0; i < count; i++) {
    nonce.writeBigUInt64BE(from + BigInt(i));
    if (leadingZeroBits(prefix.copy().update(nonce).digest()) >= bits) return new Uint8Array(nonce);
  }
  return undefined;
}

/**
 * Finds a nonce with `bits` of work (about 2^bits hashes), blocking until it
 * has one: for tests and tools. The relay client solves off its event loop
 * (src/client/pow-solver.ts).
 * @example const nonce = solvePow(binding, authPublicKey, 12);
 */
export function solvePow(binding: Uint8Array, key: Uint8Array, bits: number): Uint8Array {
  for (let from = 0n; ; from += 1_000_000n) {
    const nonce = searchPow(binding, key, bits, from, 1_000_000);
    if (nonce) return nonce;
  }
}
