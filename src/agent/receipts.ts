/**
 * Delivery receipts, batched (docs/agent.md §5): one receipt says
 * "everything up to upTo arrived", so it acknowledges every message
 * received since the last one. It rides on our next MSG to the contact
 * (MSGR, when the contact reads version 3 messages), so an active
 * conversation costs no ratchet step for receipts; otherwise it goes
 * alone as RCPT, at once in sync() and after `delayMs` in start() mode
 * (a message of ours may come by meanwhile).
 *
 * The delay is timed on the process's monotonic clock, like network
 * time-outs: it is not a decision by age that tests move.
 */
import type { AgentStore, ConnectionRow } from './agent-store.js';
import { MAX_BODY_LENGTH, RECEIPT_ON_MSG_VERSION, receiptLength, type Receipt } from './envelope.js';
import type { Outbox } from './outbox.js';

/** How long a receipt waits in start() mode for a message of ours to ride on. */
export const RECEIPT_DELAY_MS = 250;

export class Receipts {
  /** performance.now() when each connection's owed receipt was first seen here. */
  private readonly owedSince = new Map<string, number>();
  /** With several devices: the rcpt_pending each connection's last proposed receipt covers. */
  private readonly proposedUpTo = new Map<string, number>();

  /** With several devices, how a due receipt is proposed to the device log (agent.receipt) instead of queued here; undefined on one device. */
  proposer: () => ((connectionId: string) => void) | undefined = () => undefined;

  constructor(
    private readonly store: AgentStore,
    private readonly outbox: Outbox,
    private readonly delayMs = RECEIPT_DELAY_MS,
  ) {}

  /** Queues the RCPT a connection is owed, if it still is and has a queue to send it on (agent.receipt). */
  queueNow(connectionId: string): void {
    const c = this.store.connection(connectionId);
    if (!c || c.status === 'deleted' || c.rcpt_pending <= c.rcpt_sent) return;
    if (this.store.currentSndQueues(c.id).length === 0) return;
    this.outbox.enqueueAll(c.id, { tag: 'RCPT', upTo: c.rcpt_pending, skipped: [] });
    this.store.updateConnection(c.id, { rcpt_sent: c.rcpt_pending });
  }

  /**
   * The receipt a MSG of `bodyLength` bytes to `c` carries, if one is owed,
   * the contact reads MSGR and it fits. Runs inside the send transaction,
   * whose caller records it as sent (`rcpt_sent = upTo`) with the message.
   */
  rideOn(c: ConnectionRow, bodyLength: number): Receipt | undefined {
    if (c.status !== 'ready' || c.peer_version < RECEIPT_ON_MSG_VERSION || c.rcpt_pending <= c.rcpt_sent) return undefined;
    const receipt: Receipt = { upTo: c.rcpt_pending, skipped: [] };
    if (bodyLength + receiptLength(receipt) > MAX_BODY_LENGTH) return undefined;
    this.owedSince.delete(c.id);
    return receipt;
  }

  /**
   * Queues a RCPT for each connection owed one: all of them when
   * `immediate`, else those owed for `delayMs`. Returns the milliseconds
   * until the next one is due, or undefined when none waits.
   */
  queueDue(immediate: boolean): number | undefined {
    const now = performance.now();
    let next: number | undefined;
    for (const c of this.store.receiptsOwed()) {
      const since = this.owedSince.get(c.id);
      const wait = (since ?? now) + this.delayMs - now;
      // Only one seen for the first time, or one about to go, needs its queues read: this runs after
      // every batch received, while a receipt waits for a message to ride on.
      if (since === undefined || immediate || wait <= 0) {
        if (this.store.currentSndQueues(c.id).length === 0) continue;
        if (since === undefined) this.owedSince.set(c.id, now);
      }
      if (!immediate && wait > 0) {
        next = Math.min(next ?? wait, wait);
        continue;
      }
      const propose = this.proposer();
      if (propose) {
        // Proposed once per owed count: until it is applied the connection still looks owed.
        if (this.proposedUpTo.get(c.id) !== c.rcpt_pending) {
          this.proposedUpTo.set(c.id, c.rcpt_pending);
          propose(c.id);
        }
      } else {
        this.store.tx(() => this.queueNow(c.id));
      }
      this.owedSince.delete(c.id);
    }
    return next;
  }
}
