/**
 * Big-endian fixed-layout encoding for the e2e wire and storage formats
 * (key agreement messages, ratchet headers, serialised ratchet state).
 * The reader reports underflow through a caller-supplied error factory so
 * each format raises its own typed error.
 */
import { timingSafeEqual } from 'node:crypto';

const U32_MAX = 0xffff_ffff;

/**
 * Writes fields into one growing buffer; `finish` returns an exact-size
 * copy. Give the expected length when it is known, so the buffer never
 * grows (a ratchet state: ~3.8 KB).
 *
 * @example
 *   const bytes = new ByteWriter().u8(1).u32(7).bytes(key).finish();
 */
export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private length = 0;

  constructor(expectedLength = 256) {
    this.buffer = new Uint8Array(expectedLength);
    this.view = new DataView(this.buffer.buffer);
  }

  bytes(value: Uint8Array): this {
    this.room(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return this;
  }

  u8(value: number): this {
    assertUint(value, 0xff);
    this.room(1);
    this.buffer[this.length++] = value;
    return this;
  }

  u16(value: number): this {
    assertUint(value, 0xffff);
    this.room(2);
    this.view.setUint16(this.length, value);
    this.length += 2;
    return this;
  }

  u32(value: number): this {
    assertUint(value, U32_MAX);
    this.room(4);
    this.view.setUint32(this.length, value);
    this.length += 4;
    return this;
  }

  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }

  private room(n: number): void {
    if (this.length + n <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + n));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }
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
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
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
