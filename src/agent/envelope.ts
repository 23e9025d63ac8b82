/**
 * What the agent puts in a queue. Every envelope on the wire is exactly
 * ENVELOPE_LENGTH bytes, so a relay's storage never learns a size:
 *
 *   envelope = version u8 | type u8 | body [| fill]
 *     JOIN    (1): stamp (8) | joinReply (1153) | ratchetMessage   first message of a joiner
 *     RATCHET (2): ratchetMessage
 *
 * The ratchet message ends the envelope. To a contact known to read compact
 * ratchet envelopes (docs/e2e.md §4, §5.1; agent messages of version 4 or
 * later) it is compact: not padded inside, and the outbox keeps the short
 * envelope; `fillEnvelope` appends random fill each time it is sent. To
 * others it is padded inside the ratchet to the full length, as before.
 *
 * The ratchet's plaintext is an agent message:
 *
 *   message = version u8 | tag u8 | fields
 *     CONF  (1): flags u8 (bit 0: "I secured the queue you send to")
 *                | senderKey short (0 or 32) | info long | replyRelay short | replySenderId short (24)
 *     HELLO (2): "I secured the queue you send to"
 *     MSG   (3): seq u64 | sentAt u64 | body rest
 *     RCPT  (4): upTo u64                       delivery receipt
 *     DEL   (5): the peer deleted the connection
 *     QADD  (6): relay short | senderId short (24) | replaces short (0 or 24) | flags u8
 *                a new queue for you to send to; `replaces` (empty: an additional,
 *                redundant queue) names the queue it takes over from; flag bit 0:
 *                that queue is lost (its relay is gone)
 *     QKEY  (7): senderKey short (32)            first, unsigned, on the new queue
 *     QUSE  (8): newSenderId short (24) | replaces short (0 or 24) | flags u8
 *                the new queue is secured: use it (and leave `replaces`)
 *     QEND  (9): last message on the old queue
 *     RSND (10): ranges       please send these seqs again (they never arrived)
 *     LOST (11): ranges       I cannot send these again: stop waiting for them
 *     MSGR (12): upTo u64 | skipped ranges | seq u64 | sentAt u64 | body rest
 *                a MSG carrying a receipt (RCPT's fields), sent only to a
 *                contact whose messages are version 3 or later
 *   RCPT may carry, after upTo, `ranges`: seqs up to upTo that never arrived
 *   and were skipped (version 2; a version 1 RCPT ends after upTo)
 *
 *   ranges = count u8 (at most MAX_RANGES) | count × (from u64 | to u64)
 *            inclusive, from ≥ 1, ascending, not overlapping
 *
 * Every field a contact sends is checked here, once, before anything uses
 * it (docs/agent.md §3.1): numbers must fit a JavaScript safe integer
 * (2^53 - 1) and their range (seq from 1), keys and IDs their exact
 * lengths, relay addresses must parse. A failing message is
 * EnvelopeError OUT_OF_RANGE or MALFORMED; the receiver acknowledges and
 * drops it. Only `sentAt` is clamped instead (to 2^53 - 1 here, to the
 * receiver's clock on arrival): a wrong clock should not lose a message.
 *
 * Unknown tags and trailing fields are kept for later versions: a newer
 * peer's message decodes as `UNKNOWN` and is acknowledged, not fatal.
 */
import { ENVELOPE_OVERHEAD, ENVELOPE_OVERHEAD_V1 } from '../crypto/ratchet.js';
import { JOIN_REPLY_LENGTH } from '../crypto/x3dh.js';
import { Reader, Writer } from '../protocol/codec.js';
import { parseAddress } from '../protocol/address.js';
import { ID_LENGTH, MAX_MESSAGE_LENGTH } from '../protocol/commands.js';
import { KEY_LENGTH } from '../crypto/keys.js';
import { randomFillSync } from 'node:crypto';
import type { RandomSource } from '../crypto/random.js';
import { STAMP_LENGTH } from './stamp.js';

/** Byte 0 of every envelope. History: 1 (2025-11) JOIN and RATCHET. */
export const ENVELOPE_VERSION = 1;
/**
 * Byte 0 of every agent message; messages of every version from 1 decode
 * (unknown tags as UNKNOWN, unknown trailing fields ignored). History:
 * 1 (2025-11) CONF to QEND; 2 (2026-11-28) RSND, LOST and the skipped
 * ranges of RCPT (gaps, docs/agent.md §5.1); 3 (2026-11-28) MSGR, a MSG
 * carrying a receipt (docs/agent.md §5, receipts); 4 (2026-11-28) no new
 * message: says "I read compact ratchet envelopes (e2e version 3)".
 */
export const AGENT_VERSION = 4;
/** The first message version whose sender reads compact ratchet envelopes: only such contacts get them. */
export const COMPACT_ENVELOPE_VERSION = 4;
/** The first message version whose receiver reads MSGR: receipts ride on messages only to such contacts. */
export const RECEIPT_ON_MSG_VERSION = 3;
/** Most ranges one RSND, LOST or RCPT carries. */
export const MAX_RANGES = 32;
export const ENVELOPE_LENGTH = MAX_MESSAGE_LENGTH;
const ENVELOPE_HEADER = 2;

/** Padded ratchet plaintext length for each envelope type, so every envelope is ENVELOPE_LENGTH. */
export const PADDED_RATCHET = ENVELOPE_LENGTH - ENVELOPE_HEADER - ENVELOPE_OVERHEAD;
export const PADDED_JOIN = PADDED_RATCHET - STAMP_LENGTH - JOIN_REPLY_LENGTH;
/** Bytes of padding prefix inside the ratchet plaintext (docs/e2e.md). */
const PAD_PREFIX = 4;
/** MSG framing: version, tag, seq, sentAt. */
const MSG_OVERHEAD = 2 + 8 + 8;
/**
 * The largest body a MSG can carry (it is never a JOIN). It leaves room for
 * a version-1 ratchet header, which a connection made by the previous
 * release still uses until its next ratchet step (docs/e2e.md §7).
 */
export const MAX_BODY_LENGTH = PADDED_RATCHET - (ENVELOPE_OVERHEAD_V1 - ENVELOPE_OVERHEAD) - PAD_PREFIX - MSG_OVERHEAD;

export type Envelope =
  | { readonly type: 'JOIN'; readonly stamp: Uint8Array; readonly joinReply: Uint8Array; readonly ratchet: Uint8Array }
  | { readonly type: 'RATCHET'; readonly ratchet: Uint8Array };

export type EnvelopeErrorCode =
  | 'BAD_LENGTH' // an envelope that is not ENVELOPE_LENGTH bytes
  | 'VERSION' // an envelope or message version this agent does not read
  | 'UNKNOWN_TYPE' // an envelope type other than JOIN and RATCHET
  | 'MALFORMED' // truncated, or a field that does not parse (a relay address, UTF-8)
  | 'OUT_OF_RANGE'; // a number, key or ID outside what its field allows

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
  constructor(
    readonly code: EnvelopeErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The largest number any u64 field may carry: JavaScript's safe integers. */
export const MAX_U64_FIELD = Number.MAX_SAFE_INTEGER;

/** The envelope as the outbox keeps it: ENVELOPE_LENGTH bytes, or fewer when its ratchet message is compact. */
export function encodeEnvelope(e: Envelope): Uint8Array {
  const w = new Writer().u8(ENVELOPE_VERSION).u8(e.type === 'JOIN' ? 1 : 2);
  if (e.type === 'JOIN') w.bytes(e.stamp).bytes(e.joinReply);
  const out = w.bytes(e.ratchet).finish();
  if (out.length > ENVELOPE_LENGTH) throw new RangeError(`envelope is ${out.length} bytes, over ${ENVELOPE_LENGTH}`);
  return out;
}

/**
 * A stored envelope as it goes on the wire: brought to ENVELOPE_LENGTH with
 * fresh random fill (after a compact ratchet message; see the top of this
 * file). Fresh on every attempt: fill that repeated would mark where a
 * message ends. Without `rng` the fill comes from the OS CSPRNG, drawn
 * straight into the envelope (randomFillSync: no buffer of its own, no copy).
 */
export function fillEnvelope(stored: Uint8Array, rng?: RandomSource): Uint8Array {
  if (stored.length > ENVELOPE_LENGTH) throw new RangeError(`envelope is ${stored.length} bytes, over ${ENVELOPE_LENGTH}`);
  if (stored.length === ENVELOPE_LENGTH) return stored;
  // Not zeroed: every byte is written below, the stored envelope and then the fill.
  const b = Buffer.allocUnsafeSlow(ENVELOPE_LENGTH);
  const out = new Uint8Array(b.buffer, b.byteOffset, ENVELOPE_LENGTH);
  out.set(stored);
  if (rng) out.set(rng(ENVELOPE_LENGTH - stored.length), stored.length);
  else randomFillSync(out, stored.length);
  return out;
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length !== ENVELOPE_LENGTH) throw new EnvelopeError('BAD_LENGTH', `envelope of ${bytes.length} bytes`);
  if (bytes[0] !== ENVELOPE_VERSION) throw new EnvelopeError('VERSION', `envelope version ${bytes[0]} not supported`);
  if (bytes[1] === 1) {
    const replyAt = 2 + STAMP_LENGTH;
    return {
      type: 'JOIN',
      stamp: bytes.subarray(2, replyAt),
      joinReply: bytes.subarray(replyAt, replyAt + JOIN_REPLY_LENGTH),
      ratchet: bytes.subarray(replyAt + JOIN_REPLY_LENGTH),
    };
  }
  if (bytes[1] === 2) return { type: 'RATCHET', ratchet: bytes.subarray(2) };
  throw new EnvelopeError('UNKNOWN_TYPE', `unknown envelope type ${bytes[1]}`);
}

export interface QueueRef {
  readonly relay: string;
  readonly senderId: Uint8Array;
}

/** Sequence numbers `from` to `to`, both included. */
export interface SeqRange {
  readonly from: number;
  readonly to: number;
}

export type AgentMessage =
  | { readonly tag: 'CONF'; readonly secured: boolean; readonly senderKey: Uint8Array | null; readonly info: Uint8Array; readonly replyQueue: QueueRef | null }
  | { readonly tag: 'HELLO' }
  /** With `receipt` it travels as MSGR (version 3): the receipt's effect first, then the message's. */
  | { readonly tag: 'MSG'; readonly seq: number; readonly sentAt: number; readonly body: Uint8Array; readonly receipt?: Receipt }
  /** Everything up to `upTo` arrived, except the `skipped` ranges (given up on, docs/agent.md §5.1). */
  | { readonly tag: 'RCPT'; readonly upTo: number; readonly skipped: readonly SeqRange[] }
  | { readonly tag: 'RSND'; readonly ranges: readonly SeqRange[] }
  | { readonly tag: 'LOST'; readonly ranges: readonly SeqRange[] }
  | { readonly tag: 'DEL' }
  | { readonly tag: 'QADD'; readonly queue: QueueRef; readonly replaces: Uint8Array; readonly lost: boolean }
  | { readonly tag: 'QKEY'; readonly senderKey: Uint8Array }
  | { readonly tag: 'QUSE'; readonly newSenderId: Uint8Array; readonly replaces: Uint8Array; readonly lost: boolean }
  | { readonly tag: 'QEND' }
  | { readonly tag: 'UNKNOWN'; readonly code: number };

/** A delivery receipt: everything up to `upTo` arrived, except the `skipped` ranges. */
export interface Receipt {
  readonly upTo: number;
  readonly skipped: readonly SeqRange[];
}

const TAGS = ['CONF', 'HELLO', 'MSG', 'RCPT', 'DEL', 'QADD', 'QKEY', 'QUSE', 'QEND', 'RSND', 'LOST', 'MSGR'] as const;
const MSGR_CODE = TAGS.indexOf('MSGR') + 1;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function outOfRange(what: string): EnvelopeError {
  return new EnvelopeError('OUT_OF_RANGE', `${what} out of range`);
}

const MAX_U64_FIELD_BIG = BigInt(MAX_U64_FIELD);

/** A u64 that must be a safe integer of at least `min`. */
function count(r: Reader, what: string, min: number): number {
  const v = r.u64(what);
  if (v > MAX_U64_FIELD_BIG) throw outOfRange(what);
  const n = Number(v); // exact: at most 2^53 - 1
  if (n < min) throw outOfRange(what);
  return n;
}

/** A short field of exactly `length` bytes (or empty, when `orEmpty`). */
function sized(r: Reader, what: string, length: number, orEmpty = false): Uint8Array {
  const b = r.short(what);
  if (b.length !== length && !(orEmpty && b.length === 0)) throw outOfRange(`${what} of ${b.length} bytes`);
  return b;
}

/** A relay address; empty only when `orEmpty`. */
function relayText(r: Reader, what: string, orEmpty = false): string {
  const bytes = r.short(what);
  if (bytes.length === 0 && orEmpty) return '';
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
    parseAddress(text);
  } catch {
    throw new EnvelopeError('MALFORMED', `${what} is not a relay address`);
  }
  return text;
}

/** Ranges as the wire has them; OUT_OF_RANGE unless ascending, apart, within 1 … `max`, at most MAX_RANGES. */
function readRanges(r: Reader, what: string, max = MAX_U64_FIELD): SeqRange[] {
  const n = r.u8(what);
  if (n > MAX_RANGES) throw outOfRange(`${n} ${what}`);
  const out: SeqRange[] = [];
  for (let i = 0; i < n; i++) {
    const from = count(r, what, (out.at(-1)?.to ?? 0) + 1);
    const to = count(r, what, from);
    if (to > max) throw outOfRange(what);
    out.push({ from, to });
  }
  return out;
}

function writeRanges(w: Writer, ranges: readonly SeqRange[]): void {
  if (ranges.length > MAX_RANGES) throw new RangeError(`${ranges.length} ranges, at most ${MAX_RANGES}`);
  w.u8(ranges.length);
  let last = 0;
  for (const { from, to } of ranges) {
    w.u64(u64Of(from, last + 1, 'range start')).u64(u64Of(to, from, 'range end'));
    last = to;
  }
}

/** The u64 to write for a number field; a RangeError for values no receiver would take. */
function u64Of(n: number, min: number, what: string): bigint {
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`${what} out of range: ${n}`);
  return BigInt(n);
}

export function encodeMessage(m: AgentMessage): Uint8Array {
  if (m.tag === 'UNKNOWN') throw new RangeError('cannot encode UNKNOWN');
  const w = new Writer().u8(AGENT_VERSION).u8(m.tag === 'MSG' && m.receipt ? MSGR_CODE : TAGS.indexOf(m.tag) + 1);
  switch (m.tag) {
    case 'CONF':
      w.u8(m.secured ? 1 : 0).short(m.senderKey ?? new Uint8Array(0)).long(m.info);
      w.short(utf8.encode(m.replyQueue?.relay ?? '')).short(m.replyQueue?.senderId ?? new Uint8Array(0));
      break;
    case 'MSG':
      if (m.receipt) {
        if (m.receipt.skipped.length > 0 && m.receipt.skipped.at(-1)!.to > m.receipt.upTo) throw new RangeError('a skipped range beyond upTo');
        w.u64(u64Of(m.receipt.upTo, 0, 'upTo'));
        writeRanges(w, m.receipt.skipped);
      }
      w.u64(u64Of(m.seq, 1, 'seq')).u64(u64Of(m.sentAt, 0, 'sentAt')).bytes(m.body);
      break;
    case 'RCPT':
      w.u64(u64Of(m.upTo, 0, 'upTo'));
      // Without skipped ranges it is the version 1 RCPT, byte for byte.
      if (m.skipped.length > 0) {
        if (m.skipped.at(-1)!.to > m.upTo) throw new RangeError('a skipped range beyond upTo');
        writeRanges(w, m.skipped);
      }
      break;
    case 'RSND':
    case 'LOST':
      writeRanges(w, m.ranges);
      break;
    case 'QADD':
      w.short(utf8.encode(m.queue.relay)).short(m.queue.senderId).short(m.replaces).u8(m.lost ? 1 : 0);
      break;
    case 'QUSE':
      w.short(m.newSenderId).short(m.replaces).u8(m.lost ? 1 : 0);
      break;
    case 'QKEY':
      w.short(m.senderKey);
      break;
    default:
      break;
  }
  return w.finish();
}

/** Bytes a receipt adds to a MSG (MSGR): upTo and its skipped ranges. */
export function receiptLength(receipt: Receipt): number {
  return 8 + 1 + 16 * receipt.skipped.length;
}

/** The version byte of an encoded agent message (what the contact's agent writes). */
export function messageVersion(bytes: Uint8Array): number {
  return bytes[0] ?? 0;
}

/** Decodes and range-checks an agent message; anything else is EnvelopeError (never another error). */
export function decodeMessage(bytes: Uint8Array): AgentMessage {
  try {
    const r = new Reader(bytes);
    const version = r.u8();
    if (version < 1) throw new EnvelopeError('VERSION', `agent message version ${version}`);
    const code = r.u8();
    const tag = TAGS[code - 1];
    switch (tag) {
      case 'CONF': {
        const secured = (r.u8() & 1) === 1;
        const key = sized(r, 'sender key', KEY_LENGTH, true);
        const info = r.long();
        const relay = relayText(r, 'reply relay', true);
        const senderId = relay ? sized(r, 'reply sender ID', ID_LENGTH) : r.short();
        return { tag, secured, senderKey: key.length ? key : null, info, replyQueue: relay ? { relay, senderId } : null };
      }
      case 'MSGR':
      case 'MSG': {
        let receipt: Receipt | undefined;
        if (tag === 'MSGR') {
          const upTo = count(r, 'upTo', 0);
          receipt = { upTo, skipped: readRanges(r, 'skipped range', upTo) };
        }
        const seq = count(r, 'seq', 1);
        // Clamped, not refused: a sender's broken clock should not cost the message.
        const rawSentAt = r.u64('sentAt');
        const sentAt = rawSentAt > MAX_U64_FIELD_BIG ? MAX_U64_FIELD : Number(rawSentAt);
        return receipt ? { tag: 'MSG', seq, sentAt, body: r.rest(), receipt } : { tag: 'MSG', seq, sentAt, body: r.rest() };
      }
      case 'RCPT': {
        const upTo = count(r, 'upTo', 0);
        return { tag, upTo, skipped: r.remaining > 0 ? readRanges(r, 'skipped range', upTo) : [] };
      }
      case 'RSND':
      case 'LOST':
        return { tag, ranges: readRanges(r, 'range') };
      case 'QADD': {
        const relay = relayText(r, 'queue relay');
        const senderId = sized(r, 'sender ID', ID_LENGTH);
        const replaces = sized(r, 'replaced sender ID', ID_LENGTH, true);
        return { tag, queue: { relay, senderId }, replaces, lost: (r.u8() & 1) === 1 };
      }
      case 'QUSE': {
        const newSenderId = sized(r, 'sender ID', ID_LENGTH);
        const replaces = sized(r, 'replaced sender ID', ID_LENGTH, true);
        return { tag, newSenderId, replaces, lost: (r.u8() & 1) === 1 };
      }
      case 'QKEY':
        return { tag, senderKey: sized(r, 'sender key', KEY_LENGTH) };
      case 'HELLO':
      case 'DEL':
      case 'QEND':
        return { tag };
      default:
        return { tag: 'UNKNOWN', code };
    }
  } catch (e) {
    if (e instanceof EnvelopeError) throw e;
    throw new EnvelopeError('MALFORMED', `malformed agent message: ${(e as Error).message}`);
  }
}
