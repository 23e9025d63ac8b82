/**
 * A device that stopped on a gap in its log gets a fresh copy of the
 * profile from another device (docs/devices.md §8, §9.8), over the log
 * and a one-time mailbox:
 *
 *   devices.resync        device u8 | nonce (16)                            the stale device asks
 *   devices.resync.offer  device u8 | nonce (16) | sealed offer long        another device answers
 *   offer (sealed to the asking device's keys, hybrid-seal.ts; aad = "Nightjar/devices/v1/resync" | generation u32 | device u8 | nonce)
 *         = relay short | queue | chunkKey (32) | chunkCount u32 | resumeFrom u64
 *   queue = recipientId short | senderId short | recipientKey short | queueKey short
 *   mailbox entry i = ChaCha20-Poly1305(chunkKey, nonce = i as 12 bytes big-endian, snapshot chunk i)
 *
 * The mailbox is a log queue on the device log's relay that the answering
 * device made and filled; the relay sees sealed entries only.
 */
import { open as aeadOpen, seal as aeadSeal, AEAD_NONCE_LENGTH } from '../../crypto/aead.js';
import { Reader, Writer } from '../../protocol/codec.js';
import { readQueue, writeQueue, type QueueSecrets } from '../prepared-connection.js';

export const RESYNC_NONCE_LENGTH = 16;
const CHUNK_KEY_LENGTH = 32;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export interface ResyncRequest {
  readonly device: number;
  readonly nonce: Uint8Array;
}

export interface ResyncOffer extends ResyncRequest {
  readonly sealed: Uint8Array;
}

/** What the sealed offer carries. */
export interface Mailbox {
  readonly relay: string;
  readonly queue: QueueSecrets;
  readonly chunkKey: Uint8Array;
  readonly chunkCount: number;
  readonly resumeFrom: number;
}

export function encodeResyncRequest(r: ResyncRequest): Uint8Array {
  return new Writer().u8(r.device).bytes(r.nonce).finish();
}

export function decodeResyncRequest(args: Uint8Array): ResyncRequest {
  const r = new Reader(args);
  const out = { device: r.u8('device'), nonce: Uint8Array.from(r.bytesN(RESYNC_NONCE_LENGTH, 'nonce')) };
  r.end('devices.resync');
  return out;
}

export function encodeResyncOffer(o: ResyncOffer): Uint8Array {
  return new Writer().u8(o.device).bytes(o.nonce).long(o.sealed).finish();
}

export function decodeResyncOffer(args: Uint8Array): ResyncOffer {
  const r = new Reader(args);
  const out = { device: r.u8('device'), nonce: Uint8Array.from(r.bytesN(RESYNC_NONCE_LENGTH, 'nonce')), sealed: r.long('sealed offer') };
  r.end('devices.resync.offer');
  return out;
}

export function encodeMailbox(m: Mailbox): Uint8Array {
  return writeQueue(new Writer().short(utf8.encode(m.relay)), m.queue).bytes(m.chunkKey).u32(m.chunkCount).u64(BigInt(m.resumeFrom)).finish();
}

export function decodeMailbox(bytes: Uint8Array): Mailbox {
  const r = new Reader(bytes);
  const relay = fromUtf8.decode(r.short('relay'));
  const queue = readQueue(r);
  const out = { relay, queue, chunkKey: Uint8Array.from(r.bytesN(CHUNK_KEY_LENGTH, 'chunk key')), chunkCount: r.u32('chunk count'), resumeFrom: Number(r.u64('resume from')) };
  r.end('mailbox');
  return out;
}

/** What a sealed offer is bound to: the group's generation, the asking device and its request. */
export function resyncAad(generation: number, device: number, nonce: Uint8Array): Uint8Array {
  return new Writer().bytes(utf8.encode('Nightjar/devices/v1/resync')).u32(generation).u8(device).bytes(nonce).finish();
}

function chunkNonce(index: number): Uint8Array {
  const nonce = new Uint8Array(AEAD_NONCE_LENGTH);
  new DataView(nonce.buffer).setUint32(AEAD_NONCE_LENGTH - 4, index);
  return nonce;
}

export function sealChunk(key: Uint8Array, index: number, chunk: Uint8Array): Uint8Array {
  return aeadSeal(key, chunkNonce(index), chunk);
}

/** CryptoError DECRYPT for an entry that is not chunk `index` under `key`. */
export function openChunk(key: Uint8Array, index: number, sealed: Uint8Array): Uint8Array {
  return aeadOpen(key, chunkNonce(index), sealed);
}

export { CHUNK_KEY_LENGTH };
