/**
 * A deterministic byte stream for test vectors, so that a second
 * implementation can reproduce every published e2e vector from its seed.
 * NEVER use it for real keys: its output is only as secret as the seed.
 */
import { ByteWriter } from './byte-codec.js';
import { sha256 } from './kdf.js';
import type { RandomSource } from './random.js';

/**
 * A `RandomSource` whose output is SHA-256(seed || u32be(0)) ||
 * SHA-256(seed || u32be(1)) || ..., consumed in order across calls.
 *
 * @example
 *   const rng = seededRandom(new TextEncoder().encode('vector seed'));
 *   const first = rng(12), next = rng(40); // next continues where first stopped
 */
export function seededRandom(seed: Uint8Array): RandomSource {
  const seedCopy = Uint8Array.from(seed);
  let counter = 0;
  let pool = new Uint8Array(0);
  return (n: number): Uint8Array => {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`cannot draw ${n} bytes`);
    while (pool.length < n) {
      const block = sha256(new ByteWriter().bytes(seedCopy).u32(counter).finish());
      counter += 1;
      const grown = new Uint8Array(pool.length + block.length);
      grown.set(pool);
      grown.set(block, pool.length);
      pool = grown;
    }
    const out = pool.slice(0, n);
    pool = pool.slice(n);
    return out;
  };
}
