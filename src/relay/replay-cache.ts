/**
 * Remembers the ephemeral keys of forwarded requests for as long as their
 * timestamps are acceptable, so that a forwarding relay cannot replay a
 * request (docs/routing.md, "Replay").
 *
 * The cache is bounded (a full cache refuses, it never forgets early: that
 * would reopen the replay window), so it is also a resource one sender
 * could take from everyone. Each entry is therefore charged to the source
 * of the RFWD that made it, and a source may hold only its share of the
 * cache (docs/routing.md §7). The source is the connection's IP address
 * (for IPv6 its /64, what one host usually gets), not the connection
 * itself: entries outlive connections, so a per-connection count would
 * start again at zero with every reconnection.
 */
import { FORWARD_MAX_AGE_SECONDS, FORWARD_MAX_SKEW_SECONDS } from '../protocol/forward-crypto.js';
import { parseAddressNumber } from './special-addresses.js';

/**
 * A request stamped `ts` is accepted until `ts + FORWARD_MAX_AGE_SECONDS`, and
 * `ts` may be up to FORWARD_MAX_SKEW_SECONDS ahead: keeping a key this long
 * after it was first seen outlives every acceptable replay of it.
 */
export const REPLAY_WINDOW_MS = (FORWARD_MAX_AGE_SECONDS + FORWARD_MAX_SKEW_SECONDS + 1) * 1000;

/** 'full': the cache holds its maximum; 'share': the source holds its share. Nothing is recorded for either. */
export type ReplayVerdict = 'fresh' | 'replay' | 'full' | 'share';

/**
 * Whom a connection's replay-cache entries are charged to: its IPv4
 * address (an IPv4-mapped IPv6 address counts as that IPv4 address), or
 * the /64 of its IPv6 address.
 * @example replaySource('2001:db8:1:2:3:4:5:6') // '2001:db8:1:2::/64'
 */
export function replaySource(remoteAddress: string): string {
  const a = parseAddressNumber(remoteAddress);
  if (!a) return remoteAddress;
  if (a.family === 4) return remoteAddress;
  if (a.value >> 32n === 0xffffn) return [24n, 16n, 8n, 0n].map((s) => String((a.value >> s) & 0xffn)).join('.');
  const groups = [48n, 32n, 16n, 0n].map((s) => ((a.value >> (64n + s)) & 0xffffn).toString(16));
  return `${groups.join(':')}::/64`;
}

interface Entry {
  readonly expiry: number;
  readonly source: unknown;
}

export class ReplayCache {
  // Insertion order is expiry order (constant window), so expired keys are at the front.
  private readonly seen = new Map<string, Entry>();
  private readonly bySource = new Map<unknown, number>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = () => Date.now(),
    /** Most entries one source may hold (default: the whole cache). */
    private readonly maxPerSource: number = maxEntries,
  ) {}

  get size(): number {
    return this.seen.size;
  }

  /** Entries `source` holds now. */
  heldBy(source: unknown): number {
    return this.bySource.get(source) ?? 0;
  }

  /**
   * Records `key` for `source`: 'fresh' the first time, 'replay' after
   * (whoever sends it), 'share' when `source` holds its share, 'full' when
   * the cache holds its maximum (nothing recorded for either).
   */
  check(key: Uint8Array, source?: unknown): ReplayVerdict {
    const t = this.now();
    for (const [k, entry] of this.seen) {
      if (entry.expiry > t) break;
      this.seen.delete(k);
      const held = (this.bySource.get(entry.source) ?? 1) - 1;
      if (held > 0) this.bySource.set(entry.source, held);
      else this.bySource.delete(entry.source);
    }
    const id = Buffer.from(key).toString('hex');
    if (this.seen.has(id)) return 'replay';
    if (this.seen.size >= this.maxEntries) return 'full';
    if (this.heldBy(source) >= this.maxPerSource) return 'share';
    this.seen.set(id, { expiry: t + REPLAY_WINDOW_MS, source });
    this.bySource.set(source, this.heldBy(source) + 1);
    return 'fresh';
  }
}
