/**
 * What an archive holds (docs/devices.md §10.2) and the profile made from
 * it: every table as it was, an archive of an older Nightjar upgraded, and
 * one that is newer or damaged refused with nothing made.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { AgentStore } from '../../src/agent/agent-store.js';
import { DeviceStore } from '../../src/agent/devices/device-store.js';
import { Chat } from '../../src/chat/chat.js';
import { importProfile, readProfilePayload, writeProfilePayload, type ProfilePayload } from '../../src/chat/profile-archive.js';
import { openProfileDatabase } from '../../src/chat/profile-db.js';
import { unlockKey } from '../../src/chat/profile-key.js';
import { profileExists } from '../../src/chat/profile-paths.js';
import { hasChatSchema } from '../../src/chat/schema.js';
import { ArchiveError, type ArchiveErrorCode } from '../../src/crypto/archive.js';
import { Writer } from '../../src/protocol/codec.js';
import { recordedVersion } from '../../src/schema/migrations.js';
import { PASSPHRASES } from '../../scripts/make-upgrade-fixture.js';
import { tempDir } from '../helpers/relay-process.js';

type DB = Database.Database;
const PASSPHRASE = 'the new profile’s passphrase';

/** A profile with something in every kind of table: contacts, history (some deleted), outbox attempts, relay health, a device group. */
function source(): DB {
  const db = new Database(':memory:');
  Chat.initialize(db, 'Alice ☂', () => 1_800_000_000);
  Chat.open(db);
  new AgentStore(db);
  db.prepare("INSERT INTO chat_contacts (id, connection_id, origin, status, display_name, created_at) VALUES (3, 'c1', 'invite', 'ready', 'Bob', 1800000000)").run();
  const add = db.prepare("INSERT INTO chat_messages (contact_id, direction, kind, seq, text, sent_at) VALUES (3, ?, 'text', ?, ?, ?)");
  for (let i = 1; i <= 300; i++) add.run(i % 2 ? 'in' : 'out', i, `message ${i} ${'y'.repeat(i)}`, 1_800_000_000 + i);
  db.prepare('DELETE FROM chat_messages WHERE id > 290').run();
  db.prepare('INSERT INTO agent_outbox (connection_id, snd_queue_id, seq, envelope, signed, attempts, last_error, next_at, author) VALUES (?, 1, 5, ?, 1, 4, ?, 99, 1)').run('c1', Buffer.alloc(300, 6), 'relay down');
  db.prepare('INSERT INTO agent_relay_health (address, reachable, latency_ms) VALUES (?, 1, 12)').run('nightjar://x@h:1');
  const devices = new DeviceStore(db, (fn) => db.transaction(fn)());
  for (const device of [1, 2]) devices.addMember({ device, name: `device ${device}`, dh_public: null, kem_public: null, added_at: 1_800_000_000_000, removed_at: null });
  devices.addMember({ device: 3, name: 'gone', dh_public: null, kem_public: null, added_at: 1_800_000_000_000, removed_at: 1_800_000_001_000 });
  devices.setGroup({ generation: 1, device: 1, group_key: Buffer.alloc(32, 1), log_relay: 'r', log_recipient_id: Buffer.alloc(24), log_sender_id: Buffer.alloc(24), log_recipient_key: Buffer.alloc(32), log_queue_key: Buffer.alloc(32), log_sender_key: Buffer.alloc(32) });
  return db;
}

function payloadOf(db: DB, now = 1_800_000_123_456): Uint8Array {
  const pieces: Uint8Array[] = [];
  writeProfilePayload(db, (p) => pieces.push(Uint8Array.from(p)), now);
  return Buffer.concat(pieces);
}

/** Every table, SQLite's counters too, and the schema. */
function everything(db: DB): Record<string, unknown> {
  const names = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[]).filter((n) => n !== 'sqlite_master');
  return {
    schema: db.prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all(),
    ...Object.fromEntries(
      names.map((n) => {
        const columns = db.prepare(`SELECT count(*) FROM pragma_table_info(?)`).pluck().get(n) as number;
        const order = Array.from({ length: columns }, (_, i) => i + 1).join(', ');
        return [n, db.prepare(`SELECT * FROM "${n}" ORDER BY ${order}`).raw().safeIntegers().all()];
      }),
    ),
  };
}

async function openImported(dir: string): Promise<DB> {
  return openProfileDatabase(dir, await unlockKey(dir, PASSPHRASE), hasChatSchema);
}

async function refused(payload: ProfilePayload | (() => ProfilePayload), code: ArchiveErrorCode): Promise<void> {
  const dir = join(tempDir('nightjar-archive-'), 'profile');
  await assert.rejects(
    (async () => importProfile(dir, PASSPHRASE, typeof payload === 'function' ? payload() : payload))(),
    (e) => e instanceof ArchiveError && e.code === code,
  );
  assert.equal(profileExists(dir), false);
}

test('the profile made from an archive is the one it was taken from: every table, its schema, its counters', async () => {
  const from = source();
  const payload = readProfilePayload(payloadOf(from));
  assert.equal(payload.exportedAt, 1_800_000_123_456);
  assert.ok(payload.statements.some((s) => s.startsWith('CREATE TABLE chat_messages')));
  const dir = join(tempDir('nightjar-archive-'), 'profile');
  const summary = await importProfile(dir, PASSPHRASE, payload);
  assert.deepEqual(summary, { name: 'Alice ☂', contacts: 1, messages: 290, devices: 2 });
  const to = await openImported(dir);
  try {
    // Everything is as it was, but for this device's own keys: the copy gets its own, and notes which device it replaces (docs/devices.md §10).
    const { agent_device_self: mine, ...rest } = everything(to);
    const { agent_device_self: theirs, ...source } = everything(from);
    assert.deepEqual(rest, source);
    const device = (from.prepare('SELECT device FROM agent_device_group').get() as { device: number }).device;
    const self = to.prepare('SELECT dh_private, superseding FROM agent_device_self').get() as { dh_private: Buffer; superseding: number };
    assert.equal(self.superseding, device);
    assert.ok(!JSON.stringify(theirs).includes(JSON.stringify([...self.dh_private])), 'keys of its own');
    assert.equal((mine as unknown[]).length, 1);
    assert.equal(to.prepare("INSERT INTO chat_messages (contact_id, direction, kind, seq, text, sent_at) VALUES (3, 'out', 'text', 999, 'next', 1)").run().lastInsertRowid, 301);
  } finally {
    to.close();
  }
  await assert.rejects(importProfile(dir, PASSPHRASE, payload), /already exists/);
});

test('an archive of an older Nightjar is restored into its own tables, then upgraded', async () => {
  const copy = join(tempDir('nightjar-archive-'), 'alice');
  cpSync(join(import.meta.dirname, '..', 'fixtures', 'upgrade-v1', 'alice'), copy, { recursive: true });
  const old = openProfileDatabase(copy, await unlockKey(copy, PASSPHRASES.alice), hasChatSchema); // opened without upgrading anything
  let payload: Uint8Array;
  let texts: unknown[];
  try {
    assert.equal(recordedVersion(old, 'chat'), undefined, 'the fixture predates the migration runner');
    payload = payloadOf(old);
    texts = old.prepare("SELECT text FROM chat_messages WHERE kind = 'text' ORDER BY id").pluck().all();
  } finally {
    old.close();
  }
  const dir = join(tempDir('nightjar-archive-'), 'profile');
  const summary = await importProfile(dir, PASSPHRASE, readProfilePayload(payload));
  assert.deepEqual(summary, { name: 'Alice', contacts: 1, messages: texts.length, devices: 1 });
  const to = await openImported(dir);
  try {
    const chat = Chat.open(to);
    assert.deepEqual(chat.store.history(chat.contacts()[0]!.id).filter((m) => m.kind === 'text').map((m) => m.text), texts);
    assert.ok((recordedVersion(to, 'chat') ?? 0) >= 3 && (recordedVersion(to, 'agent') ?? 0) >= 7, 'upgraded to this code’s versions');
  } finally {
    to.close();
  }
});

test('a newer or damaged payload makes no profile', async () => {
  const from = source();
  const bytes = payloadOf(from);
  const good = readProfilePayload(bytes);
  const reading = (b: Uint8Array) => (): ProfilePayload => readProfilePayload(b);

  await refused(reading(Uint8Array.from([2, ...bytes.subarray(1)])), 'ARCHIVE_TOO_NEW');
  await refused({ ...good, snapshot: Uint8Array.from([2, ...good.snapshot.subarray(1)]) }, 'ARCHIVE_TOO_NEW');
  from.prepare("UPDATE schema_versions SET version = 99 WHERE store = 'agent'").run();
  await refused(readProfilePayload(payloadOf(from)), 'ARCHIVE_TOO_NEW');

  await refused(reading(bytes.subarray(0, bytes.length - 3)), 'ARCHIVE_DAMAGED');
  await refused(reading(bytes.subarray(0, 20)), 'ARCHIVE_DAMAGED');
  await refused({ ...good, snapshot: good.snapshot.subarray(0, good.snapshot.length - 1) }, 'ARCHIVE_DAMAGED');
  // The schema may only create tables and indexes, one statement each.
  const withSchema = (sql: string): Uint8Array => {
    const s = new TextEncoder().encode(sql);
    return Buffer.concat([new Writer().u8(1).u64(0n).u16(1).u32(s.length).bytes(s).finish(), good.snapshot]);
  };
  await refused(reading(withSchema("ATTACH DATABASE '/tmp/x' AS x")), 'ARCHIVE_DAMAGED');
  await refused({ ...good, statements: ['CREATE TABLE a (x); DROP TABLE chat_messages', ...good.statements] }, 'ARCHIVE_DAMAGED');
  await refused({ ...good, statements: good.statements.filter((s) => !s.includes('chat_requests')) }, 'ARCHIVE_DAMAGED');
});
