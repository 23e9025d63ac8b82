/**
 * Solving the proof of work a relay asks for NEW (docs/protocol.md §9.3)
 * without stalling the client: at the highest price a relay may ask, a
 * solution takes millions of hashes, seconds to minutes, during which the
 * client's event loop must keep serving its other connections and timers.
 *
 * A first slice of INLINE_ATTEMPTS hashes (a few milliseconds) runs on the
 * caller's thread, because starting a worker costs more than that and the
 * price at rest is about a thousand hashes. The rest runs in a worker
 * thread, which is terminated when the bound runs out.
 *
 * The worker is an eval worker (a script in a string, not a module file) so
 * that it runs the same from dist/ and from the TypeScript sources under
 * tsx, which does not reach worker threads on Node 20. Its loop computes
 * exactly `searchPow` of src/protocol/pow.ts, with the label handed over
 * from there; every nonce it returns is checked with `verifyPow` here, so
 * if the two ever differed a solve would fail loudly, not send bad work.
 */
import { Worker } from 'node:worker_threads';
import { MAX_POW_BITS, POW_LABEL, searchPow, verifyPow } from '../protocol/pow.js';
import { PowError } from './errors.js';

/** Hashes tried on the caller's thread before a worker takes over (about 2 to 8 ms). */
export const INLINE_ATTEMPTS = 2048;

// Dynamic imports, not require or import statements: an eval worker is a CommonJS script, or an
// ES module when the process runs with --input-type=module, and import() works in both.
const WORKER_SOURCE = `
(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const { createHash } = await import('node:crypto');
  const { label, binding, key, bits, from } = workerData;
  const prefix = createHash('sha256').update(label).update(binding).update(key);
  const nonce = Buffer.alloc(8);
  const leadingZeroBits = (bytes) => {
    let n = 0;
    for (const b of bytes) {
      if (b === 0) { n += 8; continue; }
      return n + Math.clz32(b) - 24;
    }
    return n;
  };
  for (let i = from; ; i++) {
    nonce.writeBigUInt64BE(i);
    if (leadingZeroBits(prefix.copy().update(nonce).digest()) >= bits) break;
  }
  parentPort.postMessage(new Uint8Array(nonce));
})();
`;

export interface PowBounds {
  /** The most bits this client grinds for; a relay asking more gets PowError TOO_HARD at once. */
  readonly maxBits: number;
  /** When to give up (performance.now() milliseconds): PowError TIMEOUT. */
  readonly deadline: number;
  /** The relay asking, for the error. */
  readonly relay: string;
  /** Aborting terminates the worker; the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/**
 * A nonce with `bits` of work for this session binding and key, found
 * without blocking the event loop for more than INLINE_ATTEMPTS hashes.
 * Rejects with PowError when `bits` is over `bounds.maxBits` (or the
 * protocol's MAX_POW_BITS) or the deadline passes first.
 *
 * @example
 *   const nonce = await solvePowOffThread(binding, authKey, 18, { maxBits: 28, deadline: performance.now() + 60_000, relay });
 */
export async function solvePowOffThread(binding: Uint8Array, key: Uint8Array, bits: number, bounds: PowBounds): Promise<Uint8Array> {
  if (bits > Math.min(bounds.maxBits, MAX_POW_BITS)) {
    throw new PowError('TOO_HARD', bounds.relay, bits, `relay asks ${bits} bits of work for NEW, more than the ${Math.min(bounds.maxBits, MAX_POW_BITS)} this client grinds for`);
  }
  const inline = searchPow(binding, key, bits, 0n, INLINE_ATTEMPTS);
  if (inline) return inline;
  const remaining = bounds.deadline - performance.now();
  if (remaining <= 0) throw timeout(bits, bounds.relay);
  bounds.signal?.throwIfAborted();
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { label: POW_LABEL, binding, key, bits, from: BigInt(INLINE_ATTEMPTS) },
  });
  const nonce = await new Promise<Uint8Array>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      bounds.signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
    };
    const onAbort = (): void => {
      done();
      reject(bounds.signal?.reason);
    };
    const timer = setTimeout(() => {
      done();
      reject(timeout(bits, bounds.relay));
    }, remaining);
    bounds.signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (n: Uint8Array) => {
      done();
      resolve(new Uint8Array(n));
    });
    worker.once('error', (e) => {
      done();
      reject(e);
    });
  });
  if (!verifyPow(binding, key, nonce, bits)) throw new Error('the proof-of-work worker returned a nonce that does not verify');
  return nonce;
}

function timeout(bits: number, relay: string): PowError {
  return new PowError('TIMEOUT', relay, bits, `no proof of work of ${bits} bits found in time for NEW`);
}
