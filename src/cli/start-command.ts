/**
 * `nightjar start` (what `npm start` runs): two relays on this machine and
 * the interactive chat on them, in one go. Two, so that private routing
 * works from the start without ever sending directly (each relay forwards
 * for the other). The first run asks for a name and a passphrase (twice)
 * and creates the profile with both relays in its list; later runs ask for
 * the passphrase once. The relays run as child processes with their logs in
 * their data directories, and stop when the chat ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { profileExists } from '../chat/profile-paths.js';
import { CliError } from './errors.js';
import { printer, style } from './output.js';
import { askLine, canAsk, newPassphrase, profilePassphrase } from './passphrase.js';
import { openNodeHere, profileDir, profileOptions, type ProfileFlags } from './profile-access.js';
import { readSecretFile } from './secret-file.js';
import { DEFAULT_RELAY_DIR } from './relay-command.js';

interface LocalRelay {
  readonly address: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `nightjar relay start` as a child; resolves with its address once it listens. */
async function startLocalRelay(dataDir: string, port: number): Promise<LocalRelay> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const log = createWriteStream(join(dataDir, 'relay.log'), { flags: 'a', mode: 0o600 });
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'relay', 'start', '--json', '--data-dir', dataDir, '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NIGHTJAR_PARENT_PID: String(process.pid) },
  });
  child.stderr!.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => {
      try {
        resolve((JSON.parse(line) as { address: string }).address);
      } catch {
        reject(new CliError(`the local relay printed ${JSON.stringify(line)} instead of its address`));
      }
    });
    child.once('exit', (code) => reject(new CliError(`the local relay did not start (exit ${code}); see ${join(dataDir, 'relay.log')}`)));
  });
  return {
    address,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      log.end();
    },
  };
}

export function startCommand(): Command {
  return profileOptions(new Command('start').description('start a relay on this machine and open the chat on it (creates the profile on first run)'))
    .option('--relay-dir <dir>', 'the local relay’s data directory', process.env['NIGHTJAR_RELAY_DIR'] ?? DEFAULT_RELAY_DIR)
    .option('--port <port>', 'the local relay’s port', (v) => Number(v), 5225)
    .option('--name <name>', 'your display name, for a new profile (asked otherwise)')
    .action(async (flags: ProfileFlags & { relayDir: string; port: number; name?: string }) => {
      const dir = profileDir(flags);
      const out = printer(flags.json);
      const relays: LocalRelay[] = [];
      process.once('exit', () => relays.forEach((r) => r.process.kill('SIGTERM')));
      try {
        relays.push(await startLocalRelay(flags.relayDir, flags.port));
        relays.push(await startLocalRelay(`${flags.relayDir}-2`, flags.port === 0 ? 0 : flags.port + 1));
        for (const r of relays) out.note(`Local relay: ${r.address}`);
        const fresh = !profileExists(dir);
        let passphrase: string | undefined;
        if (fresh) {
          out.note(`Welcome to Nightjar. Your profile is a set of keys in ${dir}, encrypted with a passphrase; there is no account and no phone number.`);
          const name = flags.name ?? process.env['NIGHTJAR_NAME'] ?? (canAsk() ? await askLine('Your name, shown only to your contacts: ', userInfo().username) : userInfo().username);
          passphrase = flags.passphraseFile === undefined ? await newPassphrase(profilePassphrase(dir)) : readSecretFile(flags.passphraseFile);
          const { createProfile } = await import('./profile-commands.js');
          await createProfile(dir, name, passphrase);
          out.note(`Created your profile "${name}".`);
        }
        const node = await openNodeHere(flags, passphrase);
        try {
          await node.session.loadAgent();
          const ctx = { progress: () => undefined, signal: new AbortController().signal };
          for (const r of relays) {
            if (!node.session.agent.listRelays().some((listed) => listed.address === r.address)) {
              await node.call('relays.add', { address: r.address, operator: 'this machine', offline: true }, ctx);
            }
          }
          const hosts = relays.map((r) => r.address.replace(/^.*@/, '')).join(' and ');
          out.note(
            style.yellow(
              `The local relays (${hosts}) are reachable only from this machine, and only while this chat is open. ` +
                'To talk with people elsewhere, add public relays: nightjar relays add nightjar://…@host:port (two or more, run by different operators).',
            ),
          );
          out.note('In the chat, /invite makes a link for someone to connect with; /help lists the commands.');
          const { runChat } = await import('./chat-command.js');
          await runChat(node.session, undefined, flags.json === true);
        } finally {
          await node.close();
        }
      } finally {
        await Promise.all(relays.map((r) => r.stop()));
      }
    });
}
