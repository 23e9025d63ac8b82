/**
 * Big-endian fixed-layout encoding for the e2e wire and storage formats
 * (key agreement messages, ratchet headers, serialised ratchet state).
 * The reader reports underflow through a caller-supplied error factory so
 * each format raises its own typed error.
 */
import { timingSafeEqual } from 'node:crypto';

const U32_MAX = 0xffff_ffff;

/**
 * Writes fields into one buffer that grows as needed (to at least twice
 * its size, or exactly to what a long field needs) and returns exactly the
 * bytes written: the buffer itself when it is full, else a copy (or, with
 * finishView, a view). Pass the
 * expected length when it is known, so the buffer never grows. Finish a
 * writer once.
 *
 * @example
 *   const bytes = new ByteWriter().u8(1).u32(7).bytes(key).finish();
 */
export class ByteWriter {
  private buffer: Uint8Array;
  private length = 0;

  /** The default fits V8's on-heap typed arrays (up to 64 bytes), the cheapest to make. */
  constructor(expectedLength = 64) {
    this.buffer = fresh(expectedLength);
  }

  bytes(value: Uint8Array): this {
    this.room(value.length).set(value, this.length);
    this.length += value.length;
    return this;
  }

  u8(value: number): this {
    assertUint(value, 0xff);
    this.room(1)[this.length++] = value;
    return this;
  }

  u16(value: number): this {
    assertUint(value, 0xffff);
    const b = this.room(2);
    b[this.length] = value >>> 8;
    b[this.length + 1] = value & 0xff;
    this.length += 2;
    return this;
  }

  u32(value: number): this {
    assertUint(value, U32_MAX);
    const b = this.room(4);
    b[this.length] = value >>> 24;
    b[this.length + 1] = (value >>> 16) & 0xff;
    b[this.length + 2] = (value >>> 8) & 0xff;
    b[this.length + 3] = value & 0xff;
    this.length += 4;
    return this;
  }

  finish(): Uint8Array {
    return this.length === this.buffer.length ? this.buffer : this.buffer.slice(0, this.length);
  }

  /**
   * The bytes written, as a view of the writer's buffer (which it may
   * outsize): no copy. For a large result made often, such as the ratchet
   * state serialized on every message, where a copy of 4 KiB is garbage
   * that brings V8's next full GC closer.
   */
  finishView(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  /** The buffer, with room for `n` more bytes. */
  private room(n: number): Uint8Array {
    if (this.length + n > this.buffer.length) {
      const grown = fresh(Math.max(this.buffer.length * 2, this.length + n));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    return this.buffer;
  }
}

/** Sizes from which a writer's buffer is not zeroed: only written bytes are ever returned. */
const UNZEROED_FROM = 1024;

/** A Uint8Array of `n` bytes over its own ArrayBuffer (never a slice of Node's shared pool). */
function fresh(n: number): Uint8Array {
  if (n < UNZEROED_FROM) return new Uint8Array(n);
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/**
 * Reads fields in order; any read past the end, and `end()` with bytes left
 * over, throws the error built by `fail`.
 *
 * @example
 *   const r = new ByteReader(bytes, (why) => new RatchetError('BAD_STATE', why));
 *   const version = r.u8(); const key = r.bytes(32); r.end();
 */
export class ByteReader {
  private offset = 0;

  constructor(
    private readonly input: Uint8Array,
    private readonly fail: (reason: string) => Error,
  ) {}

  /** A copy, so that decoded values never alias a buffer the caller may reuse. */
  bytes(length: number): Uint8Array {
    return this.take(length).slice();
  }

  u8(): number {
    return this.take(1)[0] ?? 0;
  }

  u16(): number {
    const b = this.take(2);
    return ((b[0] ?? 0) << 8) | (b[1] ?? 0);
  }

  u32(): number {
    const b = this.take(4);
    return (b[0] ?? 0) * 0x100_0000 + (((b[1] ?? 0) << 16) | ((b[2] ?? 0) << 8) | (b[3] ?? 0));
  }

  get remaining(): number {
    return this.input.length - this.offset;
  }

  end(): void {
    if (this.remaining !== 0) throw this.fail(`${this.remaining} unexpected trailing bytes`);
  }

  private take(length: number): Uint8Array {
    if (this.remaining < length) throw this.fail(`truncated: needed ${length} bytes, ${this.remaining} left`);
    const out = this.input.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }
}

/**
 * The concatenation of `parts` in a fresh buffer.
 *
 * @example
 *   concatBytes(Uint8Array.of(1), Uint8Array.of(2, 3)); // [1, 2, 3]
 */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * Equality in time independent of where the inputs differ (lengths may leak).
 *
 * @example
 *   bytesEqual(headerKey, candidate);
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function assertUint(value: number, max: number): void {
  // A silently truncated counter on the wire would desynchronise the peers.
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${value} does not fit in an unsigned field with maximum ${max}`);
  }
}
