/** `nightjar init`, `nightjar relays add|remove|list` and `nightjar routing`. */
import { Command } from 'commander';
import type { RoutingView } from '../api/operations.js';
import { ApiError } from '../api/errors.js';
import { validName } from '../chat/body.js';
import { ChatError } from '../chat/errors.js';
import { profileExists } from '../chat/profile-paths.js';
import { parseAddress } from '../protocol/address.js';
import { printer, style } from './output.js';
import { readSecretFile } from './secret-file.js';
import { askHidden, canAsk, newPassphrase, profilePassphrase } from './passphrase.js';
import { callProfile, profileDir, profileOptions, type ProfileFlags } from './profile-access.js';

/** Creates the profile in `dir` (keys and the encrypted database); the passphrase given, else from the environment or asked twice. */
export async function createProfile(dir: string, name: string, passphrase?: string): Promise<void> {
  const clean = validName(name);
  if (clean === undefined) throw new ChatError('BAD_INPUT', 'the display name must be 1 to 64 printable characters');
  if (profileExists(dir)) throw new ChatError('PROFILE_EXISTS', `a profile already exists in ${dir}`);
  passphrase ??= await newPassphrase(profilePassphrase(dir));
  const [{ createProfileDatabase }, { Chat }, { Agent }] = await Promise.all([import('../chat/profile-db.js'), import('../chat/chat.js'), import('../agent/agent.js')]);
  await createProfileDatabase(dir, passphrase, async (db) => {
    Chat.initialize(db, clean);
    await Agent.open(db, Chat.open(db)).close(); // creates the agent's tables and keys
  });
}

export function initCommand(): Command {
  return profileOptions(
    new Command('init')
      .description('create a profile: keys and an encrypted database (passphrase from $NIGHTJAR_PASSPHRASE or a prompt)')
      .requiredOption('--name <name>', 'your display name, shown only to your contacts'),
  ).action(async (flags: ProfileFlags & { name: string }) => {
    const dir = profileDir(flags);
    await createProfile(dir, flags.name, flags.passphraseFile === undefined ? undefined : readSecretFile(flags.passphraseFile));
    printer(flags.json).print({ type: 'profile', profile: dir, name: flags.name.trim() }, () => `Created profile "${flags.name.trim()}" in ${dir}\nNext: nightjar relays add nightjar://...`);
  });
}

/** Lines explaining what the relay list allows (nothing when all is well). */
function routingNote(r: RoutingView): string[] {
  return r.note === null ? [] : [style.yellow(`Note: ${r.note}.`)];
}

function relayPassword(flags: { passwordFile?: string; password?: boolean }, address: string): Promise<string | null | undefined> | string | null | undefined {
  if (flags.passwordFile !== undefined) return readSecretFile(flags.passwordFile);
  if (flags.password === true) {
    if (!canAsk()) throw new ApiError('BAD_INPUT', '--password asks at the terminal; without one, use --password-file FILE');
    return askHidden(`Password for ${address}: `);
  }
  if (flags.password === false) return null; // --no-password: forget the one on record
  return undefined;
}

export function relaysCommand(): Command {
  const relays = new Command('relays').description('the relays this profile puts its queues on');

  profileOptions(relays.command('add').description('check a relay and add it to the list (or update its operator or password)').argument('<address>', 'nightjar://<fingerprint>@host:port'))
    .option('--operator <name>', 'who runs the relay (queues are spread over operators); kept when not given')
    .option('--password-file <file>', 'the password of a private relay, read from this file')
    .option('--password', 'ask for the password of a private relay')
    .option('--no-password', 'forget the password on record')
    .option('--offline', 'add it without checking that it answers and is the relay the address names')
    .action(async (address: string, flags: ProfileFlags & { operator?: string; passwordFile?: string; password?: boolean; offline?: boolean }) => {
      parseAddress(address);
      const password = await relayPassword(flags, address.trim());
      // password: a string sets it, null forgets it, left out keeps the one on record
      const { relay, checked, fallbackOff, routing } = await callProfile(flags, 'relays.add', { address: address.trim(), operator: flags.operator ?? null, password, offline: flags.offline === true });
      printer(flags.json).print({ ...relay, checked, fallbackOff, routing }, () =>
        [
          `${relay['added'] ? 'Added' : 'Updated'} relay ${relay.address}${relay.operator ? ` (${relay.operator})` : ''}${checked ? `: it answers (${relay.latencyMs ?? '?'} ms) and is the relay the address names` : ' without checking it (--offline)'}`,
          ...(fallbackOff ? [`Direct fallback is now off: your relays can forward ${routing.mode === 'onion' ? 'onion-routed' : 'private'} messages, so none goes directly to a contact's relay.`] : []),
          ...routingNote(routing),
        ].join('\n'),
      );
    });

  profileOptions(relays.command('remove').description('stop using a relay for new queues').argument('<address>', 'the relay address')).action(
    async (address: string, flags: ProfileFlags) => {
      const { routing } = await callProfile(flags, 'relays.remove', { address: address.trim() });
      printer(flags.json).print({ type: 'relay', address: address.trim(), removed: true, routing }, () => [`Removed relay ${address.trim()}`, ...routingNote(routing)].join('\n'));
    },
  );

  profileOptions(relays.command('list').description('list the relays with their health (reachable, latency, last error) and what routing they allow'))
    .option('--no-check', 'show what was last seen instead of pinging each relay now')
    .action(async (flags: ProfileFlags & { check: boolean }) => {
      const { relays: list, routing } = await callProfile(flags, 'relays.list', { check: flags.check });
      const out = printer(flags.json);
      if (list.length === 0) out.note('No relays yet. Add one with: nightjar relays add nightjar://...');
      for (const r of list) {
        const state = r.reachable === null ? 'not checked' : r.reachable ? `reachable, ${r.latencyMs ?? '?'} ms` : `unreachable: ${r.lastError ?? 'unknown error'}`;
        out.print(r, () => `${r.address}${r.operator ? `  [${r.operator}]` : ''}${r.password ? '  (password)' : ''}  ${state}  (${r.queues} of your queues)`);
      }
      out.print(routing, () => [`${routing.mode} routing: ${routing.strength === 'robust' ? 'works, and survives one relay going down' : routing.strength === 'fragile' ? 'works' : 'not possible with this list'}`, ...routingNote(routing)].join('\n'));
    });

  return relays;
}

/** `nightjar routing [direct|private|onion] [--direct-fallback|--no-direct-fallback]`. */
export function routingCommand(): Command {
  return profileOptions(
    new Command('routing')
      .description('how messages reach your contacts’ relays: private (default, via one of your relays), onion (via two), or direct')
      .argument('[mode]', 'direct, private or onion (omit to show the current setting)')
      .option('--direct-fallback', 'send directly when no forwarding relay works (reveals your IP to the contact’s relay)')
      .option('--no-direct-fallback', 'let messages wait until a forwarding relay works (default)')
      .option('--isolation <mode>', 'relay: one TLS session per relay for your queues (default); connection: sessions per contact, so a relay cannot link your queues by their session'),
  ).action(async (mode: string | undefined, flags: ProfileFlags & { directFallback?: boolean; isolation?: string }) => {
    const now = await callProfile(flags, 'routing', { mode: mode ?? null, directFallback: flags.directFallback ?? null, isolation: flags.isolation ?? null });
    printer(flags.json).print(now, () =>
      [
        `routing: ${now.mode}${now.mode === 'direct' ? '' : now.directFallback ? ' (sends directly while your list has no relay to forward through)' : ' (messages wait when no forwarding relay works)'}`,
        `transport isolation: ${now.isolation === 'connection' ? 'a TLS session per contact' : 'one TLS session per relay (forwarding: per contact)'}`,
        ...routingNote(now),
      ].join('\n'),
    );
  });
}
