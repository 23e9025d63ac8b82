/**
 * The sender's half of closing gaps (docs/agent.md §5.1): every MSG we send
 * is kept, as plaintext body, until the contact's receipt covers it, so a
 * message that a relay lost after its OK, or that expired there while the
 * contact was away, can be encrypted again and resent when the contact
 * asks (RSND). What we cannot resend we say so (LOST), and the contact
 * stops waiting for it at once. Also: when a queue we send to is lost, what
 * still waited for it moves to the queue that replaces it (§7).
 *
 * Every method runs inside the caller's transaction.
 */
import type { Clock } from './agent-api.js';
import type { AgentStore } from './agent-store.js';
import { MAX_RANGES, type SeqRange } from './envelope.js';
import type { Outbox } from './outbox.js';

const DAY_MS = 24 * 3600 * 1000;
/**
 * How long a sent message is kept for resending, unless a receipt covers it
 * first: longer than a relay keeps an undelivered message (21 days by
 * default), so one that expired there can still be sent again.
 */
export const RESEND_KEEP_MS = 30 * DAY_MS;
/** How many sent messages per connection are kept for resending at most (the last ones). */
export const RESEND_KEEP_COUNT = 1000;

export class Resender {
  constructor(
    private readonly store: AgentStore,
    private readonly outbox: Outbox,
    private readonly clock: Clock,
    /** When a body must be gone (its disappearing timer), as AgentHandlers.expiryOf says. */
    private readonly expiryOf: (body: Uint8Array, sentAt: number) => number | undefined = () => undefined,
  ) {}

  /** Keeps a MSG we are sending, for as long as it may have to be sent again (and no longer than its disappearing timer). */
  remember(connectionId: string, seq: number, sentAt: number, body: Uint8Array): void {
    this.store.logSent(connectionId, seq, sentAt, body, seq - RESEND_KEEP_COUNT + 1, this.expiryOf(body, sentAt) ?? null);
  }

  /** A receipt covers everything up to `upTo` (received, or given up on): nothing there will be asked for. */
  delivered(connectionId: string, upTo: number): void {
    this.store.forgetSentUpTo(connectionId, upTo);
  }

  /** Forgets what was sent RESEND_KEEP_MS ago or earlier, and erases every held body whose disappearing timer ran out. */
  forgetOld(): void {
    this.store.forgetSentUntil(Math.floor((this.clock() - RESEND_KEEP_MS) / 1000));
    this.store.eraseExpiredBodies(Math.floor(this.clock() / 1000));
  }

  /**
   * The contact asks for `ranges` again: each seq we still keep and that is
   * not already on its way is encrypted anew and queued on every queue we
   * send to; the seqs we no longer have are named in one LOST.
   */
  answer(connectionId: string, ranges: readonly SeqRange[]): void {
    const c = this.store.connection(connectionId);
    if (!c) return;
    const lost: SeqRange[] = [];
    for (const r of ranges) {
      const to = Math.min(r.to, c.next_seq - 1);
      if (r.from > to) continue;
      const queued = new Set(this.store.queuedSeqsBetween(connectionId, r.from, to));
      const kept = this.store.sentBetween(connectionId, r.from, to);
      let next = r.from;
      const known = [...new Set([...kept.map((k) => k.seq), ...queued])].sort((a, b) => a - b);
      for (const seq of known) {
        if (seq > next) lost.push({ from: next, to: seq - 1 });
        next = seq + 1;
      }
      if (next <= to) lost.push({ from: next, to });
      for (const k of kept) {
        if (queued.has(k.seq)) continue; // still on its way
        this.outbox.enqueueAll(connectionId, { tag: 'MSG', seq: k.seq, sentAt: k.sent_at, body: new Uint8Array(k.body) }, { seq: k.seq });
      }
    }
    // More than MAX_RANGES holes: the contact asks again for the rest, or gives up on them in time.
    if (lost.length > 0) this.outbox.enqueueAll(connectionId, { tag: 'LOST', ranges: lost.slice(0, MAX_RANGES) });
  }

  /**
   * The queue `lostId` is gone (its relay lost, QUSE with the lost flag) and
   * `replacementId` takes over: what waited for the lost queue moves to the
   * replacement, in order, except what a redundant queue already carried
   * (it was queued there too) and unsigned messages, which were for the
   * lost queue only.
   */
  moveLostLane(connectionId: string, lostId: number, replacementId: number): void {
    const others = this.store.currentSndQueues(connectionId).filter((q) => q.id !== lostId && q.id !== replacementId);
    const carried = (seq: number | null): boolean => seq !== null && others.some((q) => q.first_seq !== null && q.first_seq <= seq);
    for (const row of this.store.outboxOf(connectionId)) {
      if (row.snd_queue_id !== lostId) continue;
      if (row.signed === 0 || carried(row.seq)) this.store.deleteOutgoing(row.id);
      else this.store.moveOutgoing(row.id, replacementId);
    }
  }
}
