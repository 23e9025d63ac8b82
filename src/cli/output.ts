/**
 * What commands print: with `--json` the API's objects (src/api/views.ts),
 * one per line, exactly as the node returned them; otherwise readable
 * text, in colour only on a terminal without NO_COLOR. Everything a
 * contact wrote is stripped of control characters before it reaches the
 * terminal, and hints name the command as the user runs it.
 */
import type { ContactView, Json, MessageView, RequestView } from '../api/views.js';
import { formatTtl } from '../chat/ttl.js';
import { withCommandName } from './command-name.js';

export type { Json };

export interface Printer {
  readonly json: boolean;
  /** Prints `object` as JSON, or `text` (a function, so JSON-only callers build no text). */
  print(object: Json, text: () => string): void;
  /** A line of text only (nothing with --json). */
  note(text: string): void;
}

export function printer(json: boolean | undefined, write: (s: string) => void = (s) => process.stdout.write(s)): Printer {
  return {
    json: json === true,
    print(object, text) {
      write(json ? JSON.stringify(object) + '\n' : withCommandName(text()) + '\n');
    },
    note(text) {
      if (!json) write(withCommandName(text) + '\n');
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

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** One line of text from a contact (a name): control characters removed, line breaks and tabs made spaces. */
export function safe(text: string): string {
  return text.replace(/[\n\t]/g, ' ').replace(CONTROL, '');
}

/**
 * What starts every further line of a contact's message: it lines up under
 * the text and no line of Nightjar's own starts like it, so a message cannot
 * pass off a line of its own as ours (say, "14:05 Alice: …").
 */
export const CONTINUATION = '      ┊ ';

/** Splits `line` into pieces of at most `width` characters (by code point), at spaces where it can. */
function wrap(line: string, width: number): string[] {
  const chars = [...line];
  if (width <= 0 || chars.length <= width) return [line];
  const out: string[] = [];
  let start = 0;
  while (chars.length - start > width) {
    let cut = start + width;
    const space = chars.lastIndexOf(' ', cut);
    if (space > start) cut = space + 1;
    out.push(chars.slice(start, cut).join(''));
    start = cut;
  }
  out.push(chars.slice(start).join(''));
  return out;
}

/**
 * A contact's message text for the terminal: control characters removed,
 * tabs made spaces, and every line after the first, whether the text broke
 * it or the terminal would wrap it (`columns`), starting with CONTINUATION.
 * `firstWidth` is how much of the first line the prefix (time, name) takes.
 */
export function safeBlock(text: string, firstWidth: number, columns = terminalColumns()): string {
  const lines = text.replace(/\t/g, '    ').replace(CONTROL, '').split('\n');
  const pieces: string[] = [];
  for (const line of lines) {
    const first = pieces.length === 0;
    // Without a terminal nothing wraps; on a very narrow one, lines still take 20 characters at least.
    const width = columns === undefined ? 0 : Math.max(20, columns - (first ? firstWidth : CONTINUATION.length));
    pieces.push(...wrap(line, width));
  }
  return pieces.map((piece, i) => (i === 0 ? piece : style.dim(CONTINUATION) + piece)).join('\n');
}

/** The terminal's width when output goes to one (wrapping matters only there). */
function terminalColumns(): number | undefined {
  return process.stdout.isTTY ? process.stdout.columns || undefined : undefined;
}

/** Width of text as the terminal shows it: escape sequences take none. */
function visibleLength(text: string): number {
  return [...text.replace(/\u001b\[[0-9;]*m/g, '')].length;
}

/** `14:03` today, `2025-11-24 14:03` otherwise (local time). */
export function shortTime(iso: string, now = Date.now()): string {
  const d = new Date(iso);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.toDateString() === new Date(now).toDateString() ? hm : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

/** Delivery marks of an outgoing message: … queued, ✓ sent (stored by the relay), ✓✓ delivered, ✓✓ read. */
export function marks(m: MessageView): string {
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

export function contactText(c: ContactView): string {
  const known = c.alias ?? c.displayName;
  const name = known === null ? '' : style.bold(safe(known));
  const also = c.alias !== null && c.displayName !== null ? style.dim(` (${safe(c.displayName)})`) : '';
  const state = c.status === 'ready' ? '' : c.status === 'pending' ? style.yellow(pendingText(c)) : style.red(' has deleted this contact');
  const timer = c.disappearSeconds === null ? '' : style.magenta(` ⏱ ${formatTtl(c.disappearSeconds)}`);
  const news = (c.unread ?? 0) > 0 ? style.green(` ${c.unread} new`) : '';
  const trust = c.keysChanged ? style.red(' ⚠ security code changed: verify again') : c.verified ? style.green(' ✓ verified') : '';
  return `${style.dim(`#${c.id}`)} ${name}${also}${state}${trust}${timer}${news}`;
}

/** The warning for a verified contact whose security code is not the one confirmed any more. */
export function keysChangedWarning(c: ContactView): string {
  const name = safe(c.name);
  return style.red(
    `⚠ The security code with ${name} changed since you verified it. Compare it again before trusting this conversation: nightjar verify ${c.alias ?? c.displayName ?? `#${c.id}`}`,
  );
}

function pendingText(c: ContactView): string {
  if (c.displayName !== null) return ' connecting: finishes when both of you are online';
  switch (c.origin) {
    case 'invite':
      return 'invitation: waiting for someone to use it';
    case 'request':
      return ' accepted, connecting';
    case 'address':
      return 'request sent: waiting for them to accept';
    default:
      return 'joined: waiting for the other side to answer';
  }
}

/**
 * One message as a line (or lines) of text: `14:03 Bob: hello`, `14:04 you: hi ✓✓`.
 * `labelEvents` names the contact on event lines too (for lists mixing contacts).
 */
export function messageText(m: MessageView, labelEvents = false): string {
  const when = style.dim(shortTime(m.sentAt));
  const timer = m.expiresAt !== null ? style.magenta(' ⏱') : '';
  if (m.kind === 'event') return `${when} ${style.dim(`— ${labelEvents ? `${safe(m.contact)}: ` : ''}${safe(m.text)}`)}`;
  const who = m.direction === 'out' ? style.green('you') : style.cyan(safe(m.contact));
  const mark = marks(m);
  const prefix = `${when} ${who}: `;
  return `${prefix}${safeBlock(m.text, visibleLength(prefix))}${mark ? ' ' + mark : ''}${timer}`;
}

export function requestText(r: RequestView): string {
  return `${style.bold(String(r.n))}  ${safe(r.name ?? '(no name)')} ${style.dim(`wants to connect, ${shortTime(r.receivedAt)} — nightjar accept ${r.n} | nightjar reject ${r.n}`)}`;
}

/** What a person should know about an invitation made on a relay only this machine can reach (nothing otherwise). */
export function localRelayWarning(relay: string): string[] {
  const host = /@\[?([^\]@]+?)\]?:\d+$/.exec(relay)?.[1] ?? '';
  const local = host === 'localhost' || host === '::1' || /^127\./.test(host);
  return local
    ? [style.yellow(`Note: this invitation is on a relay at ${host}, which only this machine can reach; someone on another machine needs you to add a public relay first (nightjar relays add …).`)]
    : [];
}
