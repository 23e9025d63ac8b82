/**
 * What the node's API returns: plain JSON objects, each with a `type`. The
 * CLI prints them with `--json` exactly as they are and renders them as
 * text otherwise; the web app and bots get the same objects. Times are
 * ISO-8601 strings (UTC), or null.
 */
import { contactLabel } from '../chat/contacts.js';
import type { Contact, ContactOrigin, ContactRequest, ContactStatus, Message, MessageStatus } from '../chat/store.js';

export type Json = { readonly type: string } & Record<string, unknown>;

export interface ContactView {
  readonly type: 'contact';
  readonly id: number;
  /** What to call the contact: alias, else display name, else `#id`. */
  readonly name: string;
  readonly displayName: string | null;
  readonly alias: string | null;
  readonly status: ContactStatus;
  readonly origin: ContactOrigin;
  readonly disappearSeconds: number | null;
  readonly unread?: number;
  /** The user compared the security code with the contact's and confirmed it. */
  readonly verified: boolean;
  /** The contact was verified, but the security code is not the one confirmed any more: compare again. */
  readonly keysChanged: boolean;
  readonly createdAt: string | null;
  readonly [key: string]: unknown;
}

export interface MessageView {
  readonly type: 'message';
  readonly id: number;
  readonly contact: string;
  readonly contactId: number;
  readonly direction: 'in' | 'out';
  readonly kind: 'text' | 'event';
  readonly seq: number | null;
  readonly text: string;
  readonly status: MessageStatus;
  readonly sentAt: string;
  readonly receivedAt: string | null;
  readonly relayAt: string | null;
  readonly deliveredAt: string | null;
  readonly readAt: string | null;
  readonly expiresAt: string | null;
  readonly [key: string]: unknown;
}

export interface RequestView {
  readonly type: 'request';
  readonly n: number;
  readonly name: string | null;
  readonly receivedAt: string;
  readonly [key: string]: unknown;
}

export function isoTime(seconds: number): string;
export function isoTime(seconds: number | null): string | null;
export function isoTime(seconds: number | null): string | null {
  if (seconds === null) return null;
  // Some stored times came from contacts: one that no Date can hold (kept by a version
  // before the agent checked them) shows at the limit instead of failing the whole listing.
  const s = Number.isFinite(seconds) ? Math.max(-MAX_DATE_SECONDS, Math.min(MAX_DATE_SECONDS, seconds)) : 0;
  return new Date(s * 1000).toISOString();
}

/** The furthest time from the epoch a Date holds, in seconds (100 000 000 days). */
const MAX_DATE_SECONDS = 8.64e12;

export function contactView(c: Contact, unread?: number): ContactView {
  return {
    type: 'contact',
    id: c.id,
    name: contactLabel(c),
    displayName: c.displayName,
    alias: c.alias,
    status: c.status,
    origin: c.origin,
    disappearSeconds: c.ttlSeconds,
    ...(unread === undefined ? {} : { unread }),
    verified: c.verifiedCode !== null && c.verifiedCode === c.securityCode,
    keysChanged: c.verifiedCode !== null && c.verifiedCode !== c.securityCode,
    createdAt: isoTime(c.createdAt),
  };
}

export function messageView(m: Message, contact: string): MessageView {
  return {
    type: 'message',
    id: m.id,
    contact,
    contactId: m.contactId,
    direction: m.direction,
    kind: m.kind,
    seq: m.seq,
    text: m.text,
    status: m.status,
    sentAt: isoTime(m.sentAt),
    receivedAt: isoTime(m.receivedAt),
    relayAt: isoTime(m.relayAt),
    deliveredAt: isoTime(m.deliveredAt),
    readAt: isoTime(m.readAt),
    expiresAt: isoTime(m.expiresAt),
  };
}

export function requestView(r: ContactRequest): RequestView {
  return { type: 'request', n: r.n, name: r.displayName, receivedAt: isoTime(r.receivedAt) };
}
