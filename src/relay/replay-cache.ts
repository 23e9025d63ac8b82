/**
 * Remembers the ephemeral keys of forwarded requests for as long as their
 * timestamps are acceptable, so that a forwarding relay cannot replay a
 * request (docs/routing.md, "Replay").
 */
import { FORWARD_MAX_AGE_SECONDS, FORWARD_MAX_SKEW_SECONDS } from '../protocol/forward-crypto.js';

/**
 * A request stamped `ts` is accepted until `ts + FORWARD_MAX_AGE_SECONDS`, and
 * `ts` may be up to FORWARD_MAX_SKEW_SECONDS ahead: keeping a key this long
 * after it was first seen outlives every acceptable replay of it.
 */
export const REPLAY_WINDOW_MS = (FORWARD_MAX_AGE_SECONDS + FORWARD_MAX_SKEW_SECONDS + 1) * 1000;

export type ReplayVerdict = 'fresh' | 'replay' | 'full';

export class ReplayCache {
  // Insertion order is expiry order (constant window), so expired keys are at the front.
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  get size(): number {
    return this.seen.size;
  }

  /** Records `key`: 'fresh' the first time, 'replay' after, 'full' when the cache cannot take more (nothing recorded). */
  check(key: Uint8Array): ReplayVerdict {
    const t = this.now();
    for (const [k, expiry] of this.seen) {
      if (expiry > t) break;
      this.seen.delete(k);
    }
    const id = Buffer.from(key).toString('hex');
    if (this.seen.has(id)) return 'replay';
    if (this.seen.size >= this.maxEntries) return 'full';
    this.seen.set(id, t + REPLAY_WINDOW_MS);
    return 'fresh';
  }
}
