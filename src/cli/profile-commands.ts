/** `nightjar init` and `nightjar relays add|remove|list`. */
import { Command } from 'commander';
import { validName } from '../chat/body.js';
import { Chat } from '../chat/chat.js';
import { ChatError } from '../chat/errors.js';
import { createProfileDatabase, profileExists } from '../chat/profile-db.js';
import { parseAddress } from '../protocol/address.js';
import { printer } from './output.js';
import { readPassphrase } from './passphrase.js';
import { openAgent, profileDir, profileOptions, withSession, type ProfileFlags } from './session.js';

export function initCommand(): Command {
  return profileOptions(
    new Command('init')
      .description('create a profile: keys and an encrypted database (passphrase from $NIGHTJAR_PASSPHRASE or a prompt)')
      .requiredOption('--name <name>', 'your display name, shown only to your contacts'),
  ).action(async (flags: ProfileFlags & { name: string }) => {
    const dir = profileDir(flags);
    const name = validName(flags.name);
    if (name === undefined) throw new ChatError('BAD_INPUT', 'the display name must be 1 to 64 printable characters');
    if (profileExists(dir)) throw new ChatError('PROFILE_EXISTS', `a profile already exists in ${dir}`);
    const passphrase = await readPassphrase(dir, true);
    await createProfileDatabase(dir, passphrase, async (db) => {
      Chat.initialize(db, name);
      const agent = openAgent(db, Chat.open(db)); // creates the agent's tables and keys
      await agent.close();
    });
    printer(flags.json).print({ type: 'profile', profile: dir, name }, () => `Created profile "${name}" in ${dir}\nNext: nightjar relays add nightjar://...`);
  });
}

export function relaysCommand(): Command {
  const relays = new Command('relays').description('the relays this profile puts its queues on');

  profileOptions(relays.command('add').description('add a relay').argument('<address>', 'nightjar://<fingerprint>@host:port'))
    .option('--operator <name>', 'who runs the relay (queues are spread over operators)')
    .action(async (address: string, flags: ProfileFlags & { operator?: string }) => {
      parseAddress(address);
      await withSession(flags, ({ agent }) => {
        agent.addRelay(address.trim(), flags.operator);
        const entry = agent.listRelays().find((r) => r.address === address.trim());
        const operator = entry?.operator ?? flags.operator ?? '';
        printer(flags.json).print({ type: 'relay', address: address.trim(), operator }, () => `Added relay ${address.trim()}${operator ? ` (${operator})` : ''}`);
      });
    });

  profileOptions(relays.command('remove').description('stop using a relay for new queues').argument('<address>', 'the relay address')).action(
    async (address: string, flags: ProfileFlags) => {
      await withSession(flags, ({ agent }) => {
        if (!agent.removeRelay(address.trim())) throw new ChatError('BAD_INPUT', `relay ${address.trim()} is not in the list (see: nightjar relays list)`);
        printer(flags.json).print({ type: 'relay', address: address.trim(), removed: true }, () => `Removed relay ${address.trim()}`);
      });
    },
  );

  profileOptions(relays.command('list').description('list the relays with their health (reachable, latency, last error)'))
    .option('--no-check', 'show what was last seen instead of pinging each relay now')
    .action(async (flags: ProfileFlags & { check: boolean }) => {
      await withSession(flags, async ({ agent }) => {
        const out = printer(flags.json);
        const list = flags.check ? await agent.checkRelays(3000) : agent.relayHealth();
        if (list.length === 0 && !out.json) process.stdout.write('No relays yet. Add one with: nightjar relays add nightjar://...\n');
        for (const r of list) {
          const state = r.reachable === undefined ? 'not checked' : r.reachable ? `reachable, ${r.latencyMs ?? '?'} ms` : `unreachable: ${r.lastError ?? 'unknown error'}`;
          out.print(
            { type: 'relay', address: r.address, operator: r.operator, reachable: r.reachable ?? null, latencyMs: r.latencyMs ?? null, lastError: r.lastError ?? null, queues: r.queues },
            () => `${r.address}${r.operator ? `  [${r.operator}]` : ''}  ${state}  (${r.queues} of your queues)`,
          );
        }
      });
    });

  return relays;
}

const ROUTING_MODES = ['direct', 'private', 'onion'] as const;

/** `nightjar routing [direct|private|onion] [--direct-fallback|--no-direct-fallback]`. */
export function routingCommand(): Command {
  return profileOptions(
    new Command('routing')
      .description('how messages reach your contacts’ relays: private (default, via one of your relays), onion (via two), or direct')
      .argument('[mode]', 'direct, private or onion (omit to show the current setting)')
      .option('--direct-fallback', 'send directly when no forwarding relay works (reveals your IP to the contact’s relay)')
      .option('--no-direct-fallback', 'let messages wait until a forwarding relay works (default)'),
  ).action(async (mode: string | undefined, flags: ProfileFlags & { directFallback?: boolean }) => {
    if (mode !== undefined && !(ROUTING_MODES as readonly string[]).includes(mode)) {
      throw new ChatError('BAD_INPUT', `routing must be one of ${ROUTING_MODES.join(', ')}`);
    }
    await withSession(flags, ({ agent }) => {
      const current = agent.routing();
      if (mode !== undefined || flags.directFallback !== undefined) {
        agent.setRouting((mode as (typeof ROUTING_MODES)[number] | undefined) ?? current.mode, flags.directFallback ?? current.allowDirectFallback);
      }
      const now = agent.routing();
      printer(flags.json).print(
        { type: 'routing', mode: now.mode, directFallback: now.allowDirectFallback },
        () => `routing: ${now.mode}${now.mode === 'direct' ? '' : now.allowDirectFallback ? ' (falls back to direct when no forwarding relay works)' : ' (messages wait when no forwarding relay works)'}`,
      );
    });
  });
}
