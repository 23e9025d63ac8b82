/**
 * The receiver's half of in-order delivery and of closing gaps
 * (docs/agent.md §5 and §5.1).
 *
 * MSGs reach the chat layer exactly once and in seq order; one that comes
 * early waits in agent_recv_buffer. A gap (a missing seq below a waiting
 * message) is never permanent:
 *
 * - once it is `resendAfterMs` old we ask the contact to send the missing
 *   seqs again (RSND), then again after twice as long each time, at most
 *   every MAX_ASK_INTERVAL_MS;
 * - the contact resends what it kept, or answers LOST for what it no longer
 *   has, and we give up on those at once;
 * - a gap still open `skipAfterMs` after it was first seen is given up on
 *   as well (the contact may be away, or too old to answer RSND).
 *
 * Giving up skips the missing seqs: the chat layer is told how many
 * (onMessagesLost, before the messages that follow them), the messages held
 * behind the gap are delivered, and the next receipt names the skipped
 * ranges, so the sender does not take them for delivered.
 *
 * Every method except tick() runs inside the caller's transaction.
 */
import type { AgentHandlers, Clock } from './agent-api.js';
import type { AgentStore, ConnectionRow } from './agent-store.js';
import { MAX_RANGES, MAX_U64_FIELD, type SeqRange } from './envelope.js';
import type { Outbox } from './outbox.js';

/** A gap this old is asked for (RSND): messages on two queues may pass each other for a while. */
export const RESEND_AFTER_MS = 60_000;
/** Longest wait between two resend requests for the same gap. */
export const MAX_ASK_INTERVAL_MS = 6 * 3600 * 1000;
/** A gap this old is given up on and reported, whether or not the contact answered. */
export const GAP_SKIP_MS = 24 * 3600 * 1000;
/**
 * A MSG this far or further above the receive floor is dropped: only a
 * broken or hostile sender gets there (an honest one would need a million
 * messages lost in a row), and taking it would make the gap behind it
 * absurd.
 */
export const MAX_SEQ_AHEAD = 1_000_000;

export class Sequencer {
  constructor(
    private readonly store: AgentStore,
    private readonly handlers: AgentHandlers,
    private readonly outbox: Outbox,
    private readonly clock: Clock,
    private readonly resendAfterMs = RESEND_AFTER_MS,
    private readonly skipAfterMs = GAP_SKIP_MS,
  ) {}

  /** A MSG arrived: hand it over in order, or hold it back behind a gap. `sentAt` is already clamped. */
  receive(c: Pick<ConnectionRow, 'id' | 'recv_floor'>, seq: number, sentAt: number, body: Uint8Array): void {
    const connectionId = c.id;
    if (seq <= c.recv_floor || seq >= c.recv_floor + MAX_SEQ_AHEAD) return;
    if (seq > c.recv_floor + 1) {
      // floor + 1 is never held back (advance takes it at once), so only a later seq can be a repeat.
      if (!this.store.isBuffered(connectionId, seq)) this.store.bufferMessage(connectionId, seq, sentAt, body, this.clock(), this.handlers.expiryOf?.(body, sentAt) ?? null);
      return;
    }
    this.handlers.onMessage(connectionId, { seq, sentAt, body });
    this.advance(connectionId, seq);
  }

  /**
   * Missing seqs above the floor: the holes between held-back messages and,
   * with `tail`, everything after the last one (for when a whole queue was
   * lost and nothing may have arrived behind what is missing).
   */
  missing(connectionId: string, tail: boolean): SeqRange[] {
    const c = this.store.connection(connectionId)!;
    const out: SeqRange[] = [];
    let next = c.recv_floor + 1;
    for (const seq of this.store.bufferedSeqs(connectionId, 10_000)) {
      if (out.length === MAX_RANGES) return out;
      if (seq > next) out.push({ from: next, to: seq - 1 });
      next = seq + 1;
    }
    if (tail && out.length < MAX_RANGES) out.push({ from: next, to: MAX_U64_FIELD });
    return out;
  }

  /** The contact cannot resend `ranges` (LOST): stop waiting for whatever of them is next. */
  lost(connectionId: string, ranges: readonly SeqRange[]): void {
    for (const r of ranges) {
      const c = this.store.connection(connectionId)!;
      if (r.to <= c.recv_floor) continue;
      if (r.from > c.recv_floor + 1) return; // the seq we wait for is not among them: it may still come
      const held = this.store.bufferState(connectionId)?.first;
      const to = Math.min(r.to, held === undefined ? r.to : held - 1, c.recv_floor + MAX_SEQ_AHEAD - 1);
      if (to > c.recv_floor) this.skip(c, to);
    }
  }

  /**
   * For every connection with a gap: gives up on gaps older than
   * `skipAfterMs`, and asks for a resend when one is due. Returns whether
   * anything changed. Runs its own transactions.
   */
  tick(): boolean {
    let progress = false;
    for (const id of this.store.connectionsWithGaps()) {
      this.store.tx(() => {
        const now = this.clock();
        for (let gap = this.store.bufferState(id); gap && now - gap.since >= this.skipAfterMs; gap = this.store.bufferState(id)) {
          this.skip(this.store.connection(id)!, gap.first - 1);
          progress = true;
        }
        const c = this.store.connection(id);
        if (!c || !this.askDue(c, now)) return;
        this.outbox.enqueueAll(id, { tag: 'RSND', ranges: this.missing(id, false) });
        this.store.updateConnection(id, { gap_asks: c.gap_asks + 1, gap_asked_at: now });
        progress = true;
      });
    }
    return progress;
  }

  /** Whether tick() would do anything now (it changes nothing itself): with several devices, one proposes the tick then. */
  due(): boolean {
    const now = this.clock();
    return this.store.connectionsWithGaps().some((id) => {
      const gap = this.store.bufferState(id);
      const c = this.store.connection(id);
      return gap !== undefined && c !== undefined && (now - gap.since >= this.skipAfterMs || this.askDue(c, now));
    });
  }

  /** Whether the connection's gap is due to be asked for again (RSND). */
  private askDue(c: ConnectionRow, now: number): boolean {
    const gap = this.store.bufferState(c.id);
    if (c.status === 'deleted' || !gap || this.store.currentSndQueues(c.id).length === 0) return false;
    const wait = c.gap_asks === 0 ? this.resendAfterMs : Math.min(this.resendAfterMs * 2 ** c.gap_asks, MAX_ASK_INTERVAL_MS);
    return now - (c.gap_asked_at ?? gap.since) >= wait;
  }

  /** Gives up on floor+1 … `to`: tells the chat layer, delivers what waited behind, and says so in a receipt. */
  private skip(c: ConnectionRow, to: number): void {
    const skipped = { from: c.recv_floor + 1, to };
    this.handlers.onMessagesLost(c.id, { fromSeq: skipped.from, toSeq: skipped.to });
    const floor = this.advance(c.id, to);
    if (this.store.currentSndQueues(c.id).length === 0) return; // the next receipt covers it, without the ranges
    this.outbox.enqueueAll(c.id, { tag: 'RCPT', upTo: floor, skipped: [skipped] });
    this.store.updateConnection(c.id, { rcpt_sent: floor });
  }

  /** With everything up to `floor` handled, delivers what waited just above it; returns the new floor. */
  private advance(connectionId: string, floor: number): number {
    // Most messages come in order with nothing held back: then one look at the buffer is all.
    const held = this.store.bufferState(connectionId);
    for (let next = held !== undefined && held.first <= floor + 1 ? this.store.takeBuffered(connectionId, floor + 1) : undefined; next; next = this.store.takeBuffered(connectionId, floor + 1)) {
      floor += 1;
      // An empty body disappeared while it waited (eraseExpiredBodies): received, nothing to show.
      if (next.body.length > 0) this.handlers.onMessage(connectionId, { seq: floor, sentAt: next.sent_at, body: new Uint8Array(next.body) });
    }
    const gapClosed = held === undefined || this.store.bufferState(connectionId) === undefined;
    this.store.updateConnection(connectionId, { recv_floor: floor, rcpt_pending: floor, ...(gapClosed ? { gap_asks: 0, gap_asked_at: null } : {}) });
    return floor;
  }
}
