/**
 * The group's secrets as they travel between devices: in a link's OFFER
 * (docs/devices.md §9.6) and sealed to each remaining device in a
 * removal (§7, §9.7).
 *
 *   group = generation u32 | device u8 | groupKey (32) | logRelay short | logRecipientId short
 *         | logSenderId short | logRecipientKey short | logQueueKey short | logSenderKey short
 */
import type { Reader, Writer } from '../../protocol/codec.js';
import type { DeviceGroupRow } from './device-store.js';
import { GROUP_KEY_LENGTH } from './log-entry.js';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function writeGroup(w: Writer, g: DeviceGroupRow): Writer {
  if (g.group_key.length !== GROUP_KEY_LENGTH) throw new RangeError('a group key is 32 bytes');
  return w
    .u32(g.generation)
    .u8(g.device)
    .bytes(g.group_key)
    .short(utf8.encode(g.log_relay))
    .short(g.log_recipient_id)
    .short(g.log_sender_id)
    .short(g.log_recipient_key)
    .short(g.log_queue_key)
    .short(g.log_sender_key);
}

/** Reads a group (ProtocolError or TypeError for what is not one; the caller says whose error that is). */
export function readGroup(r: Reader): DeviceGroupRow {
  return {
    generation: r.u32('generation'),
    device: r.u8('device'),
    group_key: Buffer.from(r.bytesN(GROUP_KEY_LENGTH, 'group key')),
    log_relay: fromUtf8.decode(r.short('log relay')),
    log_recipient_id: Buffer.from(r.short('log recipient ID')),
    log_sender_id: Buffer.from(r.short('log sender ID')),
    log_recipient_key: Buffer.from(r.short('log recipient key')),
    log_queue_key: Buffer.from(r.short('log queue key')),
    log_sender_key: Buffer.from(r.short('log sender key')),
  };
}
