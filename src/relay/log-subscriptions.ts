/**
 * Log subscriptions (docs/protocol.md §9.15): any number of connections
 * read one log at once, each from its own cursor, and none ends another's.
 * A subscription pushes, in position order, every retained unexpired entry
 * at or above its cursor, then each new one as it is appended, moving its
 * cursor past each entry it pushes (a log has no ACK).
 *
 * Entries are read one at a time, each after a check of the connection's
 * output budget, as queue subscriptions read messages (dispatcher.ts): a
 * backlog stays on disk, not in memory, while its reader does not read,
 * and when a socket drains and every waiting subscription of the
 * connection reads at once, each holds one entry, not a batch.
 */
import type { Response } from '../protocol/commands.js';
import type { QueueStore } from './queue-store.js';
import { mustWaitForRoom, type OutputRoom } from './output-room.js';

/** What a subscription needs of its connection: pushes, and its output budget. */
export interface LogSubscriber extends OutputRoom {
  push(entityId: Uint8Array, response: Response): void;
}

interface LogSubscription<S extends LogSubscriber> {
  readonly subscriber: S;
  readonly recipientId: Uint8Array;
  /** The position of the next entry to push: entries below it were pushed, trimmed, dropped or expired. */
  cursor: number;
  busy: boolean;
  again: boolean;
  /** Waiting for the connection to drain before the next push. */
  waiting: boolean;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The log subscriptions of every connection (`S`, a connection) on one relay. */
export class LogSubscriptions<S extends LogSubscriber> {
  /** Log (hex recipient ID) → its subscriptions, one per connection. */
  private readonly byLog = new Map<string, Map<S, LogSubscription<S>>>();

  constructor(
    private readonly store: Pick<QueueStore, 'readEntries'>,
    /** Oldest creation time an entry may have and still be pushed (the TTL). */
    private readonly notBefore: () => number,
  ) {}

  /** Number of log subscriptions over every log and connection. */
  get size(): number {
    let n = 0;
    for (const subs of this.byLog.values()) n += subs.size;
    return n;
  }

  /**
   * Subscribes `subscriber` to the log from position `from`, or, if it is
   * subscribed already, moves its cursor there: it starts again from `from`.
   * Pushes begin in a later turn of the event loop, after the OK the
   * connection is about to send.
   *
   * @example
   *   logs.subscribe(connection, recipientId, 1); // the whole retained log, then every new entry
   */
  subscribe(subscriber: S, recipientId: Uint8Array, from: number): void {
    const key = hex(recipientId);
    let subs = this.byLog.get(key);
    if (!subs) this.byLog.set(key, (subs = new Map()));
    // A new object: a delivery still under way for the old cursor sees it replaced and stops.
    const sub: LogSubscription<S> = { subscriber, recipientId, cursor: from, busy: false, again: false, waiting: false };
    subs.set(subscriber, sub);
    setImmediate(() => void this.deliver(sub));
  }

  /** Pushes a newly appended entry to every subscription of the log whose cursor has reached it. */
  appended(recipientId: Uint8Array): void {
    for (const sub of this.byLog.get(hex(recipientId))?.values() ?? []) void this.deliver(sub);
  }

  /** Ends every subscription of a deleted log, without END; returns their subscribers. */
  endLog(recipientId: Uint8Array): S[] {
    const key = hex(recipientId);
    const subs = this.byLog.get(key);
    this.byLog.delete(key);
    return subs ? [...subs.keys()] : [];
  }

  /** Ends `subscriber`'s subscription of the log `key` (hex recipient ID), if it has one: its connection closed. */
  unsubscribe(subscriber: S, key: string): void {
    const subs = this.byLog.get(key);
    if (!subs?.delete(subscriber)) return;
    if (subs.size === 0) this.byLog.delete(key);
  }

  private current(sub: LogSubscription<S>): boolean {
    return this.byLog.get(hex(sub.recipientId))?.get(sub.subscriber) === sub;
  }

  /** Whether the connection's budget is spent; if so, delivery resumes when it drains. */
  private mustWait(sub: LogSubscription<S>): boolean {
    return mustWaitForRoom(sub, sub.subscriber, () => void this.deliver(sub));
  }

  /** Pushes the entries at and after the cursor, one read at a time, while the connection has room. */
  private async deliver(sub: LogSubscription<S>): Promise<void> {
    if (sub.busy) {
      sub.again = true;
      return;
    }
    sub.busy = true;
    try {
      do {
        sub.again = false;
        while (this.current(sub)) {
          if (this.mustWait(sub)) return;
          const [entry] = await this.store.readEntries(sub.recipientId, sub.cursor, this.notBefore(), 1);
          if (!entry) break;
          // Checked again right before the push: other pushes may have filled the budget meanwhile,
          // and the subscription may have moved or ended. The cursor stays, so the entry is read again.
          if (this.mustWait(sub) || !this.current(sub)) return;
          sub.subscriber.push(sub.recipientId, { type: 'LENT', entryId: entry.entryId, position: BigInt(entry.position), sealed: entry.sealed });
          sub.cursor = entry.position + 1;
        }
      } while (sub.again);
    } finally {
      sub.busy = false;
    }
  }
}
