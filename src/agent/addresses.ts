/**
 * Contact addresses, the owner's side (docs/agent.md §4): creating one on
 * a contact-mode queue, its settings, and deleting it. Requests that
 * arrive are checked in requests.ts; the address's keys rotate in
 * address-keys.ts.
 */
import { RelayError } from '../client/errors.js';
import { encodeInvitationSecrets } from '../crypto/x3dh.js';
import { newInvitation } from './ratchet-port.js';
import { AgentError, type Clock } from './agent-api.js';
import type { AgentStore } from './agent-store.js';
import { newId } from './handshake.js';
import type { RelayDirectory } from './relays.js';
import { recipientQueue, type RelaySessions } from './relay-sessions.js';
import { DEFAULT_REQUESTS_PER_HOUR } from './requests.js';
import type { ShortLinks } from './short-links.js';
import { DEFAULT_STAMP_BITS } from './stamp.js';
import type { PreparedConnection } from './prepared-connection.js';
import { Reader, Writer } from '../protocol/codec.js';

/** agent.address.set's settings (docs/devices.md §9.4). */
export const ADDRESS_PAUSED = 1;
export const ADDRESS_LIMIT = 2;

/** agent.address.set: address ID short | setting u8 | value u32. */
export function encodeAddressSetting(addressId: string, setting: typeof ADDRESS_PAUSED | typeof ADDRESS_LIMIT, value: number): Uint8Array {
  return new Writer().short(new TextEncoder().encode(addressId)).u8(setting).u32(value).finish();
}

export interface AddressInfo {
  readonly addressId: string;
  readonly link: string;
  readonly paused: boolean;
  readonly maxPerHour: number;
  readonly stampBits: number;
}

export class Addresses {
  constructor(
    private readonly store: AgentStore,
    private readonly sessions: RelaySessions,
    private readonly relays: RelayDirectory,
    private readonly links: ShortLinks,
    private readonly clock: Clock,
  ) {}

  /**
   * A long-lived contact address on a contact-mode queue, prepared: its queue
   * made and its link published; stored by applyPrepared. Each request must
   * carry `stampBits` of proof of work (published in the address); at most
   * `maxPerHour` requests an hour reach the request list (default
   * DEFAULT_REQUESTS_PER_HOUR; 0: no limit).
   */
  async prepare(options: { stampBits?: number; maxPerHour?: number } = {}): Promise<Extract<PreparedConnection, { kind: 'address' }>> {
    const stampBits = options.stampBits ?? DEFAULT_STAMP_BITS;
    const relay = this.relays.pickRelay();
    const addressId = newId();
    const queue = await this.sessions.newReceiveQueue(relay, 'contact', `address:${addressId}`);
    const invitation = newInvitation();
    const { link, linkId } = await this.links.publish(relay, queue, `address:${addressId}`, { kind: 'address', relay, senderId: queue.senderId, keys: invitation.keys, stampBits });
    return {
      kind: 'address',
      connectionId: addressId,
      myInfo: new Uint8Array(0),
      relay,
      queue,
      linkId,
      invitationSecrets: encodeInvitationSecrets(invitation.secrets),
      link,
      stampBits,
      maxPerHour: options.maxPerHour ?? DEFAULT_REQUESTS_PER_HOUR,
    };
  }

  /** Stores a prepared address (on every device, inside an operation, with several); returns its ID. */
  applyPrepared(p: Extract<PreparedConnection, { kind: 'address' }>): string {
    this.store.tx(() => {
      const rcv = this.sessions.insertRcv(null, p.connectionId, p.relay, p.queue, p.linkId);
      this.store.insertAddress({ id: p.connectionId, rcv_queue_id: rcv, link: p.link, stamp_bits: p.stampBits, max_per_hour: p.maxPerHour, created_at: this.clock() }, p.invitationSecrets);
    });
    return p.connectionId;
  }

  list(): AddressInfo[] {
    return this.store.addresses().map((r) => ({ addressId: r.id, link: r.link, paused: r.paused === 1, maxPerHour: r.max_per_hour, stampBits: r.stamp_bits }));
  }

  /** While paused, requests to the address are dropped unseen. */
  setPaused(addressId: string, paused: boolean): void {
    if (!this.store.updateAddress(addressId, { paused: paused ? 1 : 0 })) throw new AgentError('UNKNOWN_CONNECTION', 'no such contact address');
  }

  /** At most `perHour` requests an hour reach the request list (0: no limit). */
  setLimit(addressId: string, perHour: number): void {
    if (!this.store.updateAddress(addressId, { max_per_hour: perHour })) throw new AgentError('UNKNOWN_CONNECTION', 'no such contact address');
  }

  /** agent.address.set (encodeAddressSetting): one setting of one address. */
  applySetting(args: Uint8Array): void {
    const r = new Reader(args);
    const addressId = new TextDecoder().decode(r.short('address'));
    const setting = r.u8('setting');
    const value = r.u32('value');
    if (setting === ADDRESS_PAUSED) this.setPaused(addressId, value === 1);
    else if (setting === ADDRESS_LIMIT) this.setLimit(addressId, value);
  }

  /** Deletes the address queue on its relay (the step that talks to it; forget() then drops the rows). */
  async deleteRemote(addressId: string): Promise<void> {
    const row = this.store.address(addressId);
    if (!row) throw new AgentError('UNKNOWN_CONNECTION', 'no such contact address');
    const rcv = this.store.rcvQueue(row.rcv_queue_id);
    if (!rcv) return;
    const client = await this.sessions.forQueue(rcv);
    await client.deleteQueue(recipientQueue(rcv)).catch((e: unknown) => {
      // AUTH: the relay no longer has it, which is what we want.
      if (!(e instanceof RelayError && e.code === 'AUTH')) throw new AgentError('RELAY_UNREACHABLE', `could not delete the address queue: ${(e as Error).message}`, { cause: e });
    });
  }

  /** Drops a deleted address's rows (again is nothing). */
  forget(addressId: string): void {
    const row = this.store.address(addressId);
    if (!row) return;
    this.store.tx(() => {
      this.store.deleteAddressRows(addressId);
      this.store.deleteRcvQueue(row.rcv_queue_id);
    });
  }

  rejectRequest(requestId: string): void {
    if (!this.store.deleteRequest(Number(requestId))) throw new AgentError('UNKNOWN_REQUEST', `no contact request ${requestId}`);
  }
}
