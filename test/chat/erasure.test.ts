/**
 * What disappears is gone from every file of the profile: the database and
 * its write-ahead log. Run on an unencrypted file with the profile's own
 * settings (WAL, secure_delete), so that the test can search the bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeBody, encodePeerInfo } from '../../src/chat/body.js';
import { Chat } from '../../src/chat/chat.js';
import { configureProfileDatabase } from '../../src/chat/profile-db.js';
import { tempDir } from '../helpers/relay-process.js';
import { FakeAgent } from './fake-agent.js';

function onDisk(dir: string, text: string): string[] {
  return readdirSync(dir).filter((f) => readFileSync(join(dir, f)).includes(Buffer.from(text, 'utf8')));
}

function profile() {
  const dir = tempDir('nightjar-erase-');
  const db = new Database(join(dir, 'nightjar.db'));
  configureProfileDatabase(db);
  let now = 1_800_000_000;
  Chat.initialize(db, 'Alice', () => now);
  const chat = Chat.open(db, () => now);
  const agent = new FakeAgent(db);
  chat.attach(agent);
  return { dir, db, chat, agent, tick: (s: number) => (now += s), now: () => now };
}

async function contact(p: ReturnType<typeof profile>) {
  const { contact } = await p.chat.invite();
  p.agent.status.set(contact.connectionId, 'ready');
  p.chat.onConnected(contact.connectionId, encodePeerInfo({ name: 'Bob' }));
  return p.chat.store.contact(contact.id)!;
}

test('a message that disappeared is in no file of the profile directory', async () => {
  const p = profile();
  const bob = await contact(p);
  const secret = 'the combination is 31-41-59, burn after reading';
  p.chat.onMessage(bob.connectionId, { seq: 1, sentAt: p.now(), body: encodeBody({ type: 'text', text: secret, ttl: 30 }) });
  p.chat.onMessage(bob.connectionId, { seq: 2, sentAt: p.now(), body: encodeBody({ type: 'text', text: 'this one stays' }) });
  assert.ok(onDisk(p.dir, secret).length > 0, 'the test can see plaintext on disk');
  p.tick(31);
  assert.equal(p.chat.deleteExpired(), 1);
  assert.deepEqual(onDisk(p.dir, secret), []);
  assert.ok(onDisk(p.dir, 'this one stays').length > 0);
  p.db.close();
});

test('a deleted contact’s history is in no file of the profile directory', async () => {
  const p = profile();
  const bob = await contact(p);
  const secret = 'meet at the usual place at noon';
  p.chat.onMessage(bob.connectionId, { seq: 1, sentAt: p.now(), body: encodeBody({ type: 'text', text: secret }) });
  await p.chat.deleteContact(bob);
  assert.deepEqual(onDisk(p.dir, secret), []);
  p.db.close();
});
