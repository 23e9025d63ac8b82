/**
 * Where a profile's files are. Kept apart from profile-db.ts (which loads
 * SQLite) so that a command can check for a profile without loading it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ChatError } from './errors.js';

/** File name of the database inside a profile directory. */
export const PROFILE_DB_FILE = 'nightjar.db';

export function profileDbPath(dir: string): string {
  return join(dir, PROFILE_DB_FILE);
}

export function profileExists(dir: string): boolean {
  return existsSync(profileDbPath(dir));
}

/** Throws ChatError NO_PROFILE unless `dir` holds a profile database. */
export function requireProfile(dir: string): void {
  if (!profileExists(dir)) throw new ChatError('NO_PROFILE', `no profile in ${dir} (create one with: nightjar init --name NAME)`);
}

