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
import { Reader, Writer } from '../protocol/codec.js';

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

/**
 * With several devices (docs/devices.md §3.6): every change to an
 * address's keys is an operation applied on every device. `newKey`
 * proposes agent.address.key (the new secrets, stored unpublished) and
 * resolves with the key's row ID; `published` proposes
 * agent.address.published once the relay hands the key out.
 */
export interface AddressKeysReplication {
  active(): boolean;
  newKey(addressId: string, secrets: Uint8Array): Promise<number>;
  published(addressId: string, keyId: number): Promise<void>;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export class AddressKeys {
  constructor(
    private readonly store: AgentStore,
    private readonly clock: Clock,
    private readonly publish: LinkPublisher,
    private readonly rotateAfterMs = ADDRESS_KEY_ROTATE_MS,
    private readonly graceMs = ADDRESS_KEY_GRACE_MS,
    private readonly replication?: AddressKeysReplication,
  ) {}

  /** Deletes replaced keys past their grace period (on every device, with several: inside agent.tick); returns whether any. */
  forgetRetired(): boolean {
    return this.store.tx(() => this.store.deleteRetiredAddressKeys(this.clock() - this.graceMs)) > 0;
  }

  /** Whether forgetRetired() would delete anything now (it changes nothing itself). */
  forgetDue(): boolean {
    const before = this.clock() - this.graceMs;
    return this.store.addresses().some((a) => this.store.addressKeys(a.id).some((k) => k.retired_at !== null && k.retired_at <= before));
  }

  /** agent.address.key: addressId short | secrets (rest). Stores the new key unpublished; returns its row ID (0: no such address). */
  applyNewKey(args: Uint8Array): number {
    const r = new Reader(args);
    const addressId = fromUtf8.decode(r.short('address ID'));
    if (!this.store.addresses().some((a) => a.id === addressId)) return 0;
    return this.store.insertAddressKey(addressId, r.rest(), this.clock());
  }

  /** agent.address.published: addressId short | keyId u64. The relay hands the key out from the event's time on. */
  applyPublished(args: Uint8Array): void {
    const r = new Reader(args);
    const addressId = fromUtf8.decode(r.short('address ID'));
    const keyId = Number(r.u64('key ID'));
    if (this.store.addressKeys(addressId).some((k) => k.id === keyId && k.published_at === null)) this.store.publishAddressKey(addressId, keyId, this.clock());
  }

  /**
   * Rotates the keys of every address that is due (or whose last rotation
   * did not reach the relay), and deletes replaced keys past their grace
   * period. Returns whether anything changed. A relay that cannot be
   * reached leaves its address for the next round.
   */
  async rotateDue(): Promise<boolean> {
    const now = this.clock();
    // With several devices forgetting old keys goes by agent.tick; rotating is done by the leading device (scheduler.ts).
    let progress = this.replication?.active() === true ? false : this.forgetRetired();
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
    const pending = this.store.addressKeys(address.id).find((k) => k.published_at === null) ?? (await this.newKey(address.id));
    if (pending === undefined) return false;
    const payload = encodeLinkPayload({
      kind: 'address',
      relay: queue.relay,
      senderId: new Uint8Array(queue.sender_id),
      keys: invitationKeysOf(decodeInvitationSecrets(pending.secrets)),
      stampBits: address.stamp_bits,
    });
    await this.publish(queue, linkIdOf(link.linkKey), sealLinkData(link.linkKey, payload));
    if (this.replication?.active() === true) await this.replication.published(address.id, pending.id);
    else this.store.tx(() => this.store.publishAddressKey(address.id, pending.id, this.clock()));
    return true;
  }

  /** New secrets for an address, stored (on every device, with several) before any relay hands them out. */
  private async newKey(addressId: string): Promise<{ id: number; secrets: Buffer } | undefined> {
    const secrets = encodeInvitationSecrets(newInvitation().secrets);
    if (this.replication?.active() === true) {
      const id = await this.replication.newKey(addressId, secrets);
      return id === 0 ? undefined : { id, secrets: Buffer.from(secrets) };
    }
    return this.store.tx(() => ({ id: this.store.insertAddressKey(addressId, secrets, this.clock()), secrets: Buffer.from(secrets) }));
  }
}

/** agent.address.key's arguments. */
export function encodeNewAddressKey(addressId: string, secrets: Uint8Array): Uint8Array {
  return new Writer().short(utf8.encode(addressId)).bytes(secrets).finish();
}

/** agent.address.published's arguments. */
export function encodeAddressKeyPublished(addressId: string, keyId: number): Uint8Array {
  return new Writer().short(utf8.encode(addressId)).u64(BigInt(keyId)).finish();
}
