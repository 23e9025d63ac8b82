/**
 * Sending what waits in the outbox (docs/agent.md §5): per connection,
 * each queue we send to is a lane whose messages leave in order; a
 * blocked message (its queue not secured yet, or waiting out a retry)
 * holds back only its own lane. A run of MSGs in a lane is pipelined (up
 * to SEND_WINDOW on the wire at once: the receiver orders MSGs by seq,
 * §5); every other message goes alone. What the relays confirmed leaves
 * the outbox in one transaction. A failed message is tried again after a
 * backoff that doubles with its attempts, with jitter (retryDelay).
 */
import { ConnectionError, RelayError } from '../client/errors.js';
import type { SenderQueue } from '../client/queues.js';
import { AgentError, type AgentHandlers, type Clock } from './agent-api.js';
import type { AgentStore, OutboxRow, SndQueueRow } from './agent-store.js';
import { errorFields, withMetadata, type AgentLogger } from './log.js';
import type { RelayDirectory } from './relays.js';
import { fillEnvelope } from './envelope.js';
import type { Router } from './routing.js';
import { relayAddress } from './relay-sessions.js';

/** MSGs of one lane on the wire at once. */
export const SEND_WINDOW = 16;
/** The wait before the first retry of a failed message; each further failure doubles it. */
export const RETRY_BASE_MS = 500;
/** The longest wait between two attempts. */
export const RETRY_MAX_MS = 5 * 60_000;

/** How long to wait before attempt `attempts + 1` of a message that failed `attempts` times: exponential, capped, with jitter (half to all of it). */
export function retryDelay(attempts: number, random: () => number = Math.random): number {
  const full = Math.min(RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1), RETRY_MAX_MS);
  return Math.round(full * (0.5 + random() / 2));
}

type Queued = Omit<OutboxRow, 'envelope'>;

/** What delivery tells the rest of the agent. */
export interface DeliveryHooks {
  /** A relay (or a route to it) could not be reached during this round. */
  unreachable(what: string): void;
  /** The first message of a link was refused: the link is spent; forget the connection. */
  linkSpent(connectionId: string): Promise<void>;
  /**
   * With several devices (docs/devices.md §3.3): this device's number, the
   * rows of its own it has not sent yet, and where accepted rows go
   * (proposed as agent.sent, which removes them on every device).
   */
  readonly replication?: {
    readonly device: () => number | undefined;
    deliverable<T extends { id: number }>(rows: readonly T[]): T[];
    sent(ids: readonly number[]): void;
  };
}

export class Delivery {
  constructor(
    private readonly store: AgentStore,
    private readonly router: Router,
    private readonly relays: RelayDirectory,
    private readonly handlers: AgentHandlers,
    private readonly clock: Clock,
    private readonly log: AgentLogger,
    private readonly hooks: DeliveryHooks,
  ) {}

  /**
   * Sends the connection's outbox in order until it is empty or every lane
   * is blocked; returns whether anything left. With `firstUse`, an AUTH on
   * the link's first message means the link is spent (LINK_USED or
   * ADDRESS_GONE). With `respectBackoff`, messages whose retry time has
   * not come wait (background retries); a user's command tries at once.
   */
  async flush(connectionId: string, options: { firstUse?: boolean; respectBackoff?: boolean } = {}): Promise<boolean> {
    let progress = false;
    const blocked = new Set<number>();
    const now = this.clock();
    const waiting = (r: Queued): boolean => options.respectBackoff === true && r.next_at !== null && r.next_at > now;
    // Read once and worked through, then once more for what was queued meanwhile: not once per
    // batch, which with a long outbox read every row again for each 16 sent.
    const device = this.hooks.replication?.device();
    const outbox = (): Queued[] => (device === undefined ? this.store.outboxOf(connectionId) : this.hooks.replication!.deliverable(this.store.outboxOf(connectionId, device)));
    let rows = outbox();
    let fresh = true;
    const drop = (ids: ReadonlySet<number>): void => void (rows = rows.filter((r) => !ids.has(r.id)));
    for (;;) {
      const row = rows.find((r) => !blocked.has(r.snd_queue_id));
      if (!row) {
        if (fresh) return progress;
        rows = outbox();
        fresh = true;
        continue;
      }
      const snd = this.store.sndQueue(row.snd_queue_id);
      if (!snd) {
        // With several devices the row goes when the event that dropped its queue says so.
        if (device === undefined) this.store.deleteOutgoing(row.id);
        drop(new Set([row.id]));
        continue;
      }
      const waitingForKey = row.wait_rcv_queue !== null && this.store.rcvQueue(row.wait_rcv_queue)?.secured !== 1;
      if (waitingForKey || (row.signed === 1 && snd.status === 'new') || waiting(row)) {
        blocked.add(snd.id);
        continue;
      }
      const batch = [row];
      if (pipelinable(row)) {
        for (const r of rows) {
          if (batch.length >= SEND_WINDOW) break;
          if (r.id <= row.id || r.snd_queue_id !== snd.id) continue;
          if (!pipelinable(r) || waiting(r)) break;
          batch.push(r);
        }
      }
      fresh = false;
      drop(new Set(batch.map((r) => r.id)));
      // A row read earlier in this pass may have gone since (its queue retired): nothing to send.
      const envelopes = batch.map((r) => this.store.envelopeOf(r.id));
      if (envelopes.some((e) => e === undefined)) continue;
      // What send() committed without a flush of its own is on disk before it leaves.
      this.store.flushToDisk();
      const results = await Promise.allSettled(batch.map((r, i) => this.router.send(connectionId, snd.relay, senderQueue(snd, r.signed === 1), fillEnvelope(envelopes[i]!))));
      const sent = batch.filter((_, i) => results[i]!.status === 'fulfilled');
      if (sent.length > 0) {
        if (device !== undefined) this.hooks.replication!.sent(sent.map((r) => r.id));
        // Unflushed: lost only with power, and then these are sent again and the contact drops them.
        else this.store.txUnflushed(() => this.confirmedRows(sent));
        progress = true;
      }
      const failures = results.flatMap((res, i) => (res.status === 'rejected' ? [{ row: batch[i]!, error: res.reason as unknown }] : []));
      if (failures.length === 0) continue;
      for (const f of failures) this.failed(f.row, snd, f.error);
      const first = failures[0]!;
      if (first.error instanceof RelayError && first.error.code === 'AUTH' && first.error.command === 'SEND' && first.row.signed === 0 && options.firstUse) {
        const role = this.store.connection(connectionId)?.role;
        await this.hooks.linkSpent(connectionId);
        throw role === 'requester'
          ? new AgentError('ADDRESS_GONE', 'this contact address no longer exists', { cause: first.error })
          : new AgentError('LINK_USED', 'this invitation link was already used', { cause: first.error });
      }
      // Unreachable, over quota or not yet secured: it stays queued and holds back its lane only.
      blocked.add(snd.id);
    }
  }

  /** Rows the relays accepted leave the outbox: shown as sent, a retired queue dropped (inside a transaction; agent.sent). */
  confirmed(ids: readonly number[]): void {
    const rows: Queued[] = [];
    for (const id of ids) {
      const r = this.store.outboxRow(id);
      if (r) rows.push(r);
    }
    this.confirmedRows(rows);
  }

  private confirmedRows(rows: readonly Queued[]): void {
    for (const r of rows) {
      this.store.deleteOutgoing(r.id);
      if (r.seq !== null) this.handlers.onSent(r.connection_id, r.seq);
      if (r.after_sent === 'retire') this.store.deleteSndQueue(r.snd_queue_id);
    }
  }

  /** Notes a failed attempt: when to try again, and what it says about the relay. */
  private failed(row: Queued, snd: SndQueueRow, e: unknown): void {
    const why = e instanceof Error ? e.message : String(e);
    this.store.markAttempt(row.id, why, this.clock() + retryDelay(row.attempts + 1));
    if (e instanceof AgentError && e.code === 'NO_FORWARDER') this.hooks.unreachable(`a forwarding relay for ${snd.relay}`);
    else if (!(e instanceof RelayError) || e.command !== 'SEND') {
      this.hooks.unreachable(snd.relay);
      if (this.relays.routing().mode === 'direct') this.relays.recordHealth(snd.relay, why);
    }
    const expected = e instanceof AgentError || e instanceof RelayError || e instanceof ConnectionError;
    if (expected) this.log.debug(withMetadata({ relay: snd.relay, attempts: row.attempts + 1, err: errorFields(e) }), 'a message stays queued');
    else this.log.warn({ attempts: row.attempts + 1, err: errorFields(e) }, 'a message stays queued after an unexpected error');
  }
}

/** A signed MSG with nothing to wait for: it may share the wire with the MSGs around it. */
function pipelinable(r: Queued): boolean {
  return r.seq !== null && r.signed === 1 && r.after_sent === null && r.wait_rcv_queue === null;
}

/** The relay client's view of a queue we send to. */
function senderQueue(snd: SndQueueRow, signed: boolean): SenderQueue {
  return { relay: relayAddress(snd.relay), senderId: new Uint8Array(snd.sender_id), senderKey: signed ? new Uint8Array(snd.sender_key) : undefined };
}
