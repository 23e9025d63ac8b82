/**
 * A new connection as the device that made it prepared it (docs/devices.md
 * §3.6): everything the relays and the randomness gave it (the new queue
 * and its keys, the invitation's secrets, the first ratchet state and the
 * JOIN envelope), so that storing it is the same on every device. The
 * device that talks to the relays prepares; every device applies (one
 * device: at once). Integers big-endian:
 *
 *   prepared = kind u8 | connectionId short | myInfo long | body
 *   invite (1): relay short | queue | linkId short (empty: none) | invitationSecrets long
 *   address (3): relay short | queue | linkId short | invitationSecrets long | link long | stampBits u8 | maxPerHour u32
 *                (connectionId is the address's ID, myInfo empty)
 *   accept (4): requestId u64 | relay short | queue | senderKey short
 *   join   (2): role u8 (1 joiner, 2 requester) | ratchet u32-length bytes | ad short
 *               | replyRelay short | replyQueue | sendRelay short | sendSenderId short | senderKey short | envelope u32-length bytes
 *   queue = recipientId short | senderId short | recipientKey short | queueKey short
 */
import { Reader, Writer } from '../protocol/codec.js';

export interface QueueSecrets {
  readonly recipientId: Uint8Array;
  readonly senderId: Uint8Array;
  readonly recipientKey: Uint8Array;
  readonly queueKey: Uint8Array;
}

/** A queue made for others to reach us through a link: a one-time invitation's or a contact address's. */
interface LinkedQueue {
  readonly relay: string;
  readonly queue: QueueSecrets;
  /** The link's ID on the relay, for a short link. */
  readonly linkId: Uint8Array | null;
  readonly invitationSecrets: Uint8Array;
}

export type PreparedConnection =
  | ({ readonly kind: 'invite'; readonly connectionId: string; readonly myInfo: Uint8Array } & LinkedQueue)
  | {
      readonly kind: 'join';
      readonly connectionId: string;
      readonly myInfo: Uint8Array;
      readonly role: 'joiner' | 'requester';
      readonly ratchet: Uint8Array;
      readonly ad: Uint8Array;
      readonly replyRelay: string;
      readonly replyQueue: QueueSecrets;
      readonly sendRelay: string;
      readonly sendSenderId: Uint8Array;
      /** Our private signing key for the contact's queue. */
      readonly senderKey: Uint8Array;
      readonly envelope: Uint8Array;
    }
  | ({
      readonly kind: 'address';
      /** The address's ID. */
      readonly connectionId: string;
      readonly myInfo: Uint8Array;
      readonly link: string;
      readonly stampBits: number;
      readonly maxPerHour: number;
    } & LinkedQueue)
  | {
      readonly kind: 'accept';
      readonly connectionId: string;
      readonly myInfo: Uint8Array;
      /** The contact request (agent_requests.id) it answers. */
      readonly requestId: number;
      readonly relay: string;
      readonly queue: QueueSecrets;
      readonly senderKey: Uint8Array;
    };

const KINDS = { invite: 1, join: 2, address: 3, accept: 4 } as const;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function writeQueue(w: Writer, q: QueueSecrets): Writer {
  return w.short(q.recipientId).short(q.senderId).short(q.recipientKey).short(q.queueKey);
}

export function readQueue(r: Reader): QueueSecrets {
  return { recipientId: r.short('recipient ID'), senderId: r.short('sender ID'), recipientKey: r.short('recipient key'), queueKey: r.short('queue key') };
}

/** Bytes with a u32 length (a ratchet state and an envelope can pass 64 KiB). */
function writeBig(w: Writer, b: Uint8Array): Writer {
  return w.u32(b.length).bytes(b);
}

function readBig(r: Reader, what: string): Uint8Array {
  return r.bytesN(r.u32(what), what);
}

export function encodePrepared(p: PreparedConnection): Uint8Array {
  const w = new Writer().u8(KINDS[p.kind]).short(utf8.encode(p.connectionId)).long(p.myInfo);
  if (p.kind === 'invite' || p.kind === 'address') {
    w.short(utf8.encode(p.relay));
    writeQueue(w, p.queue);
    w.short(p.linkId ?? new Uint8Array(0)).long(p.invitationSecrets);
    return p.kind === 'invite' ? w.finish() : w.long(utf8.encode(p.link)).u8(p.stampBits).u32(p.maxPerHour).finish();
  }
  if (p.kind === 'accept') {
    w.u64(BigInt(p.requestId)).short(utf8.encode(p.relay));
    return writeQueue(w, p.queue).short(p.senderKey).finish();
  }
  w.u8(p.role === 'joiner' ? 1 : 2);
  writeBig(w, p.ratchet).short(p.ad).short(utf8.encode(p.replyRelay));
  writeQueue(w, p.replyQueue);
  w.short(utf8.encode(p.sendRelay)).short(p.sendSenderId).short(p.senderKey);
  return writeBig(w, p.envelope).finish();
}

/** Throws ProtocolError (or TypeError for bad UTF-8) for anything malformed: a bug, since only this device's own events carry these. */
export function decodePrepared(bytes: Uint8Array): PreparedConnection {
  const r = new Reader(bytes);
  const kind = r.u8('kind');
  const connectionId = fromUtf8.decode(r.short('connection ID'));
  const myInfo = r.long('my info');
  let p: PreparedConnection;
  if (kind === KINDS.invite || kind === KINDS.address) {
    const relay = fromUtf8.decode(r.short('relay'));
    const queue = readQueue(r);
    const rawLinkId = r.short('link ID');
    const linkId = rawLinkId.length === 0 ? null : rawLinkId;
    const invitationSecrets = r.long('invitation secrets');
    p =
      kind === KINDS.invite
        ? { kind: 'invite', connectionId, myInfo, relay, queue, linkId, invitationSecrets }
        : { kind: 'address', connectionId, myInfo, relay, queue, linkId, invitationSecrets, link: fromUtf8.decode(r.long('link')), stampBits: r.u8('stamp bits'), maxPerHour: r.u32('max per hour') };
  } else if (kind === KINDS.accept) {
    const requestId = Number(r.u64('request ID'));
    const relay = fromUtf8.decode(r.short('relay'));
    p = { kind: 'accept', connectionId, myInfo, requestId, relay, queue: readQueue(r), senderKey: r.short('sender key') };
  } else if (kind === KINDS.join) {
    const role = r.u8('role') === 1 ? 'joiner' : 'requester';
    const ratchet = readBig(r, 'ratchet');
    const ad = r.short('ad');
    const replyRelay = fromUtf8.decode(r.short('reply relay'));
    const replyQueue = readQueue(r);
    const sendRelay = fromUtf8.decode(r.short('send relay'));
    const sendSenderId = r.short('send sender ID');
    const senderKey = r.short('sender key');
    p = { kind: 'join', connectionId, myInfo, role, ratchet, ad, replyRelay, replyQueue, sendRelay, sendSenderId, senderKey, envelope: readBig(r, 'envelope') };
  } else throw new RangeError(`a prepared connection of unknown kind ${kind}`);
  r.end('prepared connection');
  return p;
}
