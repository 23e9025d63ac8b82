/**
 * The events of a person's device log (docs/devices.md §4, §9.3): a header
 * every event has, then a body whose meaning depends on its kind.
 *
 *   event = version u8 (1) | kind u8 | author u8 | authorSeq u64 | applied u64 | time u64 | seed (32) | body (rest)
 *
 * - `author`: the device number (1..255) of the device that proposed it.
 * - `authorSeq`: that device's count of its own events, from 1; each
 *   device appends its events one after another, so a reader drops an
 *   event whose authorSeq is not above the last one it applied from that
 *   author (a repeated append, or a copy the relay pushed again).
 * - `applied`: the position below which the author needed nothing more
 *   when it proposed it (so every device learns how far the others are,
 *   and what trimming may take, §8).
 * - `time`: the author's clock, milliseconds since the epoch; the clock of
 *   the code that applies the event.
 * - `seed`: 32 bytes from the author's CSPRNG; every random byte that
 *   applying the event draws comes from drbg(seed) (§3.2).
 */
import { Reader, Writer } from '../../protocol/codec.js';
import { ProtocolError } from '../../protocol/errors.js';
import { DRBG_SEED_LENGTH } from '../../crypto/drbg.js';
import { DeviceLogError } from './log-entry.js';

export const EVENT_VERSION = 1;
export const EVENT_HEADER_LENGTH = 1 + 1 + 1 + 8 + 8 + 8 + DRBG_SEED_LENGTH;
export const MAX_DEVICE_NUMBER = 255;

/** What an event does; the numbers are its `kind` byte. */
export const EventKind = {
  /** An operation on the profile, by name (an op of the replica's registry). */
  OP: 1,
  /** "I have applied the log up to `applied`": nothing else (§8). */
  SEEN: 2,
} as const;
export type EventKind = (typeof EventKind)[keyof typeof EventKind];
const KINDS = new Set<number>(Object.values(EventKind));

export interface DeviceEvent {
  readonly kind: EventKind;
  readonly author: number;
  readonly authorSeq: number;
  readonly applied: number;
  readonly time: number;
  readonly seed: Uint8Array;
  readonly body: Uint8Array;
}

export function encodeEvent(e: DeviceEvent): Uint8Array {
  if (!KINDS.has(e.kind)) throw new RangeError(`unknown event kind ${e.kind}`);
  if (!Number.isInteger(e.author) || e.author < 1 || e.author > MAX_DEVICE_NUMBER) throw new RangeError(`device number ${e.author} out of 1..${MAX_DEVICE_NUMBER}`);
  if (e.seed.length !== DRBG_SEED_LENGTH) throw new RangeError(`an event seed is ${DRBG_SEED_LENGTH} bytes`);
  return new Writer()
    .u8(EVENT_VERSION)
    .u8(e.kind)
    .u8(e.author)
    .u64(safeU64(e.authorSeq, 1, 'authorSeq'))
    .u64(safeU64(e.applied, 0, 'applied'))
    .u64(safeU64(e.time, 0, 'time'))
    .bytes(e.seed)
    .bytes(e.body)
    .finish();
}

/**
 * The event in `bytes`. An event of a later version is DeviceLogError
 * `VERSION` (the device stops applying and asks to be upgraded, §3.2);
 * anything else malformed is `MALFORMED`.
 */
export function decodeEvent(bytes: Uint8Array): DeviceEvent {
  const r = new Reader(bytes, 'CMD_SYNTAX');
  try {
    const version = r.u8('event version');
    if (version !== EVENT_VERSION) {
      if (version > EVENT_VERSION) throw new DeviceLogError('VERSION', `event version ${version}: made by a newer Nightjar`);
      throw new DeviceLogError('MALFORMED', `event version ${version}`);
    }
    const kind = r.u8('event kind');
    if (!KINDS.has(kind)) throw new DeviceLogError('VERSION', `event kind ${kind}: made by a newer Nightjar`);
    const author = r.u8('author');
    if (author < 1) throw new DeviceLogError('MALFORMED', 'author 0');
    const authorSeq = readSafe(r, 1, 'authorSeq');
    const applied = readSafe(r, 0, 'applied');
    const time = readSafe(r, 0, 'time');
    const seed = r.bytesN(DRBG_SEED_LENGTH, 'seed');
    return { kind: kind as EventKind, author, authorSeq, applied, time, seed, body: r.rest() };
  } catch (e) {
    if (e instanceof ProtocolError) throw new DeviceLogError('MALFORMED', e.message, { cause: e });
    throw e;
  }
}

function readSafe(r: Reader, min: number, what: string): number {
  const v = r.u64(what);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(min)) throw new DeviceLogError('MALFORMED', `${what} ${v} out of range`);
  return Number(v);
}

function safeU64(n: number, min: number, what: string): bigint {
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`${what} ${n} is not a safe integer from ${min}`);
  return BigInt(n);
}
