/** The encrypted profile database: creation, wrong passphrase, no plaintext on disk. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Chat } from '../../src/chat/chat.js';
import { ChatError, type ChatErrorCode } from '../../src/chat/errors.js';
import { createProfileDatabase, openProfileDatabase, profileDbPath } from '../../src/chat/profile-db.js';
import { hasChatSchema } from '../../src/chat/schema.js';
import { tempDir } from '../helpers/relay-process.js';

const code = (c: ChatErrorCode) => (e: unknown) => e instanceof ChatError && e.code === c;

async function newProfile(name = 'Alice Liddell'): Promise<string> {
  const dir = join(tempDir('nightjar-profile-'), 'profile');
  await createProfileDatabase(dir, 'correct horse', (db) => Chat.initialize(db, name));
  return dir;
}

test('a new profile opens with its passphrase and holds the display name', async () => {
  const dir = await newProfile();
  assert.deepEqual(readdirSync(dir), ['nightjar.db']); // no temporary or journal files left behind
  const db = openProfileDatabase(dir, 'correct horse', hasChatSchema);
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
    assert.throws(() => openProfileDatabase(dir, wrong, hasChatSchema), code('WRONG_PASSPHRASE'));
  }
  assert.deepEqual(readFileSync(profileDbPath(dir)), before);
  assert.deepEqual(readdirSync(dir), ['nightjar.db']);
  const db = openProfileDatabase(dir, 'correct horse', hasChatSchema);
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
  assert.throws(() => openProfileDatabase(join(dir, 'nope'), 'x', hasChatSchema), code('NO_PROFILE'));
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
  assert.throws(() => openProfileDatabase(dir, 'pw', hasChatSchema), code('WRONG_PASSPHRASE'));
  assert.deepEqual(readFileSync(profileDbPath(dir)), junk);
});
