/**
 * The key that unlocks a profile database, derived from the passphrase.
 *
 * Format 1 profiles (every profile `init` makes now) derive a raw 256-bit
 * SQLCipher key with scrypt, a memory-hard KDF, and hand it to SQLCipher as
 * `x'<key hex>'`, so SQLCipher runs no KDF of its own:
 *
 *   key = scrypt(passphrase as UTF-8, salt, N, r, p, 32 bytes)
 *
 * `salt` is the 16-byte salt SQLCipher keeps in the clear at the start of
 * the database file (set at creation through the 96-hex-digit raw key form
 * `x'<key><salt>'`), and N, r, p come from `profile.json` beside it:
 *
 *   {"format":1,"kdf":{"name":"scrypt","N":16384,"r":8,"p":1}}
 *
 * scrypt at N=2^14, r=8 needs 16 MiB of fast memory per guess: on GPUs a
 * guess costs about what one of SQLCipher's default PBKDF2-HMAC-SHA512
 * (256 000 iterations) costs, on custom hardware far more (PBKDF2 needs no
 * memory), and it costs us well under half the CPU time (about 85 ms here
 * against about 210 ms). It runs on libuv's thread pool, started as early as
 * the passphrase is known (a command with NIGHTJAR_PASSPHRASE starts it
 * before it loads its modules), so it mostly overlaps other start-up work.
 * The parameters live in profile.json: a later version can raise them.
 *
 * A profile without `profile.json` predates format 1: its passphrase goes
 * to SQLCipher as before (SQLCipher 4's own PBKDF2), and it keeps working.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scryptKey, type ScryptParams } from '../crypto/scrypt.js';
import { ChatError } from './errors.js';
import { profileDbPath } from './profile-paths.js';

export const PROFILE_META_FILE = 'profile.json';
export const PROFILE_FORMAT = 1;
const SALT_LENGTH = 16;
const KEY_LENGTH = 32;

export type { ScryptParams };

export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 14, r: 8, p: 1 };

/** What opens a profile database: a raw key (format 1) or the passphrase itself (older profiles). */
export type ProfileKey =
  | { readonly kind: 'raw'; readonly key: Uint8Array; readonly salt?: Uint8Array }
  | { readonly kind: 'passphrase'; readonly passphrase: string };

/** The string SQLCipher takes as its key: raw keys in the `x'…'` form, with the salt when creating. */
export function sqlcipherKey(key: ProfileKey): Buffer {
  if (key.kind === 'passphrase') return Buffer.from(key.passphrase, 'utf8');
  const hex = Buffer.from(key.key).toString('hex') + (key.salt ? Buffer.from(key.salt).toString('hex') : '');
  return Buffer.from(`x'${hex}'`, 'ascii');
}

function validParams(value: unknown): ScryptParams | undefined {
  const kdf = value as { name?: unknown; N?: unknown; r?: unknown; p?: unknown } | null;
  if (!kdf || kdf.name !== 'scrypt') return undefined;
  const { N, r, p } = kdf;
  const int = (x: unknown, max: number): x is number => Number.isSafeInteger(x) && (x as number) >= 1 && (x as number) <= max;
  if (!int(N, 2 ** 24) || (N & (N - 1)) !== 0 || N < 2 || !int(r, 64) || !int(p, 16)) return undefined;
  return { N, r, p };
}

/** The KDF settings of the profile in `dir`, or undefined for a profile older than format 1. */
export function readProfileMeta(dir: string): ScryptParams | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, PROFILE_META_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ChatError('BAD_PROFILE_DIR', `cannot read ${join(dir, PROFILE_META_FILE)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let meta: { format?: unknown; kdf?: unknown };
  try {
    meta = JSON.parse(text) as { format?: unknown; kdf?: unknown };
  } catch {
    throw new ChatError('BAD_PROFILE_DIR', `${join(dir, PROFILE_META_FILE)} is damaged (not JSON)`);
  }
  if (meta.format !== PROFILE_FORMAT) throw new ChatError('BAD_PROFILE_DIR', `${join(dir, PROFILE_META_FILE)} has format ${String(meta.format)}; this Nightjar reads format ${PROFILE_FORMAT}`);
  const params = validParams(meta.kdf);
  if (!params) throw new ChatError('BAD_PROFILE_DIR', `${join(dir, PROFILE_META_FILE)} names an unknown or unsafe key derivation`);
  return params;
}

/** Writes `profile.json` (atomically: a reader never sees half a file). */
export function writeProfileMeta(dir: string, params: ScryptParams): void {
  const path = join(dir, PROFILE_META_FILE);
  const temp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, JSON.stringify({ format: PROFILE_FORMAT, kdf: { name: 'scrypt', ...params } }) + '\n', { mode: 0o600 });
    renameSync(temp, path);
  } finally {
    rmSync(temp, { force: true });
  }
}

function fileSalt(dbPath: string): Uint8Array {
  const salt = Buffer.alloc(SALT_LENGTH);
  let fd: number;
  try {
    fd = openSync(dbPath, 'r');
  } catch (e) {
    throw new ChatError('BAD_PROFILE_DIR', `cannot open ${dbPath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    if (readSync(fd, salt, 0, SALT_LENGTH, 0) !== SALT_LENGTH) throw new ChatError('NOT_A_PROFILE', `${dbPath} is not a Nightjar profile`);
  } finally {
    closeSync(fd);
  }
  return new Uint8Array(salt);
}

/** Derivations started in this process, by profile and passphrase: each is computed once. */
const derived = new Map<string, Promise<ProfileKey>>();

/**
 * The key for the existing profile database in `dir`. Takes about 85 ms
 * (scrypt) off the main thread, once per process for the same passphrase
 * (startKeyDerivation may have begun it already); a wrong passphrase is
 * only detected when the database is opened with the key.
 */
export function unlockKey(dir: string, passphrase: string): Promise<ProfileKey> {
  const id = `${dir}\u0000${passphrase}`;
  let key = derived.get(id);
  if (!key) {
    key = (async (): Promise<ProfileKey> => {
      const params = readProfileMeta(dir);
      if (!params) return { kind: 'passphrase', passphrase };
      return { kind: 'raw', key: await scryptKey(passphrase, fileSalt(profileDbPath(dir)), params) };
    })();
    // A failed derivation (a damaged profile.json) is not remembered: the next call says why again.
    key.catch(() => derived.delete(id));
    derived.set(id, key);
  }
  return key;
}

/**
 * Begins deriving the key for `dir` in the background, when it is certain to
 * be needed: the caller knows the passphrase and that no node has the
 * profile open. Errors surface when unlockKey is called for it.
 */
export function startKeyDerivation(dir: string, passphrase: string): void {
  unlockKey(dir, passphrase).catch(() => undefined);
}

/** A key for a new profile: fresh salt, default parameters; the salt goes into the new file. */
export async function newProfileKey(passphrase: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<{ key: ProfileKey; params: ScryptParams }> {
  const salt = new Uint8Array(randomBytes(SALT_LENGTH));
  return { key: { kind: 'raw', key: await scryptKey(passphrase, salt, params), salt }, params };
}
