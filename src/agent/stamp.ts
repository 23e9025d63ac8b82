/**
 * Proof-of-work stamps on contact requests. The owner of a contact address
 * publishes a difficulty in the address; a request must carry an 8-byte
 * nonce making
 *
 *   SHA-256("nightjar/stamp/v1" | addressSenderId (24) | joinReply (1153) | nonce (8))
 *
 * start with that many zero bits. The join reply is fresh per request, so a
 * stamp is good for one request only; the owner's agent checks it with one
 * hash before any other work, and drops requests without a valid stamp.
 */
import { createHash } from 'node:crypto';
import { leadingZeroBits, MAX_POW_BITS } from '../protocol/pow.js';

export const STAMP_LENGTH = 8;
/** Default difficulty of a new contact address: about 65 000 hashes, a fraction of a second. */
export const DEFAULT_STAMP_BITS = 16;
const LABEL = Buffer.from('nightjar/stamp/v1');

function digest(addressSenderId: Uint8Array, joinReply: Uint8Array, nonce: Uint8Array): Buffer {
  return createHash('sha256').update(LABEL).update(addressSenderId).update(joinReply).update(nonce).digest();
}

export function verifyStamp(addressSenderId: Uint8Array, joinReply: Uint8Array, nonce: Uint8Array, bits: number): boolean {
  if (bits <= 0) return true;
  return nonce.length === STAMP_LENGTH && leadingZeroBits(digest(addressSenderId, joinReply, nonce)) >= bits;
}

/** @example const stamp = makeStamp(link.senderId, encodeJoinReply(reply), link.stampBits); */
export function makeStamp(addressSenderId: Uint8Array, joinReply: Uint8Array, bits: number): Uint8Array {
  if (bits > MAX_POW_BITS) throw new RangeError(`a stamp of ${bits} bits is over the limit of ${MAX_POW_BITS}`);
  const nonce = Buffer.alloc(STAMP_LENGTH);
  if (bits <= 0) return new Uint8Array(nonce);
  for (let i = 0n; ; i++) {
    nonce.writeBigUInt64BE(i);
    if (leadingZeroBits(digest(addressSenderId, joinReply, nonce)) >= bits) return new Uint8Array(nonce);
  }
}
