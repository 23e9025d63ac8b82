/**
 * The profile's encrypted database: one SQLCipher file (through
 * better-sqlite3-multiple-ciphers) holding the agent's `agent_*` tables and
 * the chat layer's `chat_*` tables.
 *
 * A wrong passphrase is detected by the first read, before anything is
 * written (no journal mode change, no schema), so the file stays byte for
 * byte as it was. A new profile is built under a temporary name and linked
 * into place only when complete, so a failed `init` leaves no half profile.
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { chmodSync, existsSync, linkSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ChatError } from './errors.js';
import { profileDbPath, requireProfile } from './profile-paths.js';
import { newProfileKey, sqlcipherKey, writeProfileMeta, type ProfileKey, type ScryptParams } from './profile-key.js';

export type DB = Database.Database;

function keyed(path: string, key: ProfileKey, create: boolean): DB {
  const db = new Database(path, { fileMustExist: !create });
  try {
    db.pragma("cipher='sqlcipher'");
    db.pragma('legacy=4');
    db.key(sqlcipherKey(key));
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Durability and hygiene settings, applied only once the key is known good (exported for tests that need a profile's settings on a plain file). */
export function configureProfileDatabase(db: DB): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  // removed rows (disappearing messages, deleted contacts) are overwritten
  db.pragma('secure_delete = ON');
}

/**
 * Moves everything in the write-ahead log into the database and empties the
 * log file. With WAL, secure_delete overwrites a deleted row only in the
 * page's newest version; older versions (the message before it disappeared,
 * an old ratchet state) stay in `nightjar.db-wal` until this runs.
 */
export function eraseOldVersions(db: DB): void {
  db.pragma('wal_checkpoint(TRUNCATE)');
}

/**
 * `mkdir -p` one level at a time: Node's recursive mkdir spins forever on
 * some pseudo file systems (/proc) instead of failing.
 */
function makeDirectory(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw e;
    makeDirectory(dirname(dir));
    mkdirSync(dir, { mode: 0o700 });
  }
}

function isNotADatabase(e: unknown): boolean {
  return e instanceof Error && (e as Error & { code?: string }).code === 'SQLITE_NOTADB';
}

/**
 * Opens an existing profile. Throws ChatError NO_PROFILE, WRONG_PASSPHRASE
 * or NOT_A_PROFILE; `isProfile` tells whether the schema is Nightjar's.
 */
export function openProfileDatabase(dir: string, key: ProfileKey, isProfile: (db: DB) => boolean): DB {
  const path = profileDbPath(dir);
  requireProfile(dir);
  if (key.kind === 'passphrase' && key.passphrase === '') throw new ChatError('WRONG_PASSPHRASE', `wrong passphrase for profile ${dir}`); // profiles never have an empty one
  let db: DB;
  try {
    db = keyed(path, key, false);
  } catch (e) {
    throw new ChatError('BAD_PROFILE_DIR', `cannot open profile ${dir}: ${(e as Error).message}`);
  }
  try {
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (e) {
    db.close();
    if (isNotADatabase(e)) throw new ChatError('WRONG_PASSPHRASE', `wrong passphrase for profile ${dir}`);
    throw new ChatError('BAD_PROFILE_DIR', `cannot open profile ${dir}: ${(e as Error).message}`);
  }
  if (!isProfile(db)) {
    db.close();
    throw new ChatError('NOT_A_PROFILE', `${path} is not a Nightjar profile`);
  }
  configureProfileDatabase(db);
  return db;
}

/**
 * Creates a new profile database, keyed from `passphrase` (profile-key.ts),
 * and runs `setup` on it (schema, profile row, agent tables). The file
 * appears under its real name only after `setup` succeeded and the
 * database was closed; `profile.json` (the key derivation's settings) just
 * before it.
 */
export async function createProfileDatabase(dir: string, passphrase: string, setup: (db: DB) => Promise<void> | void, params?: ScryptParams): Promise<void> {
  if (passphrase.length === 0) throw new ChatError('NO_PASSPHRASE', 'the passphrase must not be empty');
  try {
    makeDirectory(dir);
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (e) {
    throw new ChatError('BAD_PROFILE_DIR', `cannot use profile directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const path = profileDbPath(dir);
  if (existsSync(path)) throw new ChatError('PROFILE_EXISTS', `a profile already exists in ${dir}`);
  const temp = `${path}.creating-${process.pid}`;
  const removeTemp = (): void => {
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(temp + suffix, { force: true });
  };
  removeTemp();
  const fresh = await newProfileKey(passphrase, params);
  try {
    const db = keyed(temp, fresh.key, true);
    try {
      chmodSync(temp, 0o600); // SQLite gives the -wal and -shm files the same mode
      configureProfileDatabase(db);
      await setup(db);
    } finally {
      db.close();
    }
    writeProfileMeta(dir, fresh.params);
    linkSync(temp, path); // fails if another init won the race
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ChatError('PROFILE_EXISTS', `a profile already exists in ${dir}`);
    throw e;
  } finally {
    removeTemp();
  }
}

/**
 * Opens (creating it if missing) another database of the profile beside
 * the main one, under the same key: what a device keeps only while it
 * links another (api/device-link.ts).
 */
export function openSideDatabase(path: string, key: ProfileKey): DB {
  const created = !existsSync(path);
  const db = keyed(path, key, true);
  try {
    if (created) chmodSync(path, 0o600);
    db.prepare('SELECT count(*) FROM sqlite_master').get(); // a wrong key fails here, not at the first write
    configureProfileDatabase(db);
    return db;
  } catch (e) {
    db.close();
    throw new ChatError('BAD_PROFILE_DIR', `cannot open ${path}: ${(e as Error).message}`);
  }
}

/** Deletes a side database and its journal files. */
export function removeSideDatabase(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
}
