import { randomBytes as nodeRandomBytes } from 'node:crypto';

/** `n` bytes from the operating system's CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  return new Uint8Array(nodeRandomBytes(n));
}

/**
 * Where a function draws its randomness from: `n` bytes per call. Crypto
 * functions take one as an optional last argument so that tests and vector
 * generators can inject a deterministic source; production code omits it.
 *
 * @example
 *   const rng: RandomSource = randomBytes;
 *   rng(32).length === 32;
 */
export type RandomSource = (n: number) => Uint8Array;
