/**
 * Relay commands (client → relay) and responses (relay → client): types,
 * encoders and decoders. Each command starts with an ASCII tag and a space
 * (none when the command has no fields), followed by its fields in the
 * order docs/protocol.md lists them.
 */
import { Reader, Writer, asciiBytes, asciiString } from './codec.js';
import { ProtocolError, isErrorCode, type ErrorCode } from './errors.js';
import { ROUTING_KEY_SIG_LENGTH } from './handshake.js';
import { INITIAL_VERSION, LINK_DATA_VERSION, LOG_QUEUE_VERSION, PRIVATE_ROUTING_VERSION, PUSH_WINDOW_VERSION } from './version.js';

/** Length of every queue ID and message ID the relay issues. */
export const ID_LENGTH = 24;
/** Raw Ed25519 / X25519 public key length. */
export const PUBLIC_KEY_LENGTH = 32;
/** The largest message body a sender may submit (15 KiB; the rest of the block is reserved for envelopes). */
export const MAX_MESSAGE_LENGTH = 15 * 1024;
/** Longest relay password a NEW or PRXY command carries. */
export const MAX_BASIC_AUTH_LENGTH = 255;
/** Length of a forwarding session ID (PRXY answers it in PKEY). */
export const SESSION_ID_LENGTH = 24;
/** Longest DER certificate a PKEY may carry. */
export const MAX_CERTIFICATE_LENGTH = 2048;
/** Longest relay address text a PRXY carries. */
export const MAX_RELAY_ADDRESS_LENGTH = 255;
/**
 * Length of a link ID (LSET, and the entityId of LGET). The agent derives it
 * from the link key; it travels as an entityId, so it has an ID's length.
 */
export const LINK_ID_LENGTH = ID_LENGTH;
/**
 * The largest link data LSET stores and LNK returns (2 KiB). The bound is
 * private routing's exit layer: an LNK answer with its transmission fields
 * takes 57 bytes more than its data, and an exit response holds 2 560
 * (docs/routing.md, "Fixed sizes"), so at most 2 503 bytes would fit; 2 KiB
 * leaves room, and holds an invitation (about 1 400 bytes) with its padding
 * and AEAD overhead.
 */
export const MAX_LINK_DATA_LENGTH = 2048;
/**
 * The largest push window a SUB may ask for (version 4): at most this many
 * messages pushed and unacknowledged per subscription. 32 blocks of pushes
 * stay well within a connection's output budget (64 blocks, docs/protocol.md
 * §12), and a recipient gains little from more.
 */
export const MAX_PUSH_WINDOW = 32;
/**
 * The largest log position LSUB, LTRIM and LENT carry (a u64). The first
 * entry of a log is at position 1, so 0 is no position at all.
 */
export const MAX_LOG_POSITION = 2n ** 64n - 1n;

/**
 * `messaging`: secured with KEY, after which only the sender's key may send;
 * `contact`: a contact address, which anyone holding its address may send to
 * unsigned, any number of times (within the quota), and which is never secured;
 * `log` (version 6): an append-only sequence of entries that takes only
 * signed SENDs once its creator secured it, read by any number of
 * subscribers at once, each from its own position (LSUB).
 * On the wire a mode is its index here.
 */
export type QueueMode = 'messaging' | 'contact' | 'log';
export const QUEUE_MODES: readonly QueueMode[] = ['messaging', 'contact', 'log'];

export type Command =
  | {
      readonly type: 'NEW';
      readonly recipientAuthKey: Uint8Array;
      readonly recipientDhKey: Uint8Array;
      readonly basicAuth: Uint8Array;
      readonly queueMode: QueueMode;
      /** Empty, or the 8-byte proof-of-work nonce the relay asked for (protocol/pow.ts). */
      readonly powNonce: Uint8Array;
    }
  /** Without `window` (and on versions before 4): one message in flight at a time. */
  | { readonly type: 'SUB'; readonly window?: number }
  | { readonly type: 'KEY'; readonly senderAuthKey: Uint8Array }
  | { readonly type: 'GET' }
  | { readonly type: 'ACK'; readonly msgId: Uint8Array }
  | { readonly type: 'OFF' }
  | { readonly type: 'DEL' }
  | { readonly type: 'SEND'; readonly flags: number; readonly body: Uint8Array }
  | { readonly type: 'PING' }
  /** Asks this relay to forward to `destRelay` (nightjar://... text); answered with PKEY. */
  | { readonly type: 'PRXY'; readonly destRelay: string; readonly basicAuth: Uint8Array }
  /** A request sealed to the destination of session `sessionId`; answered with PRES. */
  | { readonly type: 'PFWD'; readonly sessionId: Uint8Array; readonly ephemeralKey: Uint8Array; readonly sealed: Uint8Array }
  /** Relay to relay: a request sealed to this relay's routing key; answered with RRES. */
  | { readonly type: 'RFWD'; readonly ephemeralKey: Uint8Array; readonly sealed: Uint8Array }
  /** Sets or replaces the queue's link data, stored under `linkId` (opaque to the relay); answered with OK. */
  | { readonly type: 'LSET'; readonly linkId: Uint8Array; readonly linkData: Uint8Array }
  /** Fetches the link data stored under the entityId (a link ID); answered with LNK. */
  | { readonly type: 'LGET' }
  /** Subscribes this connection to a log from `position` (1..MAX_LOG_POSITION); answered with OK, then LENT pushes. */
  | { readonly type: 'LSUB'; readonly position: bigint }
  /** Deletes a log's entries below `position` (1..MAX_LOG_POSITION); answered with OK. */
  | { readonly type: 'LTRIM'; readonly position: bigint };

export type CommandType = Command['type'];

export type Response =
  | { readonly type: 'IDS'; readonly recipientId: Uint8Array; readonly senderId: Uint8Array; readonly relayDhKey: Uint8Array }
  | { readonly type: 'OK' }
  | { readonly type: 'MSG'; readonly msgId: Uint8Array; readonly encryptedBody: Uint8Array }
  | { readonly type: 'END' }
  | { readonly type: 'ERR'; readonly code: ErrorCode; readonly retryAfterMs?: number }
  /** Answer to NEW without enough proof of work: solve `bits` and send NEW again. */
  | { readonly type: 'POW'; readonly bits: number }
  | { readonly type: 'PONG' }
  /** Answer to PRXY: the session and the destination's certificate and certified routing key. */
  | {
      readonly type: 'PKEY';
      readonly sessionId: Uint8Array;
      readonly destCert: Uint8Array;
      readonly routingKey: Uint8Array;
      readonly routingKeySig: Uint8Array;
    }
  /** Answer to PFWD: the destination's response, sealed to the sender. */
  | { readonly type: 'PRES'; readonly sealed: Uint8Array }
  /** Answer to RFWD: the response, sealed under the request's response key. */
  | { readonly type: 'RRES'; readonly sealed: Uint8Array }
  /** Answer to LGET: the link data, as LSET stored it. */
  | { readonly type: 'LNK'; readonly linkData: Uint8Array }
  /** Pushed to a log's subscribers: the entry at `position`, sealed under the queue key (as MSG's body, `entryId` in msgId's role). */
  | { readonly type: 'LENT'; readonly entryId: Uint8Array; readonly position: bigint; readonly sealed: Uint8Array };

export type ResponseType = Response['type'];

/**
 * Which queue ID a command addresses, and whether it must be signed.
 * `sender`: addressed by an ID handed out of band (SEND: the senderId; LGET: a link ID).
 * `forward`: private-routing commands, like `none` without entity or signature.
 */
export type CommandParty = 'none' | 'recipient' | 'sender' | 'create' | 'forward';

export function commandParty(type: CommandType): CommandParty {
  switch (type) {
    case 'NEW':
      return 'create';
    case 'SEND':
    case 'LGET':
      return 'sender';
    case 'PING':
      return 'none';
    case 'PRXY':
    case 'PFWD':
    case 'RFWD':
      return 'forward';
    default:
      return 'recipient';
  }
}

/**
 * The protocol version that introduced a command: a connection that
 * negotiated an earlier one must not send it (the relay answers CMD_UNKNOWN).
 * A field added to an older command has its own version: see `fieldsVersion`.
 */
export function commandVersion(type: CommandType): number {
  switch (type) {
    case 'PRXY':
    case 'PFWD':
    case 'RFWD':
      return PRIVATE_ROUTING_VERSION;
    case 'LSET':
    case 'LGET':
      return LINK_DATA_VERSION;
    case 'LSUB':
    case 'LTRIM':
      return LOG_QUEUE_VERSION;
    default:
      return INITIAL_VERSION;
  }
}

/**
 * The protocol version a command's fields need, beyond its own: SUB with a
 * window is version 4, NEW of a log (queue mode 2) version 6. A connection
 * that negotiated an earlier one must not send it; the relay answers
 * CMD_SYNTAX, as an older relay's decoder does.
 */
export function fieldsVersion(c: Command): number {
  if (c.type === 'SUB' && c.window !== undefined) return PUSH_WINDOW_VERSION;
  if (c.type === 'NEW' && c.queueMode === 'log') return LOG_QUEUE_VERSION;
  return INITIAL_VERSION;
}

/** Whether `p` is a log position LSUB, LTRIM and LENT may carry (1..MAX_LOG_POSITION). */
export function isLogPosition(p: bigint): boolean {
  return p >= 1n && p <= MAX_LOG_POSITION;
}

/** Whether `w` is a push window SUB may carry (1..MAX_PUSH_WINDOW). */
export function isPushWindow(w: number): boolean {
  return Number.isInteger(w) && w >= 1 && w <= MAX_PUSH_WINDOW;
}

function tagged(tag: string): Writer {
  return new Writer().bytes(asciiBytes(tag));
}

function key(k: Uint8Array, what: string): Uint8Array {
  if (k.length !== PUBLIC_KEY_LENGTH) throw new RangeError(`${what} must be ${PUBLIC_KEY_LENGTH} bytes`);
  return k;
}

function id(i: Uint8Array, what: string): Uint8Array {
  if (i.length !== ID_LENGTH) throw new RangeError(`${what} must be ${ID_LENGTH} bytes`);
  return i;
}

function sized(b: Uint8Array, length: number, what: string): Uint8Array {
  if (b.length !== length) throw new RangeError(`${what} must be ${length} bytes`);
  return b;
}

function position(p: bigint): bigint {
  if (typeof p !== 'bigint' || !isLogPosition(p)) throw new RangeError(`log position must be 1..2^64-1, got ${String(p)}`);
  return p;
}

/**
 * Link data must not be empty. Its maximum (MAX_LINK_DATA_LENGTH) is not the
 * encoding's: the relay refuses longer data with LARGE_MSG after
 * authorisation, as it refuses a long SEND, and every value the decoder
 * accepts must encode back.
 */
function linkData(b: Uint8Array): Uint8Array {
  if (b.length === 0) throw new RangeError('link data must not be empty');
  return b;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function encodeCommand(c: Command): Uint8Array {
  return commandWriter(c).finish();
}

/**
 * encodeCommand's bytes as parts, in order, a long body (SEND, PFWD, RFWD)
 * as the caller's own view: a client copies the 15 KiB once, into the
 * block it sends (encodeBatch), instead of once per layer.
 */
export function encodeCommandParts(c: Command): readonly Uint8Array[] {
  return commandWriter(c).toParts();
}

function commandWriter(c: Command): Writer {
  switch (c.type) {
    case 'NEW':
      return tagged('NEW ')
        .short(key(c.recipientAuthKey, 'recipient auth key'))
        .short(key(c.recipientDhKey, 'recipient DH key'))
        .short(c.basicAuth)
        .u8(QUEUE_MODES.indexOf(c.queueMode))
        .short(c.powNonce);
    case 'KEY':
      return tagged('KEY ').short(key(c.senderAuthKey, 'sender auth key'));
    case 'ACK':
      return tagged('ACK ').short(id(c.msgId, 'message ID'));
    case 'SEND':
      if (c.body.length > MAX_MESSAGE_LENGTH) throw new RangeError(`message body too long: ${c.body.length}`);
      return tagged('SEND ').u8(c.flags).bytes(c.body);
    case 'PRXY':
      return tagged('PRXY ').short(utf8.encode(c.destRelay)).short(c.basicAuth);
    case 'PFWD':
      return tagged('PFWD ')
        .short(sized(c.sessionId, SESSION_ID_LENGTH, 'session ID'))
        .short(key(c.ephemeralKey, 'ephemeral key'))
        .bytes(c.sealed);
    case 'RFWD':
      return tagged('RFWD ').short(key(c.ephemeralKey, 'ephemeral key')).bytes(c.sealed);
    case 'LSET':
      return tagged('LSET ').short(sized(c.linkId, LINK_ID_LENGTH, 'link ID')).bytes(linkData(c.linkData));
    case 'LSUB':
    case 'LTRIM':
      return tagged(`${c.type} `).u64(position(c.position));
    case 'SUB':
      if (c.window === undefined) return tagged('SUB');
      if (!isPushWindow(c.window)) throw new RangeError(`push window must be 1..${MAX_PUSH_WINDOW}, got ${c.window}`);
      return tagged('SUB ').u8(c.window);
    case 'GET':
    case 'OFF':
    case 'DEL':
    case 'PING':
    case 'LGET':
      return tagged(c.type);
  }
}

export function encodeResponse(r: Response): Uint8Array {
  switch (r.type) {
    case 'IDS':
      return tagged('IDS ')
        .short(id(r.recipientId, 'recipient ID'))
        .short(id(r.senderId, 'sender ID'))
        .short(key(r.relayDhKey, 'relay DH key'))
        .finish();
    case 'MSG':
      return tagged('MSG ').short(id(r.msgId, 'message ID')).bytes(r.encryptedBody).finish();
    case 'ERR': {
      const w = tagged('ERR ').short(asciiBytes(r.code));
      if (r.retryAfterMs !== undefined) w.u16(Math.min(0xffff, Math.max(0, Math.round(r.retryAfterMs))));
      return w.finish();
    }
    case 'POW':
      return tagged('POW ').u8(r.bits).finish();
    case 'PKEY':
      if (r.destCert.length > MAX_CERTIFICATE_LENGTH) throw new RangeError(`certificate longer than ${MAX_CERTIFICATE_LENGTH} bytes`);
      return tagged('PKEY ')
        .short(sized(r.sessionId, SESSION_ID_LENGTH, 'session ID'))
        .long(r.destCert)
        .short(sized(r.routingKey, PUBLIC_KEY_LENGTH, 'routing key'))
        .short(sized(r.routingKeySig, ROUTING_KEY_SIG_LENGTH, 'routing key signature'))
        .finish();
    case 'PRES':
    case 'RRES':
      return tagged(`${r.type} `).bytes(r.sealed).finish();
    case 'LNK':
      return tagged('LNK ').bytes(linkData(r.linkData)).finish();
    case 'LENT':
      return tagged('LENT ').short(id(r.entryId, 'entry ID')).u64(position(r.position)).bytes(r.sealed).finish();
    case 'OK':
    case 'END':
    case 'PONG':
      return asciiBytes(r.type);
  }
}

/** Splits "TAG rest" into the tag and a reader over the rest. */
function splitTag(bytes: Uint8Array): { tag: string; fields: Reader; bare: boolean } {
  const space = bytes.indexOf(0x20);
  const end = space < 0 ? bytes.length : space;
  if (end === 0 || end > 8) throw new ProtocolError('CMD_SYNTAX', 'missing command tag');
  for (let i = 0; i < end; i++) {
    const ch = bytes[i]!;
    if (ch < 0x41 || ch > 0x5a) throw new ProtocolError('CMD_SYNTAX', 'command tag must be upper-case ASCII');
  }
  return {
    tag: asciiString(bytes.subarray(0, end)),
    fields: new Reader(space < 0 ? new Uint8Array(0) : bytes.subarray(space + 1)),
    bare: space < 0,
  };
}

function fixed(r: Reader, length: number, what: string): Uint8Array {
  const b = r.short(what);
  if (b.length !== length) throw new ProtocolError('CMD_SYNTAX', `${what} must be ${length} bytes, got ${b.length}`);
  return b;
}

/** A u64 log position; 0 is CMD_SYNTAX (the first entry is at 1). */
function logPosition(r: Reader): bigint {
  const p = r.u64('log position');
  if (p === 0n) throw new ProtocolError('CMD_SYNTAX', 'log position 0: the first entry is at 1');
  return p;
}

function nonEmpty(b: Uint8Array, what: string): Uint8Array {
  if (b.length === 0) throw new ProtocolError('CMD_SYNTAX', `empty ${what}`);
  return b;
}

function expectBare(bare: boolean, tag: string): void {
  if (!bare) throw new ProtocolError('CMD_SYNTAX', `${tag} takes no fields`);
}

function expectFields(bare: boolean, tag: string): void {
  if (bare) throw new ProtocolError('CMD_SYNTAX', `${tag} needs fields`);
}

export function decodeCommand(bytes: Uint8Array): Command {
  const { tag, fields: r, bare } = splitTag(bytes);
  switch (tag) {
    case 'NEW': {
      expectFields(bare, tag);
      const recipientAuthKey = fixed(r, PUBLIC_KEY_LENGTH, 'recipient auth key');
      const recipientDhKey = fixed(r, PUBLIC_KEY_LENGTH, 'recipient DH key');
      const basicAuth = r.short('basic auth');
      const queueMode = QUEUE_MODES[r.u8('queue mode')];
      if (!queueMode) throw new ProtocolError('CMD_SYNTAX', 'unknown queue mode');
      const powNonce = r.short('proof of work');
      if (powNonce.length !== 0 && powNonce.length !== 8) throw new ProtocolError('CMD_SYNTAX', 'proof-of-work nonce must be empty or 8 bytes');
      r.end(tag);
      return { type: 'NEW', recipientAuthKey, recipientDhKey, basicAuth, queueMode, powNonce };
    }
    case 'KEY': {
      expectFields(bare, tag);
      const senderAuthKey = fixed(r, PUBLIC_KEY_LENGTH, 'sender auth key');
      r.end(tag);
      return { type: 'KEY', senderAuthKey };
    }
    case 'ACK': {
      expectFields(bare, tag);
      const msgId = fixed(r, ID_LENGTH, 'message ID');
      r.end(tag);
      return { type: 'ACK', msgId };
    }
    case 'SEND': {
      expectFields(bare, tag);
      const flags = r.u8('flags');
      return { type: 'SEND', flags, body: r.rest() };
    }
    case 'PRXY': {
      expectFields(bare, tag);
      let destRelay: string;
      try {
        destRelay = strictUtf8.decode(r.short('destination relay'));
      } catch {
        throw new ProtocolError('CMD_SYNTAX', 'destination relay is not UTF-8');
      }
      const basicAuth = r.short('basic auth');
      r.end(tag);
      return { type: 'PRXY', destRelay, basicAuth };
    }
    case 'PFWD': {
      expectFields(bare, tag);
      const sessionId = fixed(r, SESSION_ID_LENGTH, 'session ID');
      const ephemeralKey = fixed(r, PUBLIC_KEY_LENGTH, 'ephemeral key');
      return { type: 'PFWD', sessionId, ephemeralKey, sealed: r.rest() };
    }
    case 'RFWD': {
      expectFields(bare, tag);
      const ephemeralKey = fixed(r, PUBLIC_KEY_LENGTH, 'ephemeral key');
      return { type: 'RFWD', ephemeralKey, sealed: r.rest() };
    }
    case 'LSET': {
      expectFields(bare, tag);
      const linkId = fixed(r, LINK_ID_LENGTH, 'link ID');
      // Over MAX_LINK_DATA_LENGTH is the relay's LARGE_MSG, after authorisation (like SEND).
      return { type: 'LSET', linkId, linkData: nonEmpty(r.rest(), 'link data') };
    }
    case 'LSUB':
    case 'LTRIM': {
      expectFields(bare, tag);
      const p = logPosition(r);
      r.end(tag);
      return { type: tag, position: p };
    }
    case 'SUB': {
      if (bare) return { type: 'SUB' };
      const window = r.u8('push window');
      r.end(tag);
      if (!isPushWindow(window)) throw new ProtocolError('CMD_SYNTAX', `push window must be 1..${MAX_PUSH_WINDOW}, got ${window}`);
      return { type: 'SUB', window };
    }
    case 'GET':
    case 'OFF':
    case 'DEL':
    case 'PING':
    case 'LGET':
      expectBare(bare, tag);
      return { type: tag };
    default:
      throw new ProtocolError('CMD_UNKNOWN', `unknown command ${tag}`);
  }
}

export function decodeResponse(bytes: Uint8Array): Response {
  const { tag, fields: r, bare } = splitTag(bytes);
  switch (tag) {
    case 'IDS': {
      expectFields(bare, tag);
      const recipientId = fixed(r, ID_LENGTH, 'recipient ID');
      const senderId = fixed(r, ID_LENGTH, 'sender ID');
      const relayDhKey = fixed(r, PUBLIC_KEY_LENGTH, 'relay DH key');
      r.end(tag);
      return { type: 'IDS', recipientId, senderId, relayDhKey };
    }
    case 'MSG': {
      expectFields(bare, tag);
      const msgId = fixed(r, ID_LENGTH, 'message ID');
      return { type: 'MSG', msgId, encryptedBody: r.rest() };
    }
    case 'ERR': {
      expectFields(bare, tag);
      const code = asciiString(r.short('error code'));
      const retryAfterMs = r.remaining > 0 ? r.u16('retry after') : undefined;
      r.end(tag);
      if (!isErrorCode(code)) throw new ProtocolError('CMD_SYNTAX', `unknown error code ${code}`);
      return retryAfterMs === undefined ? { type: 'ERR', code } : { type: 'ERR', code, retryAfterMs };
    }
    case 'POW': {
      expectFields(bare, tag);
      const bits = r.u8('bits');
      r.end(tag);
      return { type: 'POW', bits };
    }
    case 'PKEY': {
      expectFields(bare, tag);
      const sessionId = fixed(r, SESSION_ID_LENGTH, 'session ID');
      const destCert = r.long('certificate');
      if (destCert.length > MAX_CERTIFICATE_LENGTH) throw new ProtocolError('CMD_SYNTAX', `certificate longer than ${MAX_CERTIFICATE_LENGTH} bytes`);
      const routingKey = fixed(r, PUBLIC_KEY_LENGTH, 'routing key');
      const routingKeySig = fixed(r, ROUTING_KEY_SIG_LENGTH, 'routing key signature');
      r.end(tag);
      return { type: 'PKEY', sessionId, destCert, routingKey, routingKeySig };
    }
    case 'PRES':
    case 'RRES':
      expectFields(bare, tag);
      return { type: tag, sealed: r.rest() };
    case 'LNK':
      expectFields(bare, tag);
      return { type: 'LNK', linkData: nonEmpty(r.rest(), 'link data') };
    case 'LENT': {
      expectFields(bare, tag);
      const entryId = fixed(r, ID_LENGTH, 'entry ID');
      const p = logPosition(r);
      return { type: 'LENT', entryId, position: p, sealed: r.rest() };
    }
    case 'OK':
    case 'END':
    case 'PONG':
      expectBare(bare, tag);
      return { type: tag };
    default:
      throw new ProtocolError('CMD_UNKNOWN', `unknown response ${tag}`);
  }
}
