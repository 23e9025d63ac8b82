/**
 * Fixed-size blocks: every transmission on the wire, in both directions,
 * is exactly BLOCK_SIZE bytes:
 *
 *   contentLength u16 | content (contentLength bytes) | zero padding
 *
 * A batch block's content is `count u8` followed by `count` transmissions,
 * each prefixed with its u16 length. Handshake blocks carry the hello as
 * their content directly.
 */
import { Reader } from './codec.js';
import { ProtocolError } from './errors.js';

/**
 * 16 KiB: the largest TLS record's plaintext (2^14), so one block is one
 * TLS record of constant size, and large enough for a 15 KiB message.
 */
export const BLOCK_SIZE = 16384;
/** Bytes of the block available to content. */
export const MAX_CONTENT_LENGTH = BLOCK_SIZE - 2;
/** The most transmissions one block may carry. */
export const MAX_BATCH = 255;
/** The largest single transmission a batch block can hold. */
export const MAX_TRANSMISSION_LENGTH = MAX_CONTENT_LENGTH - 1 - 2;

/** Pads `content` into one block. Throws RangeError if it does not fit. */
export function padBlock(content: Uint8Array): Uint8Array {
  if (content.length > MAX_CONTENT_LENGTH) throw new RangeError(`block content too long: ${content.length}`);
  const block = new Uint8Array(BLOCK_SIZE);
  block[0] = content.length >>> 8;
  block[1] = content.length & 0xff;
  block.set(content, 2);
  return block;
}

/** The content of one block (a view, no copy). */
export function unpadBlock(block: Uint8Array): Uint8Array {
  if (block.length !== BLOCK_SIZE) throw new ProtocolError('BLOCK', `block must be ${BLOCK_SIZE} bytes, got ${block.length}`);
  const length = (block[0]! << 8) | block[1]!;
  if (length > MAX_CONTENT_LENGTH) throw new ProtocolError('BLOCK', `content length ${length} exceeds block`);
  return block.subarray(2, 2 + length);
}

/**
 * A transmission not yet laid out: its length, and how to write it into
 * the `length` bytes the block keeps for it (so that a long body is copied
 * once, straight into the block).
 */
export interface PendingTransmission {
  readonly length: number;
  writeTo(out: Uint8Array): void;
}

/** Bytes a transmission occupies inside a batch block. */
export function batchCost(transmission: { readonly length: number }): number {
  return 2 + transmission.length;
}

/** One block holding all `transmissions`; the caller keeps the batch within the block (see `batchCost`). */
export function encodeBatch(transmissions: readonly (Uint8Array | PendingTransmission)[]): Uint8Array {
  if (transmissions.length === 0 || transmissions.length > MAX_BATCH) {
    throw new RangeError(`a batch holds 1..${MAX_BATCH} transmissions, got ${transmissions.length}`);
  }
  let length = 1;
  for (const t of transmissions) {
    if (t.length > 0xffff) throw new RangeError(`long string too long: ${t.length}`);
    length += batchCost(t);
  }
  if (length > MAX_CONTENT_LENGTH) throw new RangeError(`block content too long: ${length}`);
  // Written in place: count, then each transmission after its u16 length; the rest stays zero.
  const block = new Uint8Array(BLOCK_SIZE);
  block[0] = length >>> 8;
  block[1] = length & 0xff;
  block[2] = transmissions.length;
  let at = 3;
  for (const t of transmissions) {
    block[at] = t.length >>> 8;
    block[at + 1] = t.length & 0xff;
    if (t instanceof Uint8Array) block.set(t, at + 2);
    else t.writeTo(block.subarray(at + 2, at + 2 + t.length));
    at += 2 + t.length;
  }
  return block;
}

/** The transmissions of a batch block (views into `block`). */
export function decodeBatch(block: Uint8Array): Uint8Array[] {
  const r = new Reader(unpadBlock(block), 'BLOCK');
  const count = r.u8('batch count');
  if (count === 0) throw new ProtocolError('BLOCK', 'empty batch');
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(r.long('transmission'));
  r.end('batch');
  return out;
}

/**
 * Splits transmissions into as few blocks as possible, in order.
 * A transmission larger than MAX_TRANSMISSION_LENGTH throws RangeError.
 */
export function packBatches<T extends { readonly length: number }>(transmissions: readonly T[]): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let used = 1;
  for (const t of transmissions) {
    if (t.length > MAX_TRANSMISSION_LENGTH) throw new RangeError(`transmission too long: ${t.length}`);
    const cost = batchCost(t);
    if (current.length > 0 && (used + cost > MAX_CONTENT_LENGTH || current.length === MAX_BATCH)) {
      batches.push(current);
      current = [];
      used = 1;
    }
    current.push(t);
    used += cost;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
