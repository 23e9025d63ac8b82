/** The encrypted profile database: creation, wrong passphrase, no plaintext on disk. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Chat } from '../../src/chat/chat.js';
import { ChatError, type ChatErrorCode } from '../../src/chat/errors.js';
import Database from 'better-sqlite3-multiple-ciphers';
import { scryptSync } from 'node:crypto';
import { createProfileDatabase, openProfileDatabase, type DB } from '../../src/chat/profile-db.js';
import { DEFAULT_SCRYPT, PROFILE_META_FILE, unlockKey } from '../../src/chat/profile-key.js';
import { profileDbPath } from '../../src/chat/profile-paths.js';
import { hasChatSchema } from '../../src/chat/schema.js';
import { tempDir } from '../helpers/relay-process.js';

const code = (c: ChatErrorCode) => (e: unknown) => e instanceof ChatError && e.code === c;

/** Opens the profile in `dir` with `passphrase`, deriving the key as the CLI does. */
async function open(dir: string, passphrase: string): Promise<DB> {
  return openProfileDatabase(dir, await unlockKey(dir, passphrase), hasChatSchema);
}

async function newProfile(name = 'Alice Liddell'): Promise<string> {
  const dir = join(tempDir('nightjar-profile-'), 'profile');
  await createProfileDatabase(dir, 'correct horse', (db) => Chat.initialize(db, name));
  return dir;
}

test('a new profile opens with its passphrase and holds the display name', async () => {
  const dir = await newProfile();
  assert.deepEqual(readdirSync(dir).sort(), ['nightjar.db', 'profile.json']); // no temporary or journal files left behind
  const db = await open(dir, 'correct horse');
  assert.equal(Chat.open(db).displayName(), 'Alice Liddell');
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db.pragma('synchronous', { simple: true }), 2); // FULL
  db.close();
});

test('the database file is encrypted: no display name or schema text on disk', async () => {
  const dir = await newProfile('Zebediah Quux');
  const bytes = readFileSync(profileDbPath(dir));
  assert.equal(bytes.includes('Zebediah'), false);
  assert.equal(bytes.includes('chat_contacts'), false);
  assert.equal(bytes.subarray(0, 16).toString('latin1').startsWith('SQLite format'), false);
});

test('a wrong passphrase is refused and leaves the file byte for byte intact', async () => {
  const dir = await newProfile();
  const before = readFileSync(profileDbPath(dir));
  for (const wrong of ['correct horsf', '', 'x'.repeat(1000)]) {
    await assert.rejects(open(dir, wrong), code('WRONG_PASSPHRASE'));
  }
  assert.deepEqual(readFileSync(profileDbPath(dir)), before);
  assert.deepEqual(readdirSync(dir).sort(), ['nightjar.db', 'profile.json']);
  const db = await open(dir, 'correct horse');
  assert.equal(Chat.open(db).displayName(), 'Alice Liddell');
  db.close();
});

test('init on an existing profile is refused; a missing profile is a clear error', async () => {
  const dir = await newProfile();
  const before = readFileSync(profileDbPath(dir));
  await assert.rejects(
    createProfileDatabase(dir, 'other', (db) => Chat.initialize(db, 'Mallory')),
    code('PROFILE_EXISTS'),
  );
  assert.deepEqual(readFileSync(profileDbPath(dir)), before);
  assert.throws(() => openProfileDatabase(join(dir, 'nope'), { kind: 'passphrase', passphrase: 'x' }, hasChatSchema), code('NO_PROFILE'));
});

test('a failed setup leaves no profile behind', async () => {
  const dir = join(tempDir('nightjar-profile-'), 'p');
  await assert.rejects(
    createProfileDatabase(dir, 'pw', () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.deepEqual(readdirSync(dir), []);
  await assert.rejects(
    createProfileDatabase(dir, 'pw', (db) => Chat.initialize(db, '\u0007')),
    code('BAD_INPUT'),
  );
  assert.deepEqual(readdirSync(dir), []);
});

test('a file that is not a profile is refused without being changed', () => {
  const dir = tempDir('nightjar-profile-');
  const junk = Buffer.from('this is not a database at all, just some text'.repeat(200));
  writeFileSync(profileDbPath(dir), junk);
  assert.throws(() => openProfileDatabase(dir, { kind: 'passphrase', passphrase: 'pw' }, hasChatSchema), code('WRONG_PASSPHRASE'));
  assert.deepEqual(readFileSync(profileDbPath(dir)), junk);
});

test('the key is scrypt(passphrase, the salt at the start of the file, the parameters in profile.json), handed to SQLCipher raw', async () => {
  const dir = await newProfile('Vector Test');
  const meta = JSON.parse(readFileSync(join(dir, PROFILE_META_FILE), 'utf8')) as { format: number; kdf: { name: string; N: number; r: number; p: number } };
  assert.deepEqual(meta, { format: 1, kdf: { name: 'scrypt', ...DEFAULT_SCRYPT } });
  const salt = readFileSync(profileDbPath(dir)).subarray(0, 16);
  // Computed here independently of src/: what docs/chat.md tells a second implementation to do.
  const key = scryptSync(Buffer.from('correct horse', 'utf8'), salt, 32, { N: meta.kdf.N, r: meta.kdf.r, p: meta.kdf.p, maxmem: 256 * 1024 * 1024 });
  const db = new Database(profileDbPath(dir), { fileMustExist: true, readonly: true });
  db.pragma("cipher='sqlcipher'");
  db.pragma('legacy=4');
  db.key(Buffer.from(`x'${key.toString('hex')}'`));
  assert.equal((db.prepare('SELECT display_name FROM chat_profile').get() as { display_name: string }).display_name, 'Vector Test');
  db.close();
  const derived = await unlockKey(dir, 'correct horse');
  assert.ok(derived.kind === 'raw' && Buffer.from(derived.key).equals(key));
});

test('a profile made before profile.json existed still opens with its passphrase (SQLCipher’s own key derivation)', async () => {
  const dir = tempDir('nightjar-profile-');
  const legacy = new Database(profileDbPath(dir));
  legacy.pragma("cipher='sqlcipher'");
  legacy.pragma('legacy=4');
  legacy.key(Buffer.from('old passphrase', 'utf8'));
  Chat.initialize(legacy, 'Old Timer');
  legacy.close();
  assert.equal((await unlockKey(dir, 'old passphrase')).kind, 'passphrase');
  const db = await open(dir, 'old passphrase');
  assert.equal(Chat.open(db).displayName(), 'Old Timer');
  db.close();
  await assert.rejects(open(dir, 'new passphrase'), code('WRONG_PASSPHRASE'));
});

test('a damaged or unknown profile.json is a clear error, and the database is not touched', async () => {
  const dir = await newProfile();
  const before = readFileSync(profileDbPath(dir));
  for (const text of ['{not json', '{"format":2,"kdf":{"name":"scrypt","N":32768,"r":8,"p":1}}', '{"format":1,"kdf":{"name":"scrypt","N":3,"r":8,"p":1}}', '{"format":1,"kdf":{"name":"md5"}}']) {
    writeFileSync(join(dir, PROFILE_META_FILE), text);
    await assert.rejects(unlockKey(dir, 'correct horse'), code('BAD_PROFILE_DIR'));
  }
  assert.deepEqual(readFileSync(profileDbPath(dir)), before);
});
