/**
 * Hints name the command the user can actually run: `nightjar` when that
 * is on the PATH, `npx nightjar` under npx, else the path they typed
 * (`bin/nightjar` from a clone). bin/nightjar passes its $0 along as
 * NIGHTJAR_COMMAND.
 */
import { accessSync, constants, realpathSync } from 'node:fs';
import { basename, delimiter, join } from 'node:path';

const SUBCOMMANDS =
  'init|start|relays|routing|invite|connect|address|requests|accept|reject|contacts|alias|verify|send|read|history|disappear|delete|rotate|redundant|chat|relay|export|import|devices';
const HINT = new RegExp(`\\bnightjar (?=(?:${SUBCOMMANDS})\\b)`, 'g');

function onPath(path: string): boolean {
  let target: string;
  try {
    target = realpathSync(path);
  } catch {
    return false;
  }
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      const found = join(dir, 'nightjar');
      accessSync(found, constants.X_OK);
      return realpathSync(found) === target;
    } catch {
      continue;
    }
  }
  return false;
}

let cached: string | undefined;

/** How to write the command in a hint. */
export function commandName(): string {
  if (cached !== undefined) return cached;
  const invoked = process.env['NIGHTJAR_COMMAND'];
  if (process.env['npm_command'] === 'exec') cached = 'npx nightjar';
  else if (invoked === undefined || invoked === '' || (basename(invoked) === 'nightjar' && onPath(invoked))) cached = 'nightjar';
  else cached = invoked.includes(' ') ? JSON.stringify(invoked) : invoked;
  return cached;
}

/** `text` with every `nightjar <subcommand>` hint written the way this user runs it. */
export function withCommandName(text: string): string {
  const name = commandName();
  return name === 'nightjar' ? text : text.replace(HINT, `${name} `);
}
