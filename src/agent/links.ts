/**
 * Connection links, shared out of band (text or QR code):
 *
 *   nightjar:invite#<base64url(payload)>    one-time invitation
 *   nightjar:address#<base64url(payload)>   long-lived contact address
 *
 * Two payload forms, told apart by their first byte:
 *
 *   full  (1) = version u8 | relay short (UTF-8 relay address) | senderId short
 *               | invitationKeys long (docs/e2e.md) | stampBits u8 | extensions rest
 *   short (2) = version u8 | linkKey (32) | fingerprint (32) | port u16 | host rest (UTF-8)
 *
 * A short link names the relay (fingerprint, host, port) that holds the full
 * payload, encrypted under the link key (link-data.ts); it is ~120
 * characters, so its QR code fits a terminal. stampBits (addresses only; 0
 * in invitations) is the proof of work the owner asks of each request.
 *
 * The link names the queue the joiner sends its first message to and the
 * keys of the initial hybrid key agreement; nothing in it identifies the
 * person who made it.
 */
import { decodeInvitationKeys, encodeInvitationKeys, type InvitationKeys } from '../crypto/x3dh.js';
import { formatAddress, parseAddress } from '../protocol/address.js';
import { Reader, Writer } from '../protocol/codec.js';
import { AgentError } from './agent-api.js';
import { LINK_KEY_LENGTH } from './link-data.js';
import { MAX_POW_BITS } from '../protocol/pow.js';

export const LINK_VERSION = 1;
export const SHORT_LINK_VERSION = 2;

export type LinkKind = 'invitation' | 'address';

export interface ConnectionLink {
  readonly kind: LinkKind;
  /** Relay address text of the queue. */
  readonly relay: string;
  readonly senderId: Uint8Array;
  readonly keys: InvitationKeys;
  /** Proof-of-work bits a request to this address must carry. */
  readonly stampBits: number;
}

/** A short link: where the full link is kept, and the key to read it. */
export interface ShortLink {
  readonly kind: LinkKind;
  readonly relay: string;
  readonly linkKey: Uint8Array;
}

const DAMAGED = 'this Nightjar link is damaged or incomplete; copy it again or ask for a new one';
const FINGERPRINT_LENGTH = 32;

const PREFIX: Record<LinkKind, string> = { invitation: 'nightjar:invite#', address: 'nightjar:address#' };

/** The full payload (what a short link's relay keeps, encrypted). */
export function encodeLinkPayload(link: ConnectionLink): Uint8Array {
  return new Writer()
    .u8(LINK_VERSION)
    .short(new TextEncoder().encode(link.relay))
    .short(link.senderId)
    .long(encodeInvitationKeys(link.keys))
    .u8(link.stampBits)
    .finish();
}

function linkText(kind: LinkKind, payload: Uint8Array): string {
  return PREFIX[kind] + Buffer.from(payload).toString('base64url');
}

export function encodeLink(link: ConnectionLink): string {
  return linkText(link.kind, encodeLinkPayload(link));
}

export function encodeShortLink(link: ShortLink): string {
  const relay = parseAddress(link.relay);
  return linkText(
    link.kind,
    new Writer().u8(SHORT_LINK_VERSION).bytes(link.linkKey).bytes(relay.fingerprint).u16(relay.port).bytes(new TextEncoder().encode(relay.host)).finish(),
  );
}

/** Parses a full payload of `kind`; throws AgentError BAD_LINK. */
export function decodeLinkPayload(kind: LinkKind, payload: Uint8Array): ConnectionLink {
  try {
    const r = new Reader(payload);
    if (r.u8() !== LINK_VERSION) throw new AgentError('BAD_LINK', DAMAGED);
    const relay = new TextDecoder('utf-8', { fatal: true }).decode(r.short());
    parseAddress(relay);
    const senderId = r.short();
    if (senderId.length !== 24) throw new AgentError('BAD_LINK', DAMAGED);
    const keys = decodeInvitationKeys(r.long());
    const stampBits = r.remaining > 0 ? r.u8() : 0;
    if (stampBits > MAX_POW_BITS) throw new AgentError('BAD_LINK', `the address asks for ${stampBits} bits of work, more than ${MAX_POW_BITS}`);
    return { kind, relay, senderId, keys, stampBits };
  } catch (e) {
    if (e instanceof AgentError) throw e;
    throw new AgentError('BAD_LINK', DAMAGED, { cause: e });
  }
}

function decodeShortPayload(kind: LinkKind, payload: Uint8Array): ShortLink {
  try {
    const r = new Reader(payload);
    r.u8(); // the version, checked by the caller
    const linkKey = r.bytesN(LINK_KEY_LENGTH);
    const fingerprint = r.bytesN(FINGERPRINT_LENGTH);
    const port = r.u16();
    const host = new TextDecoder('utf-8', { fatal: true }).decode(r.rest());
    if (host === '' || port === 0) throw new AgentError('BAD_LINK', DAMAGED);
    const relay = formatAddress({ fingerprint, host, port });
    parseAddress(relay);
    return { kind, relay, linkKey };
  } catch (e) {
    if (e instanceof AgentError) throw e;
    throw new AgentError('BAD_LINK', DAMAGED, { cause: e });
  }
}

/** Parses a link of either form; throws AgentError('BAD_LINK') saying what is wrong. */
export function decodeAnyLink(text: string): ({ readonly form: 'full' } & ConnectionLink) | ({ readonly form: 'short' } & ShortLink) {
  const trimmed = text.trim();
  const kind = (Object.keys(PREFIX) as LinkKind[]).find((k) => trimmed.startsWith(PREFIX[k]));
  if (!kind) throw new AgentError('BAD_LINK', 'this is not a Nightjar link (they start with nightjar:invite# or nightjar:address#)');
  const body = trimmed.slice(PREFIX[kind].length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw new AgentError('BAD_LINK', DAMAGED);
  const payload = new Uint8Array(Buffer.from(body, 'base64url'));
  const version = payload[0] ?? 0;
  if (version === LINK_VERSION) return { form: 'full', ...decodeLinkPayload(kind, payload) };
  if (version === SHORT_LINK_VERSION) return { form: 'short', ...decodeShortPayload(kind, payload) };
  // Only a small version number can be a newer format; anything else is a damaged or made-up link.
  if (version > SHORT_LINK_VERSION && version < 16) throw new AgentError('BAD_LINK', 'this link was made by a newer version of Nightjar; update Nightjar to use it');
  throw new AgentError('BAD_LINK', DAMAGED);
}

/** Parses a full link (a short one is an error here: it needs its relay first). */
export function decodeLink(text: string): ConnectionLink {
  const link = decodeAnyLink(text);
  if (link.form !== 'full') throw new AgentError('BAD_LINK', 'a short link: fetch its full form from its relay first');
  const { form: _form, ...full } = link;
  return full;
}
