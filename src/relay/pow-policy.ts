/**
 * How much proof of work NEW costs right now: the configured base, raised
 * by two bits for each doubling of queue creations per second above the
 * threshold, so a flood pays exponentially more while ordinary use stays
 * cheap. A relay with a password asks for none (the password gates it).
 *
 * Only NEWs that carry valid work at the base price count (the dispatcher
 * decides): raising the price for everyone then costs the base work per
 * NEW counted, instead of nothing, which is what unsolved NEWs cost.
 */
import { MAX_POW_BITS } from '../protocol/pow.js';

/** Window over which the creation rate is measured. */
const WINDOW_MS = 5000;
/** The most the load can add to the base. */
const MAX_EXTRA_BITS = 12;

export class PowPolicy {
  private readonly stamps: number[] = [];

  constructor(
    /** The price at rest. */
    readonly baseBits: number,
    private readonly threshold: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records one queue-creation attempt that carried valid work at the base price. */
  recordAttempt(): void {
    this.stamps.push(this.now());
  }

  /** Bits of work a NEW needs at this moment. */
  currentBits(): number {
    if (this.baseBits <= 0) return 0;
    const cutoff = this.now() - WINDOW_MS;
    while (this.stamps.length > 0 && this.stamps[0]! < cutoff) this.stamps.shift();
    const rate = this.stamps.length / (WINDOW_MS / 1000);
    const extra = rate > this.threshold ? Math.min(MAX_EXTRA_BITS, 2 * Math.ceil(Math.log2(rate / this.threshold))) : 0;
    return Math.min(MAX_POW_BITS, this.baseBits + extra);
  }
}
