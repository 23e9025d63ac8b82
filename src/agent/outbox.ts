/**
 * Puts agent messages in the outbox: ratchet-encrypted, in one transaction
 * with the new ratchet state, so a message once queued is sent byte for byte
 * the same however often it is retried (only the random fill after a
 * compact message is drawn anew for each attempt).
 */
import { AgentError } from './agent-api.js';
import type { AgentStore, ConnectionRow, SndQueueRow } from './agent-store.js';
import { COMPACT_ENVELOPE_VERSION, encodeEnvelope, encodeMessage, PADDED_RATCHET, type AgentMessage } from './envelope.js';
import { seal } from './ratchet-port.js';

export interface EnqueueOptions {
  readonly signed: boolean;
  readonly seq?: number;
  /** Held back until this receiving queue of ours is secured. */
  readonly waitRcvQueue?: number;
  /** What to do once the relay has it ('retire': drop the send queue). */
  readonly afterSent?: string;
}

export class Outbox {
  constructor(private readonly store: AgentStore) {}

  /** Queues `m` (signed) on every queue we currently send to (none: nothing happens); must run inside a transaction. */
  enqueueAll(connectionId: string, m: AgentMessage, opts: { seq?: number; waitRcvQueue?: number } = {}): void {
    const queues = this.store.currentSndQueues(connectionId);
    if (queues.length > 0) this.enqueueOn(this.keyed(connectionId), queues, m, { signed: true, ...opts });
  }

  /** Ratchet-encrypts `m` and queues it on one queue; must run inside a transaction. */
  enqueue(connectionId: string, sndQueueId: number, m: AgentMessage, opts: EnqueueOptions): void {
    this.enqueueOn(this.keyed(connectionId), [{ id: sndQueueId }], m, opts);
  }

  /**
   * Ratchet-encrypts `m` once per queue in `queues` (each copy its own
   * ratchet step) and queues the copies; the connection row `c`, as read
   * in this transaction, is written once, with the last ratchet state and
   * `alsoSet`. Must run inside a transaction.
   */
  enqueueOn(c: ConnectionRow, queues: readonly Pick<SndQueueRow, 'id'>[], m: AgentMessage, opts: EnqueueOptions, alsoSet: Partial<Omit<ConnectionRow, 'id'>> = {}): void {
    if (!c.ratchet || !c.ad) throw new AgentError('NOT_READY', 'the connection has no keys yet');
    const plaintext = encodeMessage(m);
    // Compact only to a contact known to read it; fill makes it full size on the wire (delivery.ts).
    const compact = c.peer_version >= COMPACT_ENVELOPE_VERSION;
    let ratchet: Buffer = c.ratchet;
    for (const snd of queues) {
      const sealed = seal(ratchet, c.role, plaintext, c.ad, PADDED_RATCHET, compact);
      ratchet = sealed.state;
      this.store.enqueue({
        connection_id: c.id,
        snd_queue_id: snd.id,
        seq: opts.seq ?? null,
        envelope: asBuffer(encodeEnvelope({ type: 'RATCHET', ratchet: sealed.out })),
        signed: opts.signed ? 1 : 0,
        wait_rcv_queue: opts.waitRcvQueue ?? null,
        after_sent: opts.afterSent ?? null,
      });
    }
    this.store.updateConnection(c.id, { ...alsoSet, ratchet });
  }

  private keyed(connectionId: string): ConnectionRow {
    const c = this.store.connection(connectionId);
    if (!c || c.status === 'deleted') throw new AgentError('UNKNOWN_CONNECTION', `no connection ${connectionId}`);
    return c;
  }
}

/** A Buffer over the same bytes (no copy): what the store's row type asks for. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
