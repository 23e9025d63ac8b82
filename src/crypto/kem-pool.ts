/**
 * ML-KEM-768 key pairs made ahead of time, off the path of the operation
 * that needs one (docs/e2e.md §3.4): an invitation, or a joiner's first PQ
 * epoch. A key pair is handed out once and never kept after; the next one is
 * made on a later turn of the event loop, so a long-running agent answers
 * `connect` and `invite` without the ~1 ms of a key generation. Safe because
 * a key pair made early is as fresh as one made late: nothing about it
 * depends on the connection it will serve.
 */
import { kemKeygen, type KemKeyPair } from './kem.js';

export class KemKeyPool {
  private ready: KemKeyPair[] = [];
  private refilling: NodeJS.Timeout | null = null;

  /** @param size how many key pairs to keep ready (each ~3.6 KB). */
  constructor(private readonly size = 1) {}

  /**
   * A fresh key pair: a prepared one if there is one, else made now.
   *
   * @example
   *   const invitation = createInvitation(undefined, pool.take());
   */
  take(): KemKeyPair {
    const pair = this.ready.shift() ?? kemKeygen();
    this.refill();
    return pair;
  }

  /** Makes key pairs until `size` are ready, one per turn of the event loop. */
  refill(): void {
    if (this.refilling || this.ready.length >= this.size) return;
    this.refilling = setTimeout(() => {
      this.refilling = null;
      this.ready.push(kemKeygen());
      this.refill();
    }, 0);
    // A pool never keeps a process alive.
    this.refilling.unref();
  }

  /** Key pairs ready now (for tests and diagnostics). */
  get prepared(): number {
    return this.ready.length;
  }

  /** Drops prepared key pairs and stops refilling. */
  clear(): void {
    if (this.refilling) clearTimeout(this.refilling);
    this.refilling = null;
    this.ready = [];
  }
}
