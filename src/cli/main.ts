/**
 * The `nightjar` command. Every failure the user can cause ends in one
 * clear line on stderr and a non-zero exit code. Only the command
 * definitions load here; what a command needs (the database, the agent,
 * the relay) loads when it runs.
 */
import { Command, CommanderError } from 'commander';
import { exportCommand, importCommand } from './archive-commands.js';
import { chatCommand } from './chat-command.js';
import { acceptCommand, addressCommand, connectCommand, inviteCommand, rejectCommand, requestsCommand } from './connect-commands.js';
import { devicesCommand } from './device-commands.js';
import { exitCodeOf, userMessage } from './errors.js';
import {
  aliasCommand,
  contactsCommand,
  deleteCommand,
  disappearCommand,
  historyCommand,
  readCommand,
  redundantCommand,
  rotateCommand,
  sendCommand,
  verifyCommand,
} from './message-commands.js';
import { initCommand, relaysCommand, routingCommand } from './profile-commands.js';
import { relayCommand } from './relay-command.js';
import { startCommand } from './start-command.js';
import { VERSION } from './version.js';

/** Exit code for bad usage (runtime failures are 1, Ctrl-C 130). */
const EXIT_USAGE = 2;

/** Throw instead of exiting, and print usage errors as one line, on every subcommand. */
function applySettings(cmd: Command): Command {
  cmd.exitOverride().configureOutput({ outputError: (text, write) => write(`nightjar: ${text.replace(/^error: /, '').trimEnd().split('\n')[0]}\n`) });
  for (const sub of cmd.commands) applySettings(sub);
  return cmd;
}

export function program(): Command {
  return applySettings(
    new Command('nightjar')
      .description('Private messaging without phone numbers or user IDs')
      .version(VERSION)
      .addCommand(startCommand())
      .addCommand(initCommand())
      .addCommand(relaysCommand())
      .addCommand(routingCommand())
      .addCommand(inviteCommand())
      .addCommand(connectCommand())
      .addCommand(addressCommand())
      .addCommand(requestsCommand())
      .addCommand(acceptCommand())
      .addCommand(rejectCommand())
      .addCommand(contactsCommand())
      .addCommand(aliasCommand())
      .addCommand(verifyCommand())
      .addCommand(sendCommand())
      .addCommand(readCommand())
      .addCommand(historyCommand())
      .addCommand(disappearCommand())
      .addCommand(deleteCommand())
      .addCommand(rotateCommand())
      .addCommand(redundantCommand())
      .addCommand(devicesCommand())
      .addCommand(exportCommand())
      .addCommand(importCommand())
      .addCommand(chatCommand())
      .addCommand(relayCommand()),
  );
}

export async function main(argv: readonly string[]): Promise<void> {
  try {
    await program().parseAsync(argv as string[], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version "errors" are successful exits
      process.exitCode = e.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    const known = userMessage(e);
    process.stderr.write(`nightjar: ${known ?? `unexpected error: ${(e as Error)?.stack ?? String(e)}`}\n`);
    process.exitCode = exitCodeOf(e);
  }
}
