/** A snapshot of the profile: every table but this device's own state (or, whole, everything), restored byte for byte into a new profile. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { AgentStore } from '../../../src/agent/agent-store.js';
import { DeviceStore } from '../../../src/agent/devices/device-store.js';
import { DEVICE_LOCAL_TABLES, restoreSnapshot, SnapshotError, takeSnapshot, writeSnapshot } from '../../../src/agent/devices/snapshot.js';
import { Chat } from '../../../src/chat/chat.js';

function profile(name: string): Database.Database {
  const db = new Database(':memory:');
  Chat.initialize(db, name, () => 1_800_000_000);
  Chat.open(db);
  new AgentStore(db);
  return db;
}

function tablesOf(db: Database.Database, whole = false): Record<string, unknown[]> {
  const names = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND ${whole ? 'true' : "name NOT LIKE 'sqlite_%'"} ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
  return Object.fromEntries(names.filter((n) => whole || !DEVICE_LOCAL_TABLES.has(n)).map((n) => [n, db.prepare(`SELECT * FROM "${n}" ORDER BY 1, 2`).raw().safeIntegers().all()]));
}

/** A whole snapshot's body, as writeSnapshot hands it out. */
function wholeBody(db: Database.Database, pieces: Uint8Array[] = []): Uint8Array {
  writeSnapshot(db, 0, (p) => pieces.push(Uint8Array.from(p)), { scope: 'whole' });
  return Buffer.concat(pieces);
}

function fill(db: Database.Database): void {
  db.prepare("INSERT INTO chat_contacts (id, connection_id, origin, status, display_name, created_at) VALUES (3, 'c1', 'invite', 'ready', 'Bob ☂', 1800000000)").run();
  const add = db.prepare("INSERT INTO chat_messages (contact_id, direction, kind, seq, text, sent_at, received_at) VALUES (3, ?, 'text', ?, ?, ?, ?)");
  for (let i = 1; i <= 500; i++) add.run(i % 2 ? 'in' : 'out', i, `message ${i} ${'x'.repeat(i % 400)}`, 1_800_000_000 + i, i % 2 ? 1_800_000_001 + i : null);
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

test('a new device hands out the same next IDs as the device it was linked from, also after the last rows were deleted', () => {
  const from = profile('Alice');
  fill(from);
  from.prepare('DELETE FROM chat_messages WHERE id > 490').run(); // the counter stays at 500
  const to = profile('Someone else');
  restoreSnapshot(to, takeSnapshot(from, 1, 14_000));
  const next = (db: Database.Database): number | bigint =>
    db.prepare("INSERT INTO chat_messages (contact_id, direction, kind, seq, text, sent_at) VALUES (3, 'out', 'text', 999, 'next', 1)").run().lastInsertRowid;
  const [onNew, onOld] = [next(to), next(from)];
  assert.equal(onNew, onOld);
  assert.equal(onNew, 501);
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

test('a whole snapshot carries everything: this device’s own state, the delivery attempts, the AUTOINCREMENT counters', () => {
  const from = profile('Alice');
  fill(from);
  from.prepare('DELETE FROM chat_messages WHERE id > 490').run(); // the counter stays at 500: IDs 491..500 are never handed out again
  const pieces: Uint8Array[] = [];
  const body = wholeBody(from, pieces);
  assert.ok(pieces.length > 1 && pieces.every((p) => p.length < 64 * 1024 + 1024), `pieces of ${pieces.map((p) => p.length).join(', ')} bytes`);
  const to = profile('Someone else');
  assert.equal(restoreSnapshot(to, [body], 'whole'), 0);
  assert.deepEqual(tablesOf(to, true), tablesOf(from, true));
  assert.deepEqual(to.prepare('SELECT attempts, last_error, next_at FROM agent_outbox').get(), { attempts: 4, last_error: 'relay down', next_at: 99 });
  assert.equal((to.prepare('SELECT count(*) AS n FROM agent_device_group').get() as { n: number }).n, 1);
  const id = to.prepare("INSERT INTO chat_messages (contact_id, direction, kind, seq, text, sent_at) VALUES (3, 'out', 'text', 999, 'next', 1)").run().lastInsertRowid;
  assert.equal(id, 501);
  // A whole snapshot is not what a new device starts from: its device's own tables are refused there.
  const fresh = profile('Bob');
  const before = tablesOf(fresh);
  assert.throws(() => restoreSnapshot(fresh, [body]), (e) => e instanceof SnapshotError && /agent_device_group/.test(e.message));
  assert.deepEqual(tablesOf(fresh), before);
});

test('the shared snapshot is the same bytes whether taken whole or in pieces', () => {
  const from = profile('Alice');
  fill(from);
  const pieces: Uint8Array[] = [];
  writeSnapshot(from, 9, (p) => pieces.push(Uint8Array.from(p)));
  assert.ok(pieces.length > 1);
  assert.deepEqual(Buffer.concat(takeSnapshot(from, 9, 5_000)), Buffer.concat(pieces));
});
