/**
 * A contact whose agent misbehaves: puts agent messages of any bytes (values
 * an honest encoder refuses) into a connection's outbox, encrypted with the
 * connection's real ratchet, so the next sync() of that profile sends them
 * like any other message. For tests of what the receiving side does with them.
 */
import type Database from 'better-sqlite3-multiple-ciphers';
import { AgentStore } from '../../src/agent/agent-store.js';
import { encodeEnvelope, PADDED_RATCHET } from '../../src/agent/envelope.js';
import { deserializeRatchet, ratchetEncrypt, serializeRatchet } from '../../src/crypto/ratchet.js';
import { pqRole } from '../../src/agent/ratchet-port.js';
import { Writer } from '../../src/protocol/codec.js';

/** Message version and tag bytes, as docs/agent.md §3 numbers them. */
export const TAG = { MSG: 3, RCPT: 4 } as const;

/** The bytes of a MSG with any u64 values (`seq` and `sentAt` as bigints, so 2^64 - 1 fits). */
export function rawMsg(seq: bigint, sentAt: bigint, body: Uint8Array, version = 1): Uint8Array {
  return new Writer().u8(version).u8(TAG.MSG).u64(seq).u64(sentAt).bytes(body).finish();
}

/** The bytes of a RCPT with any upTo. */
export function rawRcpt(upTo: bigint, version = 1): Uint8Array {
  return new Writer().u8(version).u8(TAG.RCPT).u64(upTo).finish();
}

/**
 * Queues `message` (agent message bytes) on every queue the connection sends
 * to; with `consumeSeq` the connection's next seq moves on by one, as if an
 * honest MSG had used it. The profile's agent must not be running.
 */
export function injectMessage(db: Database.Database, connectionId: string, message: Uint8Array, consumeSeq = false): void {
  const store = new AgentStore(db);
  store.tx(() => {
    const c = store.connection(connectionId);
    if (!c?.ratchet || !c.ad) throw new Error(`connection ${connectionId} has no keys`);
    let ratchet = deserializeRatchet(c.ratchet, { role: pqRole(c.role) });
    for (const snd of store.currentSndQueues(connectionId)) {
      const { state, message: encrypted } = ratchetEncrypt(ratchet, message, c.ad, { paddedLength: PADDED_RATCHET });
      ratchet = state;
      store.enqueue({
        connection_id: connectionId,
        snd_queue_id: snd.id,
        seq: null,
        envelope: Buffer.from(encodeEnvelope({ type: 'RATCHET', ratchet: encrypted })),
        signed: 1,
        wait_rcv_queue: null,
        after_sent: null,
      });
    }
    store.updateConnection(connectionId, { ratchet: Buffer.from(serializeRatchet(ratchet)), ...(consumeSeq ? { next_seq: c.next_seq + 1 } : {}) });
  });
}

/** The seq the connection's next honest MSG gets. */
export function nextSeq(db: Database.Database, connectionId: string): number {
  return new AgentStore(db).connection(connectionId)!.next_seq;
}
