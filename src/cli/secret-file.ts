/**
 * Secrets read from files, so they never appear on a command line (where
 * `ps` shows them to every user of the machine): the profile passphrase
 * (--passphrase-file) and relay passwords (--password-file).
 */
import { readFileSync } from 'node:fs';
import { CliError } from './errors.js';

/** The file's text without one trailing line break; a clear error if it cannot be read or is empty. */
export function readSecretFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw new CliError(`${path} is empty`);
  return secret;
}
