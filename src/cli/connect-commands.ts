/** Making contacts: `invite`, `connect`, `address create|show|delete|pause|resume|limit`, `requests`, `accept`, `reject`. */
import { Command, InvalidArgumentError } from 'commander';
import type { Agent } from '../agent/agent.js';
import { contactLabel } from '../chat/contacts.js';
import { CliError } from './errors.js';
import { contactJson, printer, requestJson, requestText, safe, style } from './output.js';
import { terminalQr } from './qr.js';
import { deliver } from './delivery.js';
import { profileOptions, withSession, type ProfileFlags } from './session.js';

function requestNumber(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('a request number from: nightjar requests');
  return n;
}

const colour = (): boolean => process.stdout.isTTY === true && (process.env['NO_COLOR'] ?? '') === '';

/** The QR code lines to print before a link (none with --json or --no-qr, a note if the terminal is too narrow). */
function qrLines(link: string, flags: { json?: boolean; qr?: boolean }): string[] {
  if (flags.json || flags.qr === false) return [];
  const qr = terminalQr(link, colour());
  const width = qr.indexOf('\n');
  const columns = process.stdout.isTTY ? process.stdout.columns : undefined;
  if (columns !== undefined && width > columns) return [style.dim(`(widen the terminal to ${width} columns to see the QR code)`)];
  return [qr, ''];
}

export function inviteCommand(): Command {
  return profileOptions(new Command('invite').description('make a one-time invitation link (and QR code) for one person'))
    .option('--no-qr', 'print only the link')
    .action(async (flags: ProfileFlags & { qr?: boolean }) => {
      await withSession(flags, async ({ chat }) => {
        const { contact, link } = await chat.invite();
        printer(flags.json).print({ type: 'invitation', contactId: contact.id, link }, () =>
          [
            ...qrLines(link, flags),
            'One-time invitation: give this link to one person (it works once):',
            link,
            style.dim(`They run: nightjar connect '<link>'; then you run: nightjar read`),
          ].join('\n'),
        );
      });
    });
}

export function connectCommand(): Command {
  return profileOptions(
    new Command('connect').description('connect with a one-time link or a contact address').argument('<link>', 'nightjar:invite#… or nightjar:address#…'),
  ).action(async (link: string, flags: ProfileFlags) => {
    await withSession(flags, async (session) => {
      const contact = await session.chat.connect(link);
      await deliver(session, 'the connection request is saved and will be sent by the next command');
      const now = session.chat.store.contact(contact.id) ?? contact;
      printer(flags.json).print(contactJson(now), () =>
        now.status === 'ready'
          ? `Connected to ${safe(contactLabel(now))}`
          : now.origin === 'address'
            ? `Contact request sent (contact #${now.id}); you are connected once they accept it (check with: nightjar read)`
            : `Joined the invitation (contact #${now.id}); the connection completes when the other side runs nightjar read or chat`,
      );
    });
  });
}

export function addressCommand(): Command {
  const address = new Command('address').description('a long-lived contact address that many people can use to ask to connect');

  profileOptions(address.command('create').description('create your contact address'))
    .option('--no-qr', 'print only the link')
    .action(async (flags: ProfileFlags & { qr?: boolean }) => {
      await withSession(flags, async ({ chat }) => {
        if (chat.addresses().length > 0) throw new CliError('you already have a contact address (see: nightjar address show)');
        const { addressId, link } = await chat.createAddress();
        printer(flags.json).print({ type: 'address', addressId, link }, () =>
          [...qrLines(link, flags), 'Your contact address (share it; see requests with: nightjar requests):', link].join('\n'),
        );
      });
    });

  profileOptions(address.command('show').description('print your contact address'))
    .option('--no-qr', 'print only the link')
    .action(async (flags: ProfileFlags & { qr?: boolean }) => {
      await withSession(flags, ({ chat }) => {
        const list = chat.addresses();
        if (list.length === 0) throw new CliError('you have no contact address (create one with: nightjar address create)');
        const out = printer(flags.json);
        for (const a of list) out.print({ type: 'address', addressId: a.addressId, link: a.link }, () => [...qrLines(a.link, flags), a.link].join('\n'));
      });
    });

  profileOptions(address.command('delete').description('delete your contact address (existing contacts stay)')).action(async (flags: ProfileFlags) => {
    await withSession(flags, async ({ chat }) => {
      const list = chat.addresses();
      if (list.length === 0) throw new CliError('you have no contact address');
      const out = printer(flags.json);
      for (const a of list) {
        await chat.deleteAddress(a.addressId);
        out.print({ type: 'address', addressId: a.addressId, deleted: true }, () => 'Contact address deleted; nobody can send new requests through it');
      }
    });
  });

  profileOptions(address.command('pause').description('drop requests to your address unseen until you resume it')).action(async (flags: ProfileFlags) => {
    await setAddress(flags, (agent, id) => agent.setAddressPaused(id, true));
  });
  profileOptions(address.command('resume').description('accept requests to your address again')).action(async (flags: ProfileFlags) => {
    await setAddress(flags, (agent, id) => agent.setAddressPaused(id, false));
  });
  profileOptions(address.command('limit').description('let at most N requests an hour reach your request list (0: no limit)').argument('<n>', 'requests per hour'))
    .action(async (n: string, flags: ProfileFlags) => {
      const perHour = Number(n);
      if (!Number.isInteger(perHour) || perHour < 0) throw new CliError('the limit must be a whole number, 0 or more');
      await setAddress(flags, (agent, id) => agent.setAddressLimit(id, perHour));
    });

  return address;
}

/** Applies `change` to every contact address of the profile and prints the resulting settings. */
async function setAddress(flags: ProfileFlags, change: (agent: Agent, addressId: string) => void): Promise<void> {
  await withSession(flags, ({ agent }) => {
    const list = agent.listAddresses();
    if (list.length === 0) throw new CliError('you have no contact address (create one with: nightjar address create)');
    const out = printer(flags.json);
    for (const a of list) change(agent, a.addressId);
    for (const a of agent.listAddresses()) {
      out.print(
        { type: 'address', addressId: a.addressId, paused: a.paused, maxPerHour: a.maxPerHour, stampBits: a.stampBits },
        () => `Contact address ${a.paused ? 'paused' : 'open'}; ${a.maxPerHour > 0 ? `at most ${a.maxPerHour} requests an hour` : 'no hourly limit'}; requests need ${a.stampBits} bits of proof of work`,
      );
    }
  });
}

export function requestsCommand(): Command {
  return profileOptions(new Command('requests').description('list contact requests that came through your address')).action(async (flags: ProfileFlags) => {
    await withSession(flags, async (session) => {
      await deliver(session);
      const out = printer(flags.json);
      const list = session.chat.requests();
      if (list.length === 0 && !out.json) process.stdout.write('No contact requests.\n');
      for (const r of list) out.print(requestJson(r), () => requestText(r));
      session.chat.store.markRequestsShown(list.map((r) => r.n));
    });
  });
}

export function acceptCommand(): Command {
  return profileOptions(new Command('accept').description('accept contact request N').argument('<n>', 'request number (see: nightjar requests)', requestNumber)).action(
    async (n: number, flags: ProfileFlags) => {
      await withSession(flags, async (session) => {
        const contact = await session.chat.accept(n);
        await deliver(session, 'the acceptance is saved and will be sent by the next command');
        const now = session.chat.store.contact(contact.id) ?? contact;
        printer(flags.json).print({ ...contactJson(now), request: n }, () => `Accepted ${safe(contactLabel(now))} (contact #${now.id})`);
      });
    },
  );
}

export function rejectCommand(): Command {
  return profileOptions(new Command('reject').description('reject contact request N').argument('<n>', 'request number (see: nightjar requests)', requestNumber)).action(
    async (n: number, flags: ProfileFlags) => {
      await withSession(flags, ({ chat }) => {
        const r = chat.reject(n);
        printer(flags.json).print({ ...requestJson(r), rejected: true }, () => `Rejected request ${n}${r.displayName ? ` from ${safe(r.displayName)}` : ''}`);
      });
    },
  );
}
