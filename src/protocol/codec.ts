/**
 * Byte reader and writer for the wire format: big-endian integers,
 * "short" byte strings (1-byte length prefix), "long" byte strings
 * (2-byte length prefix) and a trailing rest. Every read is bounds-checked
 * and fails with ProtocolError(code), never with a RangeError.
 */
import { ProtocolError, type ErrorCode } from './errors.js';

export class Reader {
  private offset = 0;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly code: ErrorCode = 'CMD_SYNTAX',
  ) {}

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  private take(n: number, what: string): Uint8Array {
    if (n > this.remaining) throw new ProtocolError(this.code, `truncated ${what}: need ${n}, have ${this.remaining}`);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  u8(what = 'u8'): number {
    return this.take(1, what)[0]!;
  }

  u16(what = 'u16'): number {
    const b = this.take(2, what);
    return (b[0]! << 8) | b[1]!;
  }

  u32(what = 'u32'): number {
    const b = this.take(4, what);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  }

  u64(what = 'u64'): bigint {
    const b = this.take(8, what);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
  }

  bytesN(n: number, what = 'bytes'): Uint8Array {
    return this.take(n, what);
  }

  /** 1-byte length, then that many bytes. */
  short(what = 'short string'): Uint8Array {
    return this.take(this.u8(what), what);
  }

  /** 2-byte length, then that many bytes. */
  long(what = 'long string'): Uint8Array {
    return this.take(this.u16(what), what);
  }

  /** Everything left. */
  rest(): Uint8Array {
    return this.take(this.remaining, 'rest');
  }

  /** Throws unless every byte was consumed. */
  end(what = 'command'): void {
    if (this.remaining !== 0) throw new ProtocolError(this.code, `${this.remaining} trailing bytes after ${what}`);
  }
}

export class Writer {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  private push(part: Uint8Array): this {
    this.parts.push(part);
    this.size += part.length;
    return this;
  }

  u8(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > 0xff) throw new RangeError(`u8 out of range: ${n}`);
    return this.push(Uint8Array.of(n));
  }

  u16(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`u16 out of range: ${n}`);
    return this.push(Uint8Array.of(n >>> 8, n & 0xff));
  }

  u32(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new RangeError(`u32 out of range: ${n}`);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n);
    return this.push(b);
  }

  u64(n: bigint): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n);
    return this.push(b);
  }

  bytes(b: Uint8Array): this {
    return this.push(b);
  }

  short(b: Uint8Array): this {
    if (b.length > 0xff) throw new RangeError(`short string too long: ${b.length}`);
    return this.u8(b.length).push(b);
  }

  long(b: Uint8Array): this {
    if (b.length > 0xffff) throw new RangeError(`long string too long: ${b.length}`);
    return this.u16(b.length).push(b);
  }

  get length(): number {
    return this.size;
  }

  /**
   * The fields written so far, in order, as the views they were given (no
   * copy): for a caller that copies them once, into a larger buffer.
   */
  toParts(): readonly Uint8Array[] {
    return this.parts;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

const ascii = new TextEncoder();
const asciiDecoder = new TextDecoder();

export function asciiBytes(s: string): Uint8Array {
  return ascii.encode(s);
}

export function asciiString(b: Uint8Array): string {
  return asciiDecoder.decode(b);
}
