/** Finding a contact from what a user types: `#id`, an alias, a display name, or a unique prefix of one. */
import { ChatError } from './errors.js';
import type { Contact } from './store.js';

/** How a contact is shown: alias, else display name, else `#id` while the handshake runs. */
export function contactLabel(c: Contact): string {
  return c.alias ?? c.displayName ?? `#${c.id}`;
}

function names(c: Contact): string[] {
  return [c.alias, c.displayName].filter((n): n is string => n !== null).map((n) => n.toLowerCase());
}

function ambiguous(ref: string, matches: readonly Contact[]): ChatError {
  const list = matches.map((c) => `${contactLabel(c)} (#${c.id})`).join(', ');
  return new ChatError('AMBIGUOUS_CONTACT', `"${ref}" matches several contacts: ${list}; use #id or set an alias`);
}

/**
 * Resolves `ref` among `contacts`: `#3` by number; otherwise an exact alias,
 * then an exact display name, then a unique prefix of either (all ignoring case).
 */
export function findContact(contacts: readonly Contact[], ref: string): Contact {
  const wanted = ref.trim().toLowerCase();
  const byId = /^#(\d+)$/.exec(wanted);
  if (byId) {
    const c = contacts.find((x) => x.id === Number(byId[1]));
    if (c) return c;
  } else if (wanted.length > 0) {
    const tiers: ((c: Contact) => boolean)[] = [
      (c) => c.alias?.toLowerCase() === wanted,
      (c) => c.displayName?.toLowerCase() === wanted,
      (c) => names(c).some((n) => n.startsWith(wanted)),
    ];
    for (const matches of tiers.map((t) => contacts.filter(t))) {
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) throw ambiguous(ref, matches);
    }
  }
  throw new ChatError('UNKNOWN_CONTACT', `no contact "${ref}" (see: nightjar contacts)`);
}
