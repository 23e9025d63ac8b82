/** Making contacts: `invite`, `connect`, `address create|show|delete|pause|resume|limit`, `requests`, `accept`, `reject`. */
import { Command, InvalidArgumentError } from 'commander';
import { formatTtl, parseTtl } from '../chat/ttl.js';
import type { ContactView } from '../api/views.js';
import { ApiError } from '../api/errors.js';
import { localRelayWarning, printer, requestText, safe, style } from './output.js';
import { callProfile, profileOptions, type ProfileFlags } from './profile-access.js';

/** The first line of standard input (a link given with `-`). */
async function readLine(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  const line = text.split('\n')[0]!.trim();
  if (line === '') throw new ApiError('BAD_INPUT', 'no link on standard input');
  return line;
}

function requestNumber(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('a request number from: nightjar requests');
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 24 * 3600) throw new InvalidArgumentError('seconds from 0 to 86400');
  return n;
}

export function inviteCommand(): Command {
  return profileOptions(new Command('invite').description('make a one-time invitation link (and QR code) for one person'))
    .option('--no-qr', 'print only the link')
    .option('--expires <time>', 'withdraw it if nobody used it by then: seconds, or 10m, 12h, 7d', '7d')
    .action(async (flags: ProfileFlags & { qr?: boolean; expires: string }) => {
      const validSeconds = parseTtl(flags.expires);
      if (validSeconds === null) throw new InvalidArgumentError('--expires needs a time');
      const invitation = await callProfile(flags, 'invite', { validSeconds });
      const { qrLines } = await import('./qr.js');
      printer(flags.json).print(invitation, () =>
        [
          ...qrLines(invitation.link, flags),
          `One-time invitation: give this link to one person (it works once, for ${formatTtl(validSeconds)}):`,
          invitation.link,
          ...localRelayWarning(invitation.relay),
          style.dim(`They run: nightjar connect '<link>'; you see them with: nightjar read`),
        ].join('\n'),
      );
    });
}

function connectedText(c: ContactView, connected: boolean, viaAddress: boolean): string {
  const name = safe(c.name);
  if (connected) return `Connected to ${name}. Send with: nightjar send ${c.alias ?? c.displayName ?? `#${c.id}`} <text>`;
  if (viaAddress) return `Contact request sent (contact #${c.id}); you are connected once they accept it (check with: nightjar read)`;
  if (c.displayName !== null) return `${name} answered; the connection finishes the next time both of you are online (keep nightjar chat open, or run any command later)`;
  return `Joined the invitation (contact #${c.id}), but its maker's Nightjar has not answered yet: the connection completes when they are online and either of you runs a command (or keeps nightjar chat open)`;
}

export function connectCommand(): Command {
  return profileOptions(
    new Command('connect')
      .description('connect with a one-time link or a contact address')
      .argument('<link>', "nightjar:invite#… or nightjar:address#…, or - to read it from standard input (so it does not show in ps)"),
  )
    .option('--wait <seconds>', 'wait this long for the other side to answer', seconds, 60)
    .option('--no-wait', 'return as soon as the request is with the relay')
    .action(async (linkArg: string, flags: ProfileFlags & { wait: number | false }) => {
      const link = linkArg === '-' ? await readLine() : linkArg;
      const waitMs = flags.wait === false ? 0 : flags.wait * 1000;
      const { contact, connected, viaAddress } = await callProfile(flags, 'connect', { link, waitMs }, 'the connection request is saved; it completes when the other side is online');
      printer(flags.json).print({ ...contact, connected }, () => connectedText(contact, connected, viaAddress));
    });
}

export function addressCommand(): Command {
  const address = new Command('address').description('a long-lived contact address that many people can use to ask to connect');

  profileOptions(address.command('create').description('create your contact address'))
    .option('--no-qr', 'print only the link')
    .action(async (flags: ProfileFlags & { qr?: boolean }) => {
      const a = await callProfile(flags, 'address.create', {});
      const { qrLines } = await import('./qr.js');
      printer(flags.json).print(a, () => [...qrLines(a.link, flags), 'Your contact address (share it; see requests with: nightjar requests):', a.link].join('\n'));
    });

  profileOptions(address.command('show').description('print your contact address'))
    .option('--no-qr', 'print only the link')
    .action(async (flags: ProfileFlags & { qr?: boolean }) => {
      const { addresses } = await callProfile(flags, 'address.show', {});
      if (addresses.length === 0) throw new ApiError('BAD_REQUEST', 'you have no contact address (create one with: nightjar address create)');
      const out = printer(flags.json);
      const { qrLines } = await import('./qr.js');
      for (const a of addresses) out.print(a, () => [...qrLines(a.link, flags), a.link].join('\n'));
    });

  profileOptions(address.command('delete').description('delete your contact address (existing contacts stay)')).action(async (flags: ProfileFlags) => {
    const { deleted } = await callProfile(flags, 'address.delete', {});
    const out = printer(flags.json);
    for (const addressId of deleted) out.print({ type: 'address', addressId, deleted: true }, () => 'Contact address deleted; nobody can send new requests through it');
  });

  const settings = async (flags: ProfileFlags, change: { paused?: boolean; maxPerHour?: number }): Promise<void> => {
    const { addresses } = await callProfile(flags, 'address.set', change);
    const out = printer(flags.json);
    for (const a of addresses) {
      out.print(
        a,
        () => `Contact address ${a.paused ? 'paused' : 'open'}; ${a.maxPerHour > 0 ? `at most ${a.maxPerHour} requests an hour` : 'no hourly limit'}; requests need ${a.stampBits} bits of proof of work`,
      );
    }
  };
  profileOptions(address.command('pause').description('drop requests to your address unseen until you resume it')).action((flags: ProfileFlags) => settings(flags, { paused: true }));
  profileOptions(address.command('resume').description('accept requests to your address again')).action((flags: ProfileFlags) => settings(flags, { paused: false }));
  profileOptions(address.command('limit').description('let at most N requests an hour reach your request list (0: no limit)').argument('<n>', 'requests per hour')).action(
    (n: string, flags: ProfileFlags) => {
      const perHour = Number(n);
      if (!Number.isInteger(perHour) || perHour < 0) throw new ApiError('BAD_INPUT', 'the limit must be a whole number, 0 or more');
      return settings(flags, { maxPerHour: perHour });
    },
  );

  return address;
}

export function requestsCommand(): Command {
  return profileOptions(new Command('requests').description('list contact requests that came through your address')).action(async (flags: ProfileFlags) => {
    const { requests, unreachable } = await callProfile(flags, 'requests', {});
    const out = printer(flags.json);
    if (requests.length === 0 && unreachable === null) out.note('No contact requests.');
    for (const r of requests) out.print(r, () => requestText(r));
    if (unreachable !== null) {
      process.stderr.write(`nightjar: ${unreachable}\n`);
      process.exitCode = 1;
    }
  });
}

export function acceptCommand(): Command {
  return profileOptions(new Command('accept').description('accept contact request N').argument('<n>', 'request number (see: nightjar requests)', requestNumber))
    .option('--wait <seconds>', 'wait this long for the requester to answer', seconds, 30)
    .option('--no-wait', 'return as soon as the acceptance is with the relay')
    .action(async (n: number, flags: ProfileFlags & { wait: number | false }) => {
      const waitMs = flags.wait === false ? 0 : flags.wait * 1000;
      const { contact, connected, request } = await callProfile(flags, 'accept', { n, waitMs }, 'the acceptance is saved; the connection completes when the requester is online');
      printer(flags.json).print({ ...contact, request, connected }, () =>
        connected
          ? `Accepted ${safe(contact.name)} (contact #${contact.id}); connected`
          : `Accepted ${safe(contact.name)} (contact #${contact.id}); the connection finishes when their Nightjar is online (keep nightjar chat open, or run any command later)`,
      );
    });
}

export function rejectCommand(): Command {
  return profileOptions(new Command('reject').description('reject contact request N').argument('<n>', 'request number (see: nightjar requests)', requestNumber)).action(
    async (n: number, flags: ProfileFlags) => {
      const r = await callProfile(flags, 'reject', { n });
      printer(flags.json).print(r, () => `Rejected request ${n}${r.name ? ` from ${safe(r.name)}` : ''}`);
    },
  );
}
