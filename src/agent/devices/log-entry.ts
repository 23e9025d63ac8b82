/**
 * Entries of a person's device log (docs/devices.md §9.2): an event, split
 * into parts when it is long, each part sealed under the group's entry key
 * and brought to one fixed length, so the log's relay learns neither what
 * an event is nor how long.
 *
 *   entryKey = HKDF-SHA256(ikm = groupKey, salt = "", info = "nightjar/devices/entry-key/v1", L = 32)
 *   entry    = nonce (12, random)
 *            ‖ ChaCha20-Poly1305(entryKey, nonce, aad = "nightjar/devices/entry/v1" ‖ u32 generation, frame)
 *   frame    = eventId (16) ‖ index u8 ‖ count u8 ‖ length u16 ‖ fragment (length) ‖ zeros     (FRAME_LENGTH bytes)
 *
 * Every entry is LOG_ENTRY_LENGTH bytes (the relay's largest message
 * body). An event of n bytes takes ceil(n / MAX_FRAGMENT_LENGTH) parts, at
 * most MAX_EVENT_PARTS, index 0 .. count - 1; its parts share the random
 * eventId, and the event takes effect at the position of the part that
 * completes it.
 */
import { open, seal, AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH } from '../../crypto/aead.js';
import { CryptoError } from '../../crypto/errors.js';
import { hkdf } from '../../crypto/kdf.js';
import { randomBytes, type RandomSource } from '../../crypto/random.js';
import { MAX_MESSAGE_LENGTH } from '../../protocol/commands.js';

export const GROUP_KEY_LENGTH = 32;
export const EVENT_ID_LENGTH = 16;
export const LOG_ENTRY_LENGTH = MAX_MESSAGE_LENGTH;
export const FRAME_LENGTH = LOG_ENTRY_LENGTH - AEAD_NONCE_LENGTH - AEAD_TAG_LENGTH;
const FRAME_HEADER_LENGTH = EVENT_ID_LENGTH + 1 + 1 + 2;
export const MAX_FRAGMENT_LENGTH = FRAME_LENGTH - FRAME_HEADER_LENGTH;
export const MAX_EVENT_PARTS = 8;
export const MAX_EVENT_LENGTH = MAX_EVENT_PARTS * MAX_FRAGMENT_LENGTH;

const ENTRY_KEY_INFO = 'nightjar/devices/entry-key/v1';
const ENTRY_AAD_LABEL = new TextEncoder().encode('nightjar/devices/entry/v1');

export type DeviceLogErrorCode =
  | 'DECRYPT' // an entry that does not open under this generation's key
  | 'MALFORMED' // an entry, frame or event of the wrong shape
  | 'VERSION' // an event made by a newer Nightjar: stop applying, do not guess
  | 'GAP'; // entries this device has not applied are gone from the log: it must be synced again

export class DeviceLogError extends Error {
  override readonly name = 'DeviceLogError';
  constructor(
    readonly code: DeviceLogErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One part of an event, as an entry carries it. */
export interface Frame {
  readonly eventId: Uint8Array;
  readonly index: number;
  readonly count: number;
  readonly fragment: Uint8Array;
}

/** The key that seals the entries of one log generation. */
export function entryKey(groupKey: Uint8Array): Uint8Array {
  if (groupKey.length !== GROUP_KEY_LENGTH) throw new RangeError(`a group key is ${GROUP_KEY_LENGTH} bytes, got ${groupKey.length}`);
  return hkdf(groupKey, new Uint8Array(0), ENTRY_KEY_INFO, 32);
}

function entryAad(generation: number): Uint8Array {
  if (!Number.isInteger(generation) || generation < 1 || generation > 0xffffffff) throw new RangeError(`generation ${generation} is not a u32 from 1`);
  const aad = new Uint8Array(ENTRY_AAD_LABEL.length + 4);
  aad.set(ENTRY_AAD_LABEL);
  new DataView(aad.buffer).setUint32(ENTRY_AAD_LABEL.length, generation);
  return aad;
}

/**
 * The entries that carry `event`, in order: append them to the log one
 * after another. `rng` gives the nonces (default the OS CSPRNG).
 *
 * @example
 *   const entries = sealEvent(entryKey(groupKey), 1, eventId, eventBytes);
 */
export function sealEvent(key: Uint8Array, generation: number, eventId: Uint8Array, event: Uint8Array, rng: RandomSource = randomBytes): Uint8Array[] {
  if (eventId.length !== EVENT_ID_LENGTH) throw new RangeError(`an event ID is ${EVENT_ID_LENGTH} bytes, got ${eventId.length}`);
  if (event.length === 0 || event.length > MAX_EVENT_LENGTH) throw new RangeError(`an event is 1..${MAX_EVENT_LENGTH} bytes, got ${event.length}`);
  const aad = entryAad(generation);
  const count = Math.ceil(event.length / MAX_FRAGMENT_LENGTH);
  const entries: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const fragment = event.subarray(index * MAX_FRAGMENT_LENGTH, (index + 1) * MAX_FRAGMENT_LENGTH);
    const frame = new Uint8Array(FRAME_LENGTH);
    frame.set(eventId);
    frame[EVENT_ID_LENGTH] = index;
    frame[EVENT_ID_LENGTH + 1] = count;
    frame[EVENT_ID_LENGTH + 2] = fragment.length >>> 8;
    frame[EVENT_ID_LENGTH + 3] = fragment.length & 0xff;
    frame.set(fragment, FRAME_HEADER_LENGTH);
    const nonce = rng(AEAD_NONCE_LENGTH);
    entries.push(seal(key, nonce, frame, aad, nonce));
  }
  return entries;
}

/** The frame an entry carries; DeviceLogError if it is not an entry of this generation. */
export function openEntry(key: Uint8Array, generation: number, entry: Uint8Array): Frame {
  if (entry.length !== LOG_ENTRY_LENGTH) throw new DeviceLogError('MALFORMED', `a log entry is ${LOG_ENTRY_LENGTH} bytes, got ${entry.length}`);
  let frame: Uint8Array;
  try {
    frame = open(key, entry.subarray(0, AEAD_NONCE_LENGTH), entry.subarray(AEAD_NONCE_LENGTH), entryAad(generation));
  } catch (e) {
    if (e instanceof CryptoError) throw new DeviceLogError('DECRYPT', 'log entry does not open under this generation’s key', { cause: e });
    throw e;
  }
  const index = frame[EVENT_ID_LENGTH]!;
  const count = frame[EVENT_ID_LENGTH + 1]!;
  const length = (frame[EVENT_ID_LENGTH + 2]! << 8) | frame[EVENT_ID_LENGTH + 3]!;
  if (count < 1 || count > MAX_EVENT_PARTS || index >= count) throw new DeviceLogError('MALFORMED', `part ${index} of ${count}`);
  if (length < 1 || length > MAX_FRAGMENT_LENGTH) throw new DeviceLogError('MALFORMED', `fragment of ${length} bytes`);
  // A part before the last is always full, so an event has exactly one split.
  if (index < count - 1 && length !== MAX_FRAGMENT_LENGTH) throw new DeviceLogError('MALFORMED', `part ${index} of ${count} is not full`);
  for (let i = FRAME_HEADER_LENGTH + length; i < FRAME_LENGTH; i++) {
    if (frame[i] !== 0) throw new DeviceLogError('MALFORMED', 'frame padding is not zero');
  }
  return {
    eventId: frame.subarray(0, EVENT_ID_LENGTH),
    index,
    count,
    fragment: frame.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + length),
  };
}
