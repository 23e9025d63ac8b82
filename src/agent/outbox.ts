/**
 * Puts agent messages in the outbox: ratchet-encrypted, in one transaction
 * with the new ratchet state, so a message once queued is sent byte for byte
 * the same however often it is retried.
 */
import { AgentError } from './agent-api.js';
import type { AgentStore } from './agent-store.js';
import { encodeEnvelope, encodeMessage, PADDED_RATCHET, type AgentMessage } from './envelope.js';
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

  /** Queues `m` (signed) on every queue we currently send to; must run inside a transaction. */
  enqueueAll(connectionId: string, m: AgentMessage, opts: { seq?: number; waitRcvQueue?: number } = {}): void {
    for (const snd of this.store.currentSndQueues(connectionId)) this.enqueue(connectionId, snd.id, m, { signed: true, ...opts });
  }

  /** Ratchet-encrypts `m` and queues it; must run inside a transaction. */
  enqueue(
    connectionId: string,
    sndQueueId: number,
    m: AgentMessage,
    opts: EnqueueOptions,
  ): void {
    const c = this.store.connection(connectionId);
    if (!c || c.status === 'deleted') throw new AgentError('UNKNOWN_CONNECTION', `no connection ${connectionId}`);
    if (!c.ratchet || !c.ad) throw new AgentError('NOT_READY', 'the connection has no keys yet');
    const { state, out: message } = seal(c.ratchet, c.role, encodeMessage(m), c.ad, PADDED_RATCHET);
    this.store.updateConnection(connectionId, { ratchet: state });
    this.store.enqueue({
      connection_id: connectionId,
      snd_queue_id: sndQueueId,
      seq: opts.seq ?? null,
      envelope: Buffer.from(encodeEnvelope({ type: 'RATCHET', ratchet: message })),
      signed: opts.signed ? 1 : 0,
      wait_rcv_queue: opts.waitRcvQueue ?? null,
      after_sent: opts.afterSent ?? null,
    });
  }
}
