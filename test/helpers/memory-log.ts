/**
 * A stand-in for the relay's log queue (protocol §9.15) in unit tests of
 * what reads and appends to it: positions from 1, every subscriber gets
 * every entry in order, asynchronously, and appends can lose their answer
 * or be refused, and trims refused, as over a connection that drops.
 */
import type { DeviceLogTransport } from '../../src/agent/devices/replica.js';

/** The relay's log: positions from 1, every subscriber gets every entry in order, asynchronously. */
export class MemoryLog {
  readonly entries: Uint8Array[] = [];
  /** Positions up to this one are gone (trimmed), as a relay's LTRIM or quota leaves a log. */
  trimmedUpTo = 0;
  /** Every LTRIM that reached this log, by its `before`, in the order they came. */
  readonly trims: number[] = [];
  private readonly subscribers: { from: number; sent: number; on: (p: number, e: Uint8Array) => void; closed: boolean }[] = [];

  transport(faults: { loseAnswer?: () => boolean; refuse?: () => boolean; refuseTrim?: () => boolean } = {}): DeviceLogTransport & { close(): void } {
    const mine: (typeof this.subscribers)[number][] = [];
    return {
      append: async (entry) => {
        await tick();
        if (faults.refuse?.()) throw new Error('connection lost before the append');
        this.entries.push(Uint8Array.from(entry));
        this.pump();
        if (faults.loseAnswer?.()) throw new Error('connection lost before the OK');
      },
      subscribe: async (from, on) => {
        const s = { from, sent: from - 1, on, closed: false };
        this.subscribers.push(s);
        mine.push(s);
        this.pump();
      },
      trim: async (before) => {
        await tick();
        if (faults.refuseTrim?.()) throw new Error('connection lost before the LTRIM');
        this.trims.push(before);
        this.trimmedUpTo = Math.max(this.trimmedUpTo, before - 1);
      },
      close: () => mine.forEach((s) => (s.closed = true)),
    };
  }

  private pump(): void {
    setImmediate(() => {
      for (const s of this.subscribers) {
        // Trimmed positions are skipped, as the relay skips to the next entry it holds.
        if (s.sent < this.trimmedUpTo) s.sent = this.trimmedUpTo;
        while (!s.closed && s.sent < this.entries.length) {
          s.sent += 1;
          s.on(s.sent, this.entries[s.sent - 1]!);
        }
      }
    });
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
