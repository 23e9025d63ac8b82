/** Contacts and messages: `contacts`, `alias`, `send`, `read`, `history`, `disappear`, `delete`, `rotate`, `redundant`. */
import { Command, InvalidArgumentError } from 'commander';
import { formatTtl, parseTtl } from '../chat/ttl.js';
import type { ContactView } from '../api/views.js';
import { contactText, keysChangedWarning, messageText, printer, requestText, safe } from './output.js';
import { callProfile, profileOptions, type ProfileFlags } from './profile-access.js';

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

export function contactsCommand(): Command {
  return profileOptions(new Command('contacts').description('list your contacts'))
    .option('--all', 'also list your one-time invitations nobody has used yet')
    .action(async (flags: ProfileFlags & { all?: boolean }) => {
      const { contacts } = await callProfile(flags, 'contacts', { all: flags.all === true });
      const out = printer(flags.json);
      if (contacts.length === 0) out.note(flags.all ? 'No contacts yet. Make an invitation with: nightjar invite' : 'No contacts yet. Make an invitation with: nightjar invite (unused ones: nightjar contacts --all)');
      for (const c of contacts) out.print(c, () => contactText(c));
    });
}

/** The code in three lines of four groups, for comparing aloud or side by side. */
export function codeLines(code: string): string[] {
  const groups = code.split(' ');
  return [0, 4, 8].map((i) => '  ' + groups.slice(i, i + 4).join('  '));
}

export function verifyCommand(): Command {
  return profileOptions(
    new Command('verify')
      .description("compare your security code with a contact's, to be sure nobody is in the middle; then mark the contact verified")
      .argument('<contact>', 'alias, name or #id'),
  )
    .option('--yes', 'the codes are the same: mark the contact verified')
    .option('--code <digits>', 'the code the contact sees (60 digits): compared here, and marked verified if it is the same')
    .option('--clear', 'mark the contact not verified')
    .option('--no-qr', 'print only the digits')
    .action(async (ref: string, flags: ProfileFlags & { yes?: boolean; code?: string; clear?: boolean; qr?: boolean }) => {
      const params = { contact: ref, confirm: flags.yes === true, clear: flags.clear === true, ...(flags.code === undefined ? {} : { code: flags.code }) };
      const { contact, code } = await callProfile(flags, 'verify', params);
      const name = safe(contact.name);
      const out = printer(flags.json);
      if (code === null) {
        out.print({ ...contact, code }, () => `${name} is not connected yet: there is no security code to compare.`);
        return;
      }
      const { qrLines } = await import('./qr.js');
      out.print({ ...contact, code }, () => {
        if (flags.clear) return `${name} is marked not verified.`;
        if (flags.yes || flags.code !== undefined) return `${name} is verified: the security code is the same on both sides.${flags.code !== undefined ? ' (compared here)' : ''}`;
        return [
          `Security code with ${name}${contact.verified ? ' (verified)' : ''}:`,
          ...codeLines(code),
          '',
          ...qrLines(`nightjar:verify#${code.replace(/ /g, '')}`, flags),
          `Compare it with the code ${name} sees (they run: nightjar verify <your name>), in person or on a call you trust.`,
          `If it is the same: nightjar verify ${contact.alias ?? contact.displayName ?? `#${contact.id}`} --yes  (or type theirs: --code '…')`,
        ].join('\n');
      });
    });
}

export function aliasCommand(): Command {
  return profileOptions(
    new Command('alias').description('give a contact a local name only you see').argument('<contact>', 'alias, name or #id').argument('<alias>', 'the new alias'),
  )
    .option('--remove', 'remove the alias instead (pass any placeholder as <alias>)')
    .action(async (ref: string, alias: string, flags: ProfileFlags & { remove?: boolean }) => {
      const c = await callProfile(flags, 'alias', { contact: ref, alias: flags.remove ? null : alias });
      printer(flags.json).print(c, () => (flags.remove ? `Removed the alias of #${c.id}` : `#${c.id} is now "${safe(c.name)}"`));
    });
}

export function sendCommand(): Command {
  return profileOptions(
    new Command('send').description('send a message; returns once the relay has stored it').argument('<contact>', 'alias, name or #id').argument('<text...>', 'the message'),
  ).action(async (ref: string, words: string[], flags: ProfileFlags) => {
    const { message, note } = await callProfile(flags, 'send', { contact: ref, text: words.join(' ') }, 'the message is saved and will be sent by the next command');
    const out = printer(flags.json);
    out.print(message, () => messageText(message));
    if (note !== null) out.note(note);
  });
}

export function readCommand(): Command {
  return profileOptions(
    new Command('read').description('fetch waiting messages and print the new ones (marks them read)').argument('[contact]', 'only this contact (alias, name or #id)'),
  ).action(async (ref: string | undefined, flags: ProfileFlags) => {
    const { messages, requests, waiting, unreachable } = await callProfile(flags, 'read', ref === undefined ? {} : { contact: ref });
    const out = printer(flags.json);
    for (const m of messages) out.print(m, () => messageText(m, ref === undefined));
    for (const r of requests) out.print(r, () => requestText(r));
    for (const c of waiting) out.note(`${safe(c.name)} is connecting: it finishes when both of you are online (keep nightjar chat open, or run any command later)`);
    if (messages.length === 0 && requests.length === 0 && unreachable === null) out.note('No new messages.');
    // A relay that could not be reached does not hide what the others delivered: printed first, reported after.
    if (unreachable !== null) {
      process.stderr.write(`nightjar: ${unreachable}\n`);
      process.exitCode = 1;
    }
  });
}

export function historyCommand(): Command {
  return profileOptions(new Command('history').description('show the conversation with a contact').argument('<contact>', 'alias, name or #id'))
    .option('--limit <n>', 'only the last N messages', positive)
    .action(async (ref: string, flags: ProfileFlags & { limit?: number }) => {
      const { contact, messages } = await callProfile(flags, 'history', { contact: ref, limit: flags.limit ?? null });
      const out = printer(flags.json);
      if (contact.keysChanged) out.note(keysChangedWarning(contact));
      if (messages.length === 0) out.note(`No messages with ${safe(contact.name)}.`);
      for (const m of messages) out.print(m, () => messageText(m));
    });
}

function timerText(c: ContactView): string {
  return c.disappearSeconds === null
    ? `Disappearing messages with ${safe(c.name)} are off`
    : `Messages with ${safe(c.name)} now disappear ${formatTtl(c.disappearSeconds)} after they are sent`;
}

export function disappearCommand(): Command {
  return profileOptions(
    new Command('disappear')
      .description('set the disappearing-messages timer for a contact (both sides delete each message that long after it was sent)')
      .argument('<contact>', 'alias, name or #id')
      .argument('<time>', 'seconds (or 10m, 1h, 7d), or off'),
  ).action(async (ref: string, time: string, flags: ProfileFlags) => {
    const seconds = parseTtl(time);
    const c = await callProfile(flags, 'disappear', { contact: ref, seconds }, 'the change is saved and will be sent by the next command');
    printer(flags.json).print(c, () => timerText(c));
  });
}

export function deleteCommand(): Command {
  return profileOptions(new Command('delete').description('delete a contact, its queues on the relays and the whole history').argument('<contact>', 'alias, name or #id')).action(
    async (ref: string, flags: ProfileFlags) => {
      const c = await callProfile(flags, 'delete', { contact: ref });
      printer(flags.json).print(c, () => `Deleted ${safe(c.name)} and the conversation`);
    },
  );
}

export function redundantCommand(): Command {
  return profileOptions(
    new Command('redundant')
      .description('add a second receiving queue for a contact on a relay of another operator, so the conversation survives either relay vanishing')
      .argument('<contact>', 'alias, name or #id'),
  )
    .option('--relay <address>', 'put the extra queue on this relay')
    .action(async (ref: string, flags: ProfileFlags & { relay?: string }) => {
      const { contact, receiveRelays } = await callProfile(flags, 'redundant', { contact: ref, relay: flags.relay ?? null }, 'the new queue is saved and will be announced by the next command');
      printer(flags.json).print({ ...contact, receiveRelays }, () => `${safe(contact.name)} now reaches you through ${receiveRelays.join(' and ')}`);
    });
}

export function rotateCommand(): Command {
  return profileOptions(new Command('rotate').description("move a contact's connection to new queues").argument('<contact>', 'alias, name or #id'))
    .option('--relay <address>', 'put the new receiving queue on this relay')
    .action(async (ref: string, flags: ProfileFlags & { relay?: string }) => {
      const { contact, receiveRelays } = await callProfile(flags, 'rotate', { contact: ref, relay: flags.relay ?? null }, 'the rotation is saved and continues with the next command');
      printer(flags.json).print(
        { ...contact, rotated: true, receiveRelays },
        () => `Rotating the queues of ${safe(contact.name)}${receiveRelays.length ? `; receiving on ${receiveRelays.join(', ')}` : ''}`,
      );
    });
}
