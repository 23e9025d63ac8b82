/** Contacts and messages: `contacts`, `alias`, `send`, `read`, `history`, `disappear`, `delete`, `rotate`. */
import { Command, InvalidArgumentError } from 'commander';
import { contactLabel } from '../chat/contacts.js';
import type { Contact } from '../chat/store.js';
import { formatTtl, parseTtl } from '../chat/ttl.js';
import { CliError } from './errors.js';
import { deliver, deliverQuietly } from './delivery.js';
import { contactJson, contactText, messageJson, messageText, printer, requestJson, requestText, safe } from './output.js';
import { profileOptions, withSession, type ProfileFlags } from './session.js';

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

export function contactsCommand(): Command {
  return profileOptions(new Command('contacts').description('list your contacts')).action(async (flags: ProfileFlags) => {
    await withSession(flags, ({ chat }) => {
      const out = printer(flags.json);
      const contacts = chat.contacts();
      if (contacts.length === 0 && !out.json) process.stdout.write('No contacts yet. Make an invitation with: nightjar invite\n');
      const unread = new Map<number, number>();
      for (const m of chat.unread()) unread.set(m.contactId, (unread.get(m.contactId) ?? 0) + 1);
      for (const c of contacts) out.print(contactJson(c, unread.get(c.id) ?? 0), () => contactText(c, unread.get(c.id) ?? 0));
    });
  });
}

export function aliasCommand(): Command {
  return profileOptions(
    new Command('alias').description('give a contact a local name only you see').argument('<contact>', 'alias, name or #id').argument('<alias>', 'the new alias'),
  )
    .option('--remove', 'remove the alias instead (pass any placeholder as <alias>)')
    .action(async (ref: string, alias: string, flags: ProfileFlags & { remove?: boolean }) => {
      await withSession(flags, ({ chat }) => {
        const contact = chat.setAlias(chat.find(ref), flags.remove ? null : alias);
        printer(flags.json).print(contactJson(contact), () => (flags.remove ? `Removed the alias of #${contact.id}` : `#${contact.id} is now "${safe(contactLabel(contact))}"`));
      });
    });
}

export function sendCommand(): Command {
  return profileOptions(
    new Command('send').description('send a message; returns once the relay has stored it').argument('<contact>', 'alias, name or #id').argument('<text...>', 'the message'),
  ).action(async (ref: string, words: string[], flags: ProfileFlags) => {
    await withSession(flags, async (session) => {
      const { chat } = session;
      const contact = chat.find(ref);
      const queued = chat.send(contact, words.join(' '));
      await deliver(session, 'the message is saved and will be sent by the next command');
      const m = chat.message(queued.id) ?? queued;
      if (m.status === 'queued') throw new CliError('the relay has not confirmed the message yet; it is saved and will be sent by the next command');
      printer(flags.json).print(messageJson(m, contactLabel(contact)), () => messageText(m, contactLabel(contact)));
    });
  });
}

export function readCommand(): Command {
  return profileOptions(
    new Command('read').description('fetch waiting messages and print the new ones (marks them read)').argument('[contact]', 'only this contact (alias, name or #id)'),
  ).action(async (ref: string | undefined, flags: ProfileFlags) => {
    await withSession(flags, async (session) => {
      const { chat } = session;
      const only = ref === undefined ? undefined : chat.find(ref);
      // a relay that cannot be reached does not hide what the others delivered: print, then report it
      let unreachable: CliError | undefined;
      await deliver(session).catch((e: unknown) => {
        if (!(e instanceof CliError)) throw e;
        unreachable = e;
      });
      const out = printer(flags.json);
      const labels = new Map<number, string>(chat.contacts().map((c) => [c.id, contactLabel(c)]));
      const messages = chat.unread(only === undefined ? undefined : (chat.store.contact(only.id) ?? only));
      for (const m of messages) {
        const label = labels.get(m.contactId) ?? `#${m.contactId}`;
        out.print(messageJson(m, label), () => messageText(m, label, only === undefined));
      }
      const requests = chat.requests().filter((r) => !r.shown);
      for (const r of requests) out.print(requestJson(r), () => requestText(r));
      chat.store.markRequestsShown(requests.map((r) => r.n));
      if (messages.length === 0 && requests.length === 0 && !out.json && !unreachable) process.stdout.write('No new messages.\n');
      chat.markRead(messages);
      if (messages.length > 0 && unreachable === undefined) await deliverQuietly(session); // read receipts
      if (unreachable) throw unreachable;
    });
  });
}

export function historyCommand(): Command {
  return profileOptions(new Command('history').description('show the conversation with a contact').argument('<contact>', 'alias, name or #id'))
    .option('--limit <n>', 'only the last N messages', positive)
    .action(async (ref: string, flags: ProfileFlags & { limit?: number }) => {
      await withSession(flags, ({ chat }) => {
        const contact = chat.find(ref);
        const out = printer(flags.json);
        const label = contactLabel(contact);
        const messages = chat.history(contact, flags.limit);
        if (messages.length === 0 && !out.json) process.stdout.write(`No messages with ${safe(label)}.\n`);
        for (const m of messages) out.print(messageJson(m, label), () => messageText(m, label));
      });
    });
}

function timerText(c: Contact): string {
  return c.ttlSeconds === null ? `Disappearing messages with ${safe(contactLabel(c))} are off` : `Messages with ${safe(contactLabel(c))} now disappear ${formatTtl(c.ttlSeconds)} after they are sent`;
}

export function disappearCommand(): Command {
  return profileOptions(
    new Command('disappear')
      .description('set the disappearing-messages timer for a contact (both sides delete each message that long after it was sent)')
      .argument('<contact>', 'alias, name or #id')
      .argument('<time>', 'seconds (or 10m, 1h, 7d), or off'),
  ).action(async (ref: string, time: string, flags: ProfileFlags) => {
    const ttl = parseTtl(time);
    await withSession(flags, async (session) => {
      const contact = session.chat.setTimer(session.chat.find(ref), ttl);
      await deliver(session, 'the change is saved and will be sent by the next command');
      printer(flags.json).print(contactJson(contact), () => timerText(contact));
    });
  });
}

export function deleteCommand(): Command {
  return profileOptions(new Command('delete').description('delete a contact, its queues on the relays and the whole history').argument('<contact>', 'alias, name or #id')).action(
    async (ref: string, flags: ProfileFlags) => {
      await withSession(flags, async ({ chat }) => {
        const contact = chat.find(ref);
        await chat.deleteContact(contact);
        printer(flags.json).print({ ...contactJson(contact), deleted: true }, () => `Deleted ${safe(contactLabel(contact))} and the conversation`);
      });
    },
  );
}

export function redundantCommand(): Command {
  return profileOptions(
    new Command('redundant')
      .description("add a second receiving queue for a contact on a relay of another operator, so the conversation survives either relay vanishing")
      .argument('<contact>', 'alias, name or #id'),
  )
    .option('--relay <address>', 'put the extra queue on this relay')
    .action(async (ref: string, flags: ProfileFlags & { relay?: string }) => {
      await withSession(flags, async (session) => {
        const contact = session.chat.find(ref);
        await session.agent.addRedundantQueue(contact.connectionId, flags.relay);
        await deliver(session, 'the new queue is saved and will be announced with the next command');
        const relays = session.agent.connection(contact.connectionId)?.receiveRelays ?? [];
        printer(flags.json).print({ ...contactJson(contact), receiveRelays: relays }, () => `${safe(contactLabel(contact))} now reaches you through ${relays.join(' and ')}`);
      });
    });
}

export function rotateCommand(): Command {
  return profileOptions(new Command('rotate').description("move a contact's connection to new queues").argument('<contact>', 'alias, name or #id'))
    .option('--relay <address>', 'put the new receiving queue on this relay')
    .action(async (ref: string, flags: ProfileFlags & { relay?: string }) => {
      await withSession(flags, async (session) => {
        const contact = session.chat.find(ref);
        await session.chat.rotate(contact, flags.relay);
        await deliver(session, 'the rotation is saved and will continue with the next command');
        const relays = session.agent.connection(contact.connectionId)?.receiveRelays ?? [];
        printer(flags.json).print({ ...contactJson(contact), rotated: true, receiveRelays: relays }, () => `Rotating the queues of ${safe(contactLabel(contact))}${relays.length ? `; receiving on ${relays.join(', ')}` : ''}`);
      });
    });
}
