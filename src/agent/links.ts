/**
 * Connection links, shared out of band (text or QR code):
 *
 *   nightjar:invite#<base64url(payload)>    one-time invitation
 *   nightjar:address#<base64url(payload)>   long-lived contact address
 *
 *   payload = version u8 | relay short (UTF-8 relay address) | senderId short
 *             | invitationKeys long (docs/e2e.md) | stampBits u8 | extensions rest
 *
 * stampBits (addresses only; 0 in invitations) is the proof of work the
 * owner asks of each request (stamp.ts).
 *
 * The link names the queue the joiner sends its first message to and the
 * keys of the initial hybrid key agreement; nothing in it identifies the
 * person who made it.
 */
import { decodeInvitationKeys, encodeInvitationKeys, type InvitationKeys } from '../crypto/x3dh.js';
import { parseAddress } from '../protocol/address.js';
import { Reader, Writer } from '../protocol/codec.js';
import { AgentError } from './agent-api.js';
import { MAX_POW_BITS } from '../protocol/pow.js';

export const LINK_VERSION = 1;

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

const DAMAGED = 'this Nightjar link is damaged or incomplete; copy it again or ask for a new one';

const PREFIX: Record<LinkKind, string> = { invitation: 'nightjar:invite#', address: 'nightjar:address#' };

export function encodeLink(link: ConnectionLink): string {
  const payload = new Writer()
    .u8(LINK_VERSION)
    .short(new TextEncoder().encode(link.relay))
    .short(link.senderId)
    .long(encodeInvitationKeys(link.keys))
    .u8(link.stampBits)
    .finish();
  return PREFIX[link.kind] + Buffer.from(payload).toString('base64url');
}

/** Parses a link; throws AgentError('BAD_LINK') saying what is wrong. */
export function decodeLink(text: string): ConnectionLink {
  const trimmed = text.trim();
  const kind = (Object.keys(PREFIX) as LinkKind[]).find((k) => trimmed.startsWith(PREFIX[k]));
  if (!kind) throw new AgentError('BAD_LINK', 'this is not a Nightjar link (they start with nightjar:invite# or nightjar:address#)');
  const body = trimmed.slice(PREFIX[kind].length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw new AgentError('BAD_LINK', DAMAGED);
  try {
    const r = new Reader(new Uint8Array(Buffer.from(body, 'base64url')));
    const version = r.u8();
    // Only a small version number can be a newer format; anything else is a damaged or made-up link.
    if (version > LINK_VERSION && version < 16) throw new AgentError('BAD_LINK', 'this link was made by a newer version of Nightjar; update Nightjar to use it');
    if (version !== LINK_VERSION) throw new AgentError('BAD_LINK', DAMAGED);
    const relay = new TextDecoder('utf-8', { fatal: true }).decode(r.short());
    parseAddress(relay);
    const senderId = r.short();
    if (senderId.length !== 24) throw new AgentError('BAD_LINK', 'the link is damaged (queue ID)');
    const keys = decodeInvitationKeys(r.long());
    const stampBits = r.remaining > 0 ? r.u8() : 0;
    if (stampBits > MAX_POW_BITS) throw new AgentError('BAD_LINK', `the address asks for ${stampBits} bits of work, more than ${MAX_POW_BITS}`);
    return { kind, relay, senderId, keys, stampBits };
  } catch (e) {
    if (e instanceof AgentError) throw e;
    throw new AgentError('BAD_LINK', DAMAGED);
  }
}
