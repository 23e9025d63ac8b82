/**
 * Rotation of a contact address's key-agreement keys (docs/agent.md §4.1).
 *
 * An address is long-lived, but its keys need not be: every
 * `rotateAfterMs` the agent makes new invitation keys and has the relay
 * hand them out instead, by sealing the full link again under the same
 * link key and setting it as the queue's link data (LSET). The short link
 * people already have stays valid and now yields the new keys. The
 * replaced key still opens requests for `graceMs` (someone may have
 * fetched the link just before, or their request may still wait in their
 * own outbox), then it is deleted with the request hashes only it could
 * open. A stolen device then exposes the first messages of requests made
 * within the last rotation plus grace period, not of every request ever.
 *
 * Crash safety: the new key is stored before the relay hands it out, and
 * only marked current after the relay's OK; a key stored but not yet
 * confirmed is tried on requests too and published again next time.
 *
 * An address shared as a full link (its relay keeps no link data) keeps
 * its keys: new ones would not reach anyone holding the link.
 */
import { decodeInvitationSecrets, encodeInvitationSecrets, invitationKeysOf } from '../crypto/x3dh.js';
import { newInvitation } from './ratchet-port.js';
import { ConnectionError, RelayError } from '../client/errors.js';
import { AgentError, type Clock } from './agent-api.js';
import type { AddressRow, AgentStore, RcvQueueRow } from './agent-store.js';
import { linkIdOf, sealLinkData } from './link-data.js';
import { decodeAnyLink, encodeLinkPayload } from './links.js';

const DAY_MS = 24 * 3600 * 1000;
/** How often an address gets new keys (Signal rotates its signed prekey on a similar schedule). */
export const ADDRESS_KEY_ROTATE_MS = 7 * DAY_MS;
/**
 * How long a replaced key still opens requests: covers a requester whose
 * first message waits in their own outbox for days (their relays down).
 */
export const ADDRESS_KEY_GRACE_MS = 14 * DAY_MS;

/** Sets a queue's link data on its relay (LSET); AgentError RELAY_UNREACHABLE, RelayError or ConnectionError when it cannot. */
export type LinkPublisher = (queue: RcvQueueRow, linkId: Uint8Array, data: Uint8Array) => Promise<void>;

export class AddressKeys {
  constructor(
    private readonly store: AgentStore,
    private readonly clock: Clock,
    private readonly publish: LinkPublisher,
    private readonly rotateAfterMs = ADDRESS_KEY_ROTATE_MS,
    private readonly graceMs = ADDRESS_KEY_GRACE_MS,
  ) {}

  /**
   * Rotates the keys of every address that is due (or whose last rotation
   * did not reach the relay), and deletes replaced keys past their grace
   * period. Returns whether anything changed. A relay that cannot be
   * reached leaves its address for the next round.
   */
  async rotateDue(): Promise<boolean> {
    const now = this.clock();
    let progress = this.store.tx(() => this.store.deleteRetiredAddressKeys(now - this.graceMs)) > 0;
    for (const address of this.store.addresses()) {
      const keys = this.store.addressKeys(address.id);
      const pending = keys.find((k) => k.published_at === null);
      const current = keys.find((k) => k.published_at !== null && k.retired_at === null);
      const due = pending !== undefined || (this.rotateAfterMs > 0 && (current === undefined || now - current.published_at! >= this.rotateAfterMs));
      if (!due) continue;
      try {
        if (await this.rotate(address)) progress = true;
      } catch (e) {
        // Unreachable, refused or too old a relay: the key waits, stored, for the next round.
        if (!(e instanceof AgentError && e.code === 'RELAY_UNREACHABLE') && !(e instanceof RelayError) && !(e instanceof ConnectionError)) throw e;
      }
    }
    return progress;
  }

  /** New keys for one address, handed out by its relay under the same short link. False: it has a full link, which cannot change. */
  private async rotate(address: AddressRow): Promise<boolean> {
    const link = decodeAnyLink(address.link);
    const queue = this.store.rcvQueue(address.rcv_queue_id);
    if (link.form !== 'short' || !queue) return false;
    const pending =
      this.store.addressKeys(address.id).find((k) => k.published_at === null) ??
      this.store.tx(() => {
        const secrets = encodeInvitationSecrets(newInvitation().secrets);
        const id = this.store.insertAddressKey(address.id, secrets, this.clock());
        return { id, secrets: Buffer.from(secrets) };
      });
    const payload = encodeLinkPayload({
      kind: 'address',
      relay: queue.relay,
      senderId: new Uint8Array(queue.sender_id),
      keys: invitationKeysOf(decodeInvitationSecrets(pending.secrets)),
      stampBits: address.stamp_bits,
    });
    await this.publish(queue, linkIdOf(link.linkKey), sealLinkData(link.linkKey, payload));
    this.store.tx(() => this.store.publishAddressKey(address.id, pending.id, this.clock()));
    return true;
  }
}
