/**
 * What commands print: one JSON object per line with `--json` (each with a
 * `type`), readable text otherwise, in colour only on a terminal without
 * NO_COLOR. Everything a contact wrote is stripped of control characters
 * before it reaches the terminal.
 */
import { contactLabel } from '../chat/contacts.js';
import type { Contact, ContactRequest, Message } from '../chat/store.js';
import { formatTtl } from '../chat/ttl.js';

export type Json = { readonly type: string } & Record<string, unknown>;

export interface Printer {
  readonly json: boolean;
  /** Prints `object` as JSON, or `text` (a function, so JSON-only callers build no text). */
  print(object: Json, text: () => string): void;
}

export function printer(json: boolean | undefined, write: (s: string) => void = (s) => process.stdout.write(s)): Printer {
  return {
    json: json === true,
    print(object, text) {
      write(json ? JSON.stringify(object) + '\n' : text() + '\n');
    },
  };
}

const useColour = (): boolean => process.stdout.isTTY === true && (process.env['NO_COLOR'] ?? '') === '';

function sgr(code: string): (s: string) => string {
  return (s) => (useColour() ? `\u001b[${code}m${s}\u001b[0m` : s);
}

export const style = {
  bold: sgr('1'),
  dim: sgr('2'),
  red: sgr('31'),
  green: sgr('32'),
  yellow: sgr('33'),
  blue: sgr('34'),
  magenta: sgr('35'),
  cyan: sgr('36'),
};

/** Removes control characters except newline and tab, so contacts cannot drive the terminal. */
export function safe(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '');
}

export function isoTime(seconds: number | null): string | null {
  return seconds === null ? null : new Date(seconds * 1000).toISOString();
}

/** `14:03` today, `2025-11-24 14:03` otherwise (local time). */
export function shortTime(seconds: number, now = Date.now()): string {
  const d = new Date(seconds * 1000);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.toDateString() === new Date(now).toDateString() ? hm : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

/** Delivery marks of an outgoing message: … queued, ✓ sent (stored by the relay), ✓✓ delivered, ✓✓ read. */
export function marks(m: Message): string {
  if (m.direction !== 'out' || m.kind !== 'text') return '';
  switch (m.status) {
    case 'queued':
      return style.dim('…');
    case 'sent':
      return style.dim('✓');
    case 'delivered':
      return style.dim('✓✓');
    default:
      return style.blue('✓✓ read');
  }
}

export function contactJson(c: Contact, unread?: number): Json {
  return {
    type: 'contact',
    id: c.id,
    name: contactLabel(c),
    displayName: c.displayName,
    alias: c.alias,
    status: c.status,
    disappearSeconds: c.ttlSeconds,
    ...(unread === undefined ? {} : { unread }),
    createdAt: isoTime(c.createdAt),
  };
}

export function contactText(c: Contact, unread = 0): string {
  const known = c.alias ?? c.displayName;
  const name = known === null ? '' : style.bold(safe(known));
  const also = c.alias !== null && c.displayName !== null ? style.dim(` (${safe(c.displayName)})`) : '';
  const state = c.status === 'ready' ? '' : c.status === 'pending' ? style.yellow(pendingText(c)) : style.red(' has deleted this contact');
  const timer = c.ttlSeconds === null ? '' : style.magenta(` ⏱ ${formatTtl(c.ttlSeconds)}`);
  const news = unread > 0 ? style.green(` ${unread} new`) : '';
  return `${style.dim(`#${c.id}`)} ${name}${also}${state}${timer}${news}`;
}

function pendingText(c: Contact): string {
  switch (c.origin) {
    case 'invite':
      return 'invitation: waiting for someone to use it';
    case 'request':
      return ' accepted, connecting';
    default:
      return `${c.displayName === null ? '' : ' '}connecting: waiting for the other side`;
  }
}

export function messageJson(m: Message, contact: string): Json {
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

/**
 * One message as a line (or lines) of text: `14:03 Bob: hello`, `14:04 you: hi ✓✓`.
 * `labelEvents` names the contact on event lines too (for lists mixing contacts).
 */
export function messageText(m: Message, contact: string, labelEvents = false): string {
  const when = style.dim(shortTime(m.sentAt));
  const timer = m.expiresAt !== null ? style.magenta(' ⏱') : '';
  if (m.kind === 'event') return `${when} ${style.dim(`— ${labelEvents ? `${safe(contact)}: ` : ''}${safe(m.text)}`)}`;
  const who = m.direction === 'out' ? style.green('you') : style.cyan(safe(contact));
  const mark = marks(m);
  return `${when} ${who}: ${safe(m.text)}${mark ? ' ' + mark : ''}${timer}`;
}

export function requestJson(r: ContactRequest): Json {
  return { type: 'request', n: r.n, name: r.displayName, receivedAt: isoTime(r.receivedAt) };
}

export function requestText(r: ContactRequest): string {
  return `${style.bold(String(r.n))}  ${safe(r.displayName ?? '(no name)')} ${style.dim(`wants to connect, ${shortTime(r.receivedAt)} — nightjar accept ${r.n} | nightjar reject ${r.n}`)}`;
}
