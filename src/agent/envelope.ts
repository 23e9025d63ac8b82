/**
 * What the agent puts in a queue. Every envelope is exactly
 * ENVELOPE_LENGTH bytes, so a relay's storage never learns a size:
 *
 *   envelope = version u8 | type u8 | body
 *     JOIN    (1): stamp (8) | joinReply (1153) | ratchetMessage   first message of a joiner
 *     RATCHET (2): ratchetMessage
 *
 * The ratchet's plaintext (padded inside the ratchet to a fixed length) is
 * an agent message:
 *
 *   message = version u8 | tag u8 | fields
 *     CONF  (1): flags u8 (bit 0: "I secured the queue you send to")
 *                | senderKey short | info long | replyRelay short | replySenderId short
 *     HELLO (2): "I secured the queue you send to"
 *     MSG   (3): seq u64 | sentAt u64 | body rest
 *     RCPT  (4): upTo u64                       delivery receipt
 *     DEL   (5): the peer deleted the connection
 *     QADD  (6): relay short | senderId short | replaces short | flags u8
 *                a new queue for you to send to; `replaces` (empty: an additional,
 *                redundant queue) names the queue it takes over from; flag bit 0:
 *                that queue is lost (its relay is gone)
 *     QKEY  (7): senderKey short                 first, unsigned, on the new queue
 *     QUSE  (8): newSenderId short | replaces short | flags u8
 *                the new queue is secured: use it (and leave `replaces`)
 *     QEND  (9): last message on the old queue
 *
 * Unknown tags and trailing fields are kept for later versions: a newer
 * peer's message decodes as `UNKNOWN` and is acknowledged, not fatal.
 */
import { ENVELOPE_OVERHEAD } from '../crypto/ratchet.js';
import { JOIN_REPLY_LENGTH } from '../crypto/x3dh.js';
import { Reader, Writer } from '../protocol/codec.js';
import { MAX_MESSAGE_LENGTH } from '../protocol/commands.js';
import { STAMP_LENGTH } from './stamp.js';

export const AGENT_VERSION = 1;
export const ENVELOPE_LENGTH = MAX_MESSAGE_LENGTH;
const ENVELOPE_HEADER = 2;

/** Padded ratchet plaintext length for each envelope type, so every envelope is ENVELOPE_LENGTH. */
export const PADDED_RATCHET = ENVELOPE_LENGTH - ENVELOPE_HEADER - ENVELOPE_OVERHEAD;
export const PADDED_JOIN = PADDED_RATCHET - STAMP_LENGTH - JOIN_REPLY_LENGTH;
/** Bytes of padding prefix inside the ratchet plaintext (docs/e2e.md). */
const PAD_PREFIX = 4;
/** MSG framing: version, tag, seq, sentAt. */
const MSG_OVERHEAD = 2 + 8 + 8;
/** The largest body a MSG can carry (it is never a JOIN). */
export const MAX_BODY_LENGTH = PADDED_RATCHET - PAD_PREFIX - MSG_OVERHEAD;

export type Envelope =
  | { readonly type: 'JOIN'; readonly stamp: Uint8Array; readonly joinReply: Uint8Array; readonly ratchet: Uint8Array }
  | { readonly type: 'RATCHET'; readonly ratchet: Uint8Array };

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
}

export function encodeEnvelope(e: Envelope): Uint8Array {
  const w = new Writer().u8(AGENT_VERSION).u8(e.type === 'JOIN' ? 1 : 2);
  if (e.type === 'JOIN') w.bytes(e.stamp).bytes(e.joinReply);
  const out = w.bytes(e.ratchet).finish();
  if (out.length !== ENVELOPE_LENGTH) throw new RangeError(`envelope is ${out.length} bytes, not ${ENVELOPE_LENGTH}`);
  return out;
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length !== ENVELOPE_LENGTH) throw new EnvelopeError(`envelope of ${bytes.length} bytes`);
  if (bytes[0] !== AGENT_VERSION) throw new EnvelopeError(`agent version ${bytes[0]} not supported`);
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
  throw new EnvelopeError(`unknown envelope type ${bytes[1]}`);
}

export interface QueueRef {
  readonly relay: string;
  readonly senderId: Uint8Array;
}

export type AgentMessage =
  | { readonly tag: 'CONF'; readonly secured: boolean; readonly senderKey: Uint8Array | null; readonly info: Uint8Array; readonly replyQueue: QueueRef | null }
  | { readonly tag: 'HELLO' }
  | { readonly tag: 'MSG'; readonly seq: number; readonly sentAt: number; readonly body: Uint8Array }
  | { readonly tag: 'RCPT'; readonly upTo: number }
  | { readonly tag: 'DEL' }
  | { readonly tag: 'QADD'; readonly queue: QueueRef; readonly replaces: Uint8Array; readonly lost: boolean }
  | { readonly tag: 'QKEY'; readonly senderKey: Uint8Array }
  | { readonly tag: 'QUSE'; readonly newSenderId: Uint8Array; readonly replaces: Uint8Array; readonly lost: boolean }
  | { readonly tag: 'QEND' }
  | { readonly tag: 'UNKNOWN'; readonly code: number };

const TAGS = ['CONF', 'HELLO', 'MSG', 'RCPT', 'DEL', 'QADD', 'QKEY', 'QUSE', 'QEND'] as const;
const utf8 = new TextEncoder();
const fromUtf8 = (b: Uint8Array): string => new TextDecoder().decode(b);

export function encodeMessage(m: AgentMessage): Uint8Array {
  if (m.tag === 'UNKNOWN') throw new RangeError('cannot encode UNKNOWN');
  const w = new Writer().u8(AGENT_VERSION).u8(TAGS.indexOf(m.tag) + 1);
  switch (m.tag) {
    case 'CONF':
      w.u8(m.secured ? 1 : 0).short(m.senderKey ?? new Uint8Array(0)).long(m.info);
      w.short(utf8.encode(m.replyQueue?.relay ?? '')).short(m.replyQueue?.senderId ?? new Uint8Array(0));
      break;
    case 'MSG':
      w.u64(BigInt(m.seq)).u64(BigInt(m.sentAt)).bytes(m.body);
      break;
    case 'RCPT':
      w.u64(BigInt(m.upTo));
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

export function decodeMessage(bytes: Uint8Array): AgentMessage {
  try {
    const r = new Reader(bytes);
    const version = r.u8();
    if (version < AGENT_VERSION) throw new EnvelopeError(`agent message version ${version}`);
    const code = r.u8();
    const tag = TAGS[code - 1];
    switch (tag) {
      case 'CONF': {
        const secured = (r.u8() & 1) === 1;
        const key = r.short();
        const info = r.long();
        const relay = fromUtf8(r.short());
        const senderId = r.short();
        return { tag, secured, senderKey: key.length ? key : null, info, replyQueue: relay ? { relay, senderId } : null };
      }
      case 'MSG': {
        const seq = Number(r.u64());
        const sentAt = Number(r.u64());
        return { tag, seq, sentAt, body: r.rest() };
      }
      case 'RCPT':
        return { tag, upTo: Number(r.u64()) };
      case 'QADD': {
        const relay = fromUtf8(r.short());
        const senderId = r.short();
        const replaces = r.short();
        return { tag, queue: { relay, senderId }, replaces, lost: (r.u8() & 1) === 1 };
      }
      case 'QUSE': {
        const newSenderId = r.short();
        const replaces = r.short();
        return { tag, newSenderId, replaces, lost: (r.u8() & 1) === 1 };
      }
      case 'QKEY':
        return { tag, senderKey: r.short() };
      case 'HELLO':
      case 'DEL':
      case 'QEND':
        return { tag };
      default:
        return { tag: 'UNKNOWN', code };
    }
  } catch (e) {
    if (e instanceof EnvelopeError) throw e;
    throw new EnvelopeError(`malformed agent message: ${(e as Error).message}`);
  }
}
