/** A snapshot of the profile: every table but this device's own state, restored byte for byte into a new profile. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { AgentStore } from '../../../src/agent/agent-store.js';
import { DeviceStore } from '../../../src/agent/devices/device-store.js';
import { DEVICE_LOCAL_TABLES, restoreSnapshot, SnapshotError, takeSnapshot } from '../../../src/agent/devices/snapshot.js';
import { Chat } from '../../../src/chat/chat.js';

function profile(name: string): Database.Database {
  const db = new Database(':memory:');
  Chat.initialize(db, name, () => 1_800_000_000);
  Chat.open(db);
  new AgentStore(db);
  return db;
}

function tablesOf(db: Database.Database): Record<string, unknown[]> {
  const names = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  return Object.fromEntries(names.filter((n) => !DEVICE_LOCAL_TABLES.has(n)).map((n) => [n, db.prepare(`SELECT * FROM "${n}" ORDER BY 1, 2`).raw().safeIntegers().all()]));
}

function fill(db: Database.Database): void {
  db.prepare("INSERT INTO chat_contacts (id, connection_id, origin, status, display_name, created_at) VALUES (3, 'c1', 'invite', 'ready', 'Bob ☂', 1800000000)").run();
  const add = db.prepare("INSERT INTO chat_messages (contact_id, direction, kind, seq, text, sent_at, received_at) VALUES (3, ?, 'text', ?, ?, ?, ?)");
  for (let i = 1; i <= 500; i++) add.run(i % 2 ? 'in' : 'out', i, `message ${i} ${'x'.repeat(i % 50)}`, 1_800_000_000 + i, i % 2 ? 1_800_000_001 + i : null);
  db.prepare("INSERT INTO agent_meta (key, value) VALUES ('routing', 'direct')").run();
  db.prepare('INSERT INTO agent_sent_log (connection_id, seq, sent_at, body, expires_at) VALUES (?, ?, ?, ?, ?)').run('c1', 9, 2 ** 40, Buffer.from([0, 255, 7]), null);
  db.prepare('INSERT INTO agent_outbox (connection_id, snd_queue_id, seq, envelope, signed, attempts, last_error, next_at, author) VALUES (?, 1, 5, ?, 1, 4, ?, 99, 1)').run('c1', Buffer.alloc(300, 6), 'relay down');
  db.prepare('INSERT INTO agent_relay_health (address, reachable, latency_ms) VALUES (?, 1, 12)').run('nightjar://x@h:1');
  new DeviceStore(db, (fn) => db.transaction(fn)()).setGroup({ generation: 1, device: 1, group_key: Buffer.alloc(32, 1), log_relay: 'r', log_recipient_id: Buffer.alloc(24), log_sender_id: Buffer.alloc(24), log_recipient_key: Buffer.alloc(32), log_queue_key: Buffer.alloc(32), log_sender_key: Buffer.alloc(32) });
}

test('a snapshot restores every replicated table as it was; this device’s own state and delivery attempts stay behind', () => {
  const from = profile('Alice');
  fill(from);
  const chunks = takeSnapshot(from, 42, 14_000);
  assert.ok(chunks.length > 1 && chunks.every((c) => c.length <= 14_000), `${chunks.length} chunks`);
  const to = profile('Someone else');
  to.prepare("INSERT INTO agent_meta (key, value) VALUES ('stale', 'gone after the restore')").run();
  assert.equal(restoreSnapshot(to, chunks), 42);
  const a = tablesOf(from);
  const b = tablesOf(to);
  // The delivery attempts of the outbox row are the old device's: reset in the copy.
  const outbox = (t: Record<string, unknown[]>): unknown[] => (t.agent_outbox as unknown[][]).map((r) => r.slice(0, 8).concat(r.slice(11)));
  assert.deepEqual(outbox(b), outbox(a));
  const row = to.prepare('SELECT attempts, last_error, next_at, author FROM agent_outbox').get();
  assert.deepEqual(row, { attempts: 0, last_error: null, next_at: null, author: 1 });
  delete a.agent_outbox;
  delete b.agent_outbox;
  assert.deepEqual(b, a);
  assert.equal((to.prepare('SELECT count(*) AS n FROM agent_device_group').get() as { n: number }).n, 0, 'the group row is not copied');
  assert.equal((to.prepare('SELECT count(*) AS n FROM agent_relay_health').get() as { n: number }).n, 0);
  assert.equal((to.prepare("SELECT display_name FROM chat_profile").get() as { display_name: string }).display_name, 'Alice');
});

test('a damaged or truncated snapshot, or one of a newer version, changes nothing and says so', () => {
  const from = profile('Alice');
  fill(from);
  const chunks = takeSnapshot(from, 7, 1_000_000);
  const to = profile('Bob');
  const before = tablesOf(to);
  const body = chunks[0]!;
  for (const bad of [body.subarray(0, body.length - 1), body.subarray(0, 20), Uint8Array.from([...body, 0]), Uint8Array.from([2, ...body.subarray(1)])]) {
    assert.throws(() => restoreSnapshot(to, [bad]), SnapshotError);
    assert.deepEqual(tablesOf(to), before);
  }
  // A table this code does not have.
  from.exec('CREATE TABLE future_things (x INTEGER)');
  assert.throws(() => restoreSnapshot(to, takeSnapshot(from, 7, 1_000_000)), (e) => e instanceof SnapshotError && /future_things/.test(e.message));
  assert.deepEqual(tablesOf(to), before);
});
