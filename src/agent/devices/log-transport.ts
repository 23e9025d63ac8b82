/**
 * The device log over the relay's log queue (docs/protocol.md §9.15): a
 * session of its own to the log's relay (a lane of the relay pool, so the
 * relay cannot tie it to the sessions of the person's conversation
 * queues), appends as signed SENDs routed as the profile routes its
 * messages, reading with LSUB from a position.
 * The relay client subscribes again after a reconnect from the position
 * after the last entry it delivered.
 */
import type { RecipientQueue, SenderQueue } from '../../client/queues.js';
import type { RelayClient } from '../../client/relay-client.js';
import { relayAddress } from '../relay-sessions.js';
import type { DeviceGroupRow } from './device-store.js';
import type { DeviceLogTransport } from './replica.js';

/** The lane of the relay pool the device log uses. */
export const DEVICE_LOG_LANE = 'device-log';

export function logQueues(group: DeviceGroupRow): { readonly recipient: RecipientQueue; readonly sender: SenderQueue } {
  const relay = relayAddress(group.log_relay);
  return {
    recipient: {
      relay,
      recipientId: new Uint8Array(group.log_recipient_id),
      senderId: new Uint8Array(group.log_sender_id),
      recipientKey: new Uint8Array(group.log_recipient_key),
      queueKey: new Uint8Array(group.log_queue_key),
    },
    sender: { relay, senderId: new Uint8Array(group.log_sender_id), senderKey: new Uint8Array(group.log_sender_key) },
  };
}

/** Appends one entry to the log's queue, as the profile routes a SEND (direct, private or onion). */
export type LogAppend = (relay: string, queue: SenderQueue, entry: Uint8Array) => Promise<void>;

/**
 * `session(relay)`: the relay pool's session on the device-log lane, for
 * reading and trimming (which only a holder of the recipient key does,
 * from its own address, as for any receiving queue); `append`: how entries
 * go in, routed like any SEND so that the log's relay does not see from
 * where each device writes (default: on the same session).
 */
export function relayLogTransport(group: DeviceGroupRow, session: (relay: string) => Promise<RelayClient>, append?: LogAppend): DeviceLogTransport {
  const { recipient, sender } = logQueues(group);
  return {
    append: async (entry) => (append ? append(group.log_relay, sender, entry) : (await session(group.log_relay)).send(sender, entry)),
    subscribe: async (from, onEntry) => (await session(group.log_relay)).subscribeLog(recipient, from, (e) => onEntry(e.position, e.body)),
    trim: async (before) => (await session(group.log_relay)).trimLog(recipient, before),
    close: () => void session(group.log_relay).then((client) => client.forget(recipient), () => undefined),
  };
}
