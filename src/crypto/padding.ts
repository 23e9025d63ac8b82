/**
 * Message padding applied before encryption, so that ciphertext length
 * reveals only a fixed size or a coarse bucket, never the content length.
 *
 * Layout: u32be(content length) || content || zero bytes up to the size.
 */
import { ByteWriter } from './byte-codec.js';

/** Bytes taken by the big-endian content-length prefix. */
export const PAD_PREFIX_LENGTH = 4;

/**
 * Padded sizes used when the caller does not ask for a fixed size. Coarse on
 * purpose: each step is 4x, so a bucket says little about the content.
 */
export const MESSAGE_BUCKETS: readonly number[] = [256, 1024, 4096, 16384, 65536];

const MAX_PADDED_SIZE = 0xffff_ffff;

export type PaddingErrorCode =
  | 'TOO_LARGE' // content does not fit in the requested size or the largest bucket
  | 'BAD_PADDING' // unpad: truncated, length beyond the buffer, or non-zero padding
  | 'BAD_SIZE'; // a requested size or bucket list that cannot hold even the prefix

export class PaddingError extends Error {
  override readonly name = 'PaddingError';
  constructor(
    readonly code: PaddingErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Pads `content` to exactly `size` bytes.
 *
 * @example
 *   pad(utf8('hi'), 16); // 00000002 6869 00…00 (16 bytes)
 */
export function pad(content: Uint8Array, size: number): Uint8Array {
  if (!Number.isSafeInteger(size) || size < PAD_PREFIX_LENGTH || size > MAX_PADDED_SIZE) {
    throw new PaddingError('BAD_SIZE', `padded size ${size} is not an integer in [${PAD_PREFIX_LENGTH}, ${MAX_PADDED_SIZE}]`);
  }
  if (content.length > size - PAD_PREFIX_LENGTH) {
    throw new PaddingError('TOO_LARGE', `${content.length} bytes of content do not fit in ${size} padded bytes`);
  }
  return new ByteWriter()
    .u32(content.length)
    .bytes(content)
    .bytes(new Uint8Array(size - PAD_PREFIX_LENGTH - content.length))
    .finish();
}

/**
 * The smallest bucket that holds `contentLength` bytes plus the prefix.
 *
 * @example
 *   paddedSize(300); // 1024
 */
export function paddedSize(contentLength: number, buckets: readonly number[] = MESSAGE_BUCKETS): number {
  for (const bucket of buckets) {
    if (!Number.isSafeInteger(bucket) || bucket < PAD_PREFIX_LENGTH) {
      throw new PaddingError('BAD_SIZE', `bucket ${bucket} cannot hold the length prefix`);
    }
    if (contentLength + PAD_PREFIX_LENGTH <= bucket) return bucket;
  }
  throw new PaddingError('TOO_LARGE', `${contentLength} bytes of content exceed the largest bucket`);
}

/**
 * Pads `content` to the smallest fitting bucket (ascending list).
 *
 * @example
 *   padToBucket(utf8('hello')).length; // 256
 */
export function padToBucket(content: Uint8Array, buckets: readonly number[] = MESSAGE_BUCKETS): Uint8Array {
  return pad(content, paddedSize(content.length, buckets));
}

/**
 * The content of a padded buffer. Rejects a prefix that points past the end
 * and any non-zero padding byte, so that exactly one encoding is accepted.
 *
 * @example
 *   unpad(pad(content, 256)); // content
 */
export function unpad(padded: Uint8Array): Uint8Array {
  if (padded.length < PAD_PREFIX_LENGTH) throw new PaddingError('BAD_PADDING', 'shorter than the length prefix');
  const length = new DataView(padded.buffer, padded.byteOffset, PAD_PREFIX_LENGTH).getUint32(0);
  if (length > padded.length - PAD_PREFIX_LENGTH) {
    throw new PaddingError('BAD_PADDING', `content length ${length} exceeds the ${padded.length}-byte buffer`);
  }
  const end = PAD_PREFIX_LENGTH + length;
  let nonZero = 0;
  for (let i = end; i < padded.length; i++) nonZero |= padded[i] ?? 0;
  if (nonZero !== 0) throw new PaddingError('BAD_PADDING', 'padding bytes are not zero');
  return padded.slice(PAD_PREFIX_LENGTH, end);
}
