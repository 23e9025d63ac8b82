/**
 * What the chat layer puts inside agent messages and peer info: UTF-8 JSON
 * objects with a major version `v` (see docs/chat.md). Receivers ignore
 * fields they do not know, so minor additions need no version bump; a
 * message with a newer `v` or an unknown `type` decodes to `unknown` and is
 * shown as such, never thrown.
 */

/** Major version of the body format. 1: 2025-11, text, read receipts, timer. */
export const CHAT_BODY_VERSION = 1;

/** Longest disappearing-messages timer, in seconds (one year). */
export const MAX_TTL_SECONDS = 365 * 24 * 3600;

/** Longest display name, in characters. */
export const MAX_NAME_LENGTH = 64;

export type ChatBody =
  /** A text message; `ttl` is the sender's disappearing timer when it was sent. */
  | { readonly type: 'text'; readonly text: string; readonly ttl?: number }
  /** Read receipt: the reader has read every message of ours up to agent seq `upTo`. */
  | { readonly type: 'read'; readonly upTo: number }
  /** The disappearing-messages timer for this conversation changed (`null`: off). */
  | { readonly type: 'timer'; readonly ttl: number | null };

export type DecodedBody = ChatBody | { readonly type: 'unknown' };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function isTtl(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_TTL_SECONDS;
}

function isSeq(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1;
}

/** Encodes a body: `encodeBody({ type: 'read', upTo: 7 })` gives `{"v":1,"type":"read","upTo":7}`. */
export function encodeBody(body: ChatBody): Uint8Array {
  return encoder.encode(JSON.stringify({ v: CHAT_BODY_VERSION, ...body }));
}

function parseObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(decoder.decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Decodes a body from a contact; anything malformed or newer is `{ type: 'unknown' }`. */
export function decodeBody(bytes: Uint8Array): DecodedBody {
  const o = parseObject(bytes);
  if (o === undefined || o['v'] !== CHAT_BODY_VERSION) return { type: 'unknown' };
  switch (o['type']) {
    case 'text': {
      const text = o['text'];
      if (typeof text !== 'string') return { type: 'unknown' };
      return isTtl(o['ttl']) ? { type: 'text', text, ttl: o['ttl'] } : { type: 'text', text };
    }
    case 'read':
      return isSeq(o['upTo']) ? { type: 'read', upTo: o['upTo'] } : { type: 'unknown' };
    case 'timer': {
      const ttl = o['ttl'];
      if (ttl === null || isTtl(ttl)) return { type: 'timer', ttl };
      return { type: 'unknown' };
    }
    default:
      return { type: 'unknown' };
  }
}

/** Removes terminal control characters (escape sequences included) and trims. */
export function cleanName(name: string): string {
  return name.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, '').trim();
}

/** Checks a display name or alias a user typed; returns it trimmed or undefined if unusable. */
export function validName(name: string): string | undefined {
  const clean = cleanName(name);
  return clean.length >= 1 && clean.length <= MAX_NAME_LENGTH && clean === name.trim() ? clean : undefined;
}

/** Profile sent to a contact inside the connection handshake: only the display name. */
export interface PeerProfile {
  readonly name: string;
}

export function encodePeerInfo(profile: PeerProfile): Uint8Array {
  return encoder.encode(JSON.stringify({ v: CHAT_BODY_VERSION, name: profile.name }));
}

/** Decodes a contact's profile; a missing or unusable name becomes `undefined`. */
export function decodePeerInfo(bytes: Uint8Array): PeerProfile | undefined {
  const o = parseObject(bytes);
  if (o === undefined || typeof o['v'] !== 'number' || o['v'] < 1) return undefined;
  const name = typeof o['name'] === 'string' ? cleanName(o['name']).slice(0, MAX_NAME_LENGTH) : '';
  return name.length > 0 ? { name } : undefined;
}
