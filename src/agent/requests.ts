/**
 * Contact requests arriving on one of our contact addresses
 * (docs/agent.md §4, "Contact address"): the checks in the order of their
 * cost, then one decryption, then a row for the owner to accept or reject.
 *
 *   1. the address exists and is not paused;
 *   2. the stamp (one hash): requests without the work never cost more;
 *   3. seen before? A request is known by SHA-256 of its join reply, which
 *      is fresh per request: a repeat (the relay delivering it again, or
 *      replaying one the owner already rejected) is dropped, so a stamp is
 *      good once;
 *   4. the hourly limit;
 *   5. decryption with the address's keys (the current one first, then one
 *      being published, then replaced ones still in their grace period:
 *      address-keys.ts); only then is it recorded as seen, under the key
 *      that opened it.
 */
import { createHash } from 'node:crypto';
import { acceptJoin, decodeInvitationSecrets, decodeJoinReply, KeyAgreementError } from '../crypto/x3dh.js';
import type { AgentHandlers, Clock } from './agent-api.js';
import type { AgentStore, RcvQueueRow } from './agent-store.js';
import { decodeMessage, EnvelopeError } from './envelope.js';
import { verifyStamp } from './stamp.js';
import { openFirst, RatchetError } from './ratchet-port.js';

/**
 * Requests an hour a new address lets through to the request list (0: no
 * limit): a busy day after publishing an address fits, a flood does not
 * fill the list; `setAddressLimit` changes it per address.
 */
export const DEFAULT_REQUESTS_PER_HOUR = 30;

const HOUR_SECONDS = 3600;

/** How the owner's agent knows a request it has seen: the hash of its join reply. */
export function requestHash(joinReply: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update('nightjar/request/v1').update(joinReply).digest());
}

export class RequestReceiver {
  constructor(
    private readonly store: AgentStore,
    private readonly handlers: AgentHandlers,
    private readonly clock: Clock,
  ) {}

  /** Handles a JOIN that arrived on an address queue; drops anything that fails a check. */
  receive(rcv: RcvQueueRow, stamp: Uint8Array, joinReply: Uint8Array, ratchetMessage: Uint8Array): void {
    const address = rcv.address_id === null ? undefined : this.store.address(rcv.address_id);
    if (!address || address.paused === 1) return;
    if (!verifyStamp(rcv.sender_id, joinReply, stamp, address.stamp_bits)) return;
    const hash = requestHash(joinReply);
    if (this.store.requestSeen(address.id, hash)) return;
    const now = Math.floor(this.clock() / 1000);
    if (address.max_per_hour > 0 && this.store.requestsSince(address.id, now - HOUR_SECONDS) >= address.max_per_hour) return;
    const opened = this.open(address.id, joinReply, ratchetMessage);
    if (!opened) return; // a request that does not decrypt never reaches the owner
    const { m } = opened;
    if (m.tag !== 'CONF' || !m.replyQueue) return;
    const replyQueue = m.replyQueue;
    this.store.tx(() => {
      const id = this.store.insertRequest({
        address_id: address.id,
        ratchet: opened.state,
        ad: Buffer.from(opened.ad),
        peer_info: Buffer.from(m.info),
        reply_relay: replyQueue.relay,
        reply_sender_id: Buffer.from(replyQueue.senderId),
        received_at: now,
      });
      this.store.markRequestSeen(address.id, hash, opened.keyId);
      this.store.logRequest(address.id, now, now - HOUR_SECONDS);
      this.handlers.onRequest({ requestId: String(id), addressId: address.id, peerInfo: m.info, receivedAt: now });
    });
  }

  /** The request decrypted with the first of the address's keys that opens it, or undefined. */
  private open(addressId: string, joinReply: Uint8Array, ratchetMessage: Uint8Array) {
    for (const key of this.store.addressKeys(addressId)) {
      try {
        const secrets = decodeInvitationSecrets(key.secrets);
        const shared = acceptJoin(secrets, decodeJoinReply(joinReply));
        const { state, out } = openFirst(shared, secrets, ratchetMessage, shared.associatedData);
        return { keyId: key.id, state, ad: shared.associatedData, m: decodeMessage(out) };
      } catch (e) {
        // Made with another of the keys, or with none of them (or this key's bytes are damaged): try the next.
        if (e instanceof KeyAgreementError || e instanceof RatchetError || e instanceof EnvelopeError) continue;
        throw e;
      }
    }
    return undefined;
  }
}
