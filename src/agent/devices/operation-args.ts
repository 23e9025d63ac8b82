/**
 * The arguments of the agent's own device operations (docs/devices.md
 * §9.4, §9.7): pure encoders and decoders, with their vectors in
 * test/agent/devices/removal-layout.test.ts. Decoders throw ProtocolError
 * (or TypeError for text that is not UTF-8).
 */
import { Reader, Writer } from '../../protocol/codec.js';
import type { ReceivedMessage } from '../../client/queues.js';
import type { SealRecipient } from '../../crypto/hybrid-seal.js';
import { KEM_PUBLIC_KEY_LENGTH } from '../../crypto/kem.js';
import { KEY_LENGTH } from '../../crypto/keys.js';

/** A message as a device received it, by the recipient ID of its queue (the same on every device). */
export interface ReceivedItem {
  readonly recipientId: Uint8Array;
  readonly message: ReceivedMessage;
}

/** devices.keys, and the tail of devices.admit: dhPublic (32) | kemPublic (1184) */
export function encodeKeys(keys: SealRecipient): Uint8Array {
  return new Writer().bytes(keys.dhPublic).bytes(keys.kemPublic).finish();
}

export function decodeKeys(args: Uint8Array): SealRecipient {
  const r = new Reader(args);
  const keys = { dhPublic: Uint8Array.from(r.bytesN(KEY_LENGTH, 'X25519 key')), kemPublic: Uint8Array.from(r.bytesN(KEM_PUBLIC_KEY_LENGTH, 'ML-KEM key')) };
  r.end('device keys');
  return keys;
}

/** devices.admit: name short (UTF-8) | dhPublic (32) | kemPublic (1184) */
export function encodeAdmit(name: string, keys: SealRecipient): Uint8Array {
  return new Writer().short(new TextEncoder().encode(name)).bytes(encodeKeys(keys)).finish();
}

export function decodeAdmit(args: Uint8Array): { name: string; keys: SealRecipient } {
  const r = new Reader(args);
  const name = new TextDecoder().decode(r.short('name'));
  return { name, keys: decodeKeys(r.rest()) };
}

/** One remaining device's sealed copy of the new group. */
export interface RemovalCopy {
  readonly device: number;
  readonly sealed: Uint8Array;
}

export interface Removal {
  readonly device: number;
  readonly copies: readonly RemovalCopy[];
}

/** devices.remove: device u8 | count u8 | count × (device u8 | sealed group long) */
export function encodeRemoval(r: Removal): Uint8Array {
  const w = new Writer().u8(r.device).u8(r.copies.length);
  for (const c of r.copies) w.u8(c.device).long(c.sealed);
  return w.finish();
}

export function decodeRemoval(args: Uint8Array): Removal {
  const r = new Reader(args);
  const device = r.u8('device');
  const copies = Array.from({ length: r.u8('count') }, () => ({ device: r.u8('device'), sealed: r.long('sealed group') }));
  r.end('devices.remove');
  return { device, copies };
}

/** What a removal's sealed copy is bound to: "Nightjar/devices/v1/remove" | old generation u32 | removed device u8 | recipient device u8 */
export function removalAad(oldGeneration: number, removed: number, recipient: number): Uint8Array {
  return new Writer().bytes(new TextEncoder().encode('Nightjar/devices/v1/remove')).u32(oldGeneration).u8(removed).u8(recipient).finish();
}

/** agent.recv: count u8 | count × (recipientId (24) | msgId (24) | timestamp u64 | flags u8 | body long) */
export function encodeReceived(items: readonly ReceivedItem[]): Uint8Array {
  if (items.length === 0 || items.length > 0xff) throw new RangeError(`1..255 messages, got ${items.length}`);
  const w = new Writer().u8(items.length);
  for (const i of items) {
    w.bytes(i.recipientId).bytes(i.message.msgId).u64(BigInt(i.message.timestamp)).u8(i.message.flags).long(i.message.body);
  }
  return w.finish();
}

export function decodeReceived(args: Uint8Array): ReceivedItem[] {
  const r = new Reader(args);
  const n = r.u8('count');
  const out: ReceivedItem[] = [];
  for (let k = 0; k < n; k++) {
    const recipientId = r.bytesN(24, 'recipient ID');
    const msgId = r.bytesN(24, 'message ID');
    const timestamp = Number(r.u64('timestamp'));
    const flags = r.u8('flags');
    const body = r.long('body');
    out.push({ recipientId, message: { msgId, timestamp, flags, body } });
  }
  r.end('agent.recv');
  return out;
}

/** agent.sent: count u16 | count × id u64 */
export function encodeIds(ids: readonly number[]): Uint8Array {
  const w = new Writer().u16(ids.length);
  for (const id of ids) w.u64(BigInt(id));
  return w.finish();
}

export function decodeIds(args: Uint8Array): number[] {
  const r = new Reader(args);
  const n = r.u16('count');
  const ids: number[] = [];
  for (let k = 0; k < n; k++) ids.push(Number(r.u64('id')));
  r.end('agent.sent');
  return ids;
}
